// The journal writer: one InnoDB transaction per group of captured source
// transactions holds their journal rows, the versions they set, the idmap
// rows learnt, and the checkpoint at the end of the last one. Capture is the
// only writer of these tables. A change id that is already in the journal
// fails the whole write (the unique key), never silently: replays restart at
// the checkpoint, so a duplicate is a bug to surface, not to hide.
import type { ChangeSet } from '../../apply/model.js';
import type { Db, Queryable } from '../db.js';
import { SpokesyncError } from '../errors.js';
import { stateTable } from '../state/schema.js';
import type { BinlogPosition } from './position.js';
import type { IdmapRow } from './resolver.js';

/** Which columns of which row a change set wrote (delete: the tombstone column '*'). */
export interface Written {
  readonly table: string;
  readonly id: string;
  readonly cols: readonly string[];
}

/** One journal row, ready to write. The change set itself is already encoded (its ops are not kept). */
export interface JournalEntry {
  readonly changeId: string;
  readonly origin: string;
  readonly hlc: string;
  /** 'YYYY-MM-DDTHH:MM:SSZ' */
  readonly time: string;
  /** null when committed on this node */
  readonly fromPeer: string | null;
  /** distinct tables, in op order */
  readonly tables: readonly string[];
  readonly opCount: number;
  /** the <cs> element (encodeChangeSet), as UTF-8 */
  readonly body: Buffer;
  readonly written: readonly Written[];
  readonly end: BinlogPosition;
}

/** The journal entry of a change set. */
export function journalEntry(cs: ChangeSet, body: string, fromPeer: string | null, end: BinlogPosition): JournalEntry {
  const tables: string[] = [];
  const written: Written[] = [];
  for (const op of cs.ops) {
    if (!tables.includes(op.table)) tables.push(op.table);
    written.push({ table: op.table, id: op.id, cols: op.kind === 'delete' ? ['*'] : Object.keys(op.kind === 'insert' ? op.row : op.set) });
  }
  return {
    changeId: cs.id, origin: cs.origin, hlc: cs.hlc, time: cs.time, fromPeer, tables, opCount: cs.ops.length,
    // bytes, not the string: an encoded body is a rope of many small pieces until flattened
    body: Buffer.from(body, 'utf8'),
    written, end,
  };
}

export interface Checkpoint {
  readonly position: BinlogPosition;
  readonly gtid: string;
  /** the clock after the last captured change set */
  readonly hlc: string;
}

/** Statement-size bounds: rows per multi-row INSERT, and bytes of journal bodies per INSERT. */
const ROWS_PER_INSERT = 1000;
const BODY_BYTES_PER_INSERT = 1024 * 1024;

export class JournalWriter {
  constructor(private readonly db: Db, private readonly stateSchema: string) {}

  async write(entries: readonly JournalEntry[], idmap: readonly IdmapRow[], checkpoint: Checkpoint): Promise<void> {
    await this.db.transaction(async (tx) => {
      await this.insertJournal(tx, entries);
      await this.upsertVersions(tx, entries);
      await this.upsertIdmap(tx, idmap);
      await writeCheckpoint(tx, this.stateSchema, checkpoint);
    });
  }

  private async insertJournal(tx: Queryable, entries: readonly JournalEntry[]): Promise<void> {
    const sql = `INSERT INTO ${stateTable(this.stateSchema, 'journal')}
      (change_id, origin, from_peer, hlc, commit_time, tables, op_count, body, binlog_file, binlog_pos) VALUES ?`;
    let rows: unknown[][] = [];
    let bytes = 0;
    const flush = async (): Promise<void> => {
      if (rows.length === 0) return;
      try {
        await tx.exec(sql, [rows]);
      } catch (e) {
        if ((e as { code?: string }).code === 'ER_DUP_ENTRY') {
          throw new SpokesyncError('SPOKESYNC_E_CAPTURE', 'a change set captured now is already in the journal (duplicate change id)', { cause: e });
        }
        throw e;
      }
      rows = [];
      bytes = 0;
    };
    for (const e of entries) {
      const tables = e.tables.join(',');
      rows.push([
        e.changeId, e.origin, e.fromPeer, e.hlc, e.time.slice(0, 10) + ' ' + e.time.slice(11, 19),
        tables.length > 4000 ? tables.slice(0, 4000) : tables, e.opCount, e.body, e.end.file, e.end.pos,
      ]);
      bytes += e.body.length;
      if (rows.length >= ROWS_PER_INSERT || bytes >= BODY_BYTES_PER_INSERT) await flush();
    }
    await flush();
  }

  private async upsertVersions(tx: Queryable, entries: readonly JournalEntry[]): Promise<void> {
    const rows: [string, string, string, string, string, number][] = [];
    for (const e of entries) {
      for (const w of e.written) for (const col of w.cols) rows.push([w.table, w.id, col, e.hlc, e.origin, rows.length]);
    }
    // in key order (InnoDB inserts sorted keys much faster than random uuids); the last writer of a key wins
    rows.sort((a, b) => byKey(a, b) || a[5] - b[5]);
    const last = rows.filter((r, i) => i === rows.length - 1 || byKey(r, rows[i + 1]!) !== 0).map((r) => r.slice(0, 5));
    const sql = `INSERT INTO ${stateTable(this.stateSchema, 'versions')} (tbl, identity, col, hlc, node) VALUES ?
      ON DUPLICATE KEY UPDATE hlc = VALUES(hlc), node = VALUES(node)`;
    await inChunks(tx, sql, last);
  }

  private async upsertIdmap(tx: Queryable, idmap: readonly IdmapRow[]): Promise<void> {
    const sql = `INSERT INTO ${stateTable(this.stateSchema, 'idmap')} (tbl, local_id, identity) VALUES ?
      ON DUPLICATE KEY UPDATE identity = VALUES(identity)`;
    await inChunks(tx, sql, idmap.map((r) => [r.tbl, r.localId, r.identity]).sort(byKey));
  }
}

function byKey(a: readonly unknown[], b: readonly unknown[]): number {
  for (let i = 0; i < 3; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

async function inChunks(tx: Queryable, sql: string, rows: readonly unknown[][]): Promise<void> {
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) await tx.exec(sql, [rows.slice(i, i + ROWS_PER_INSERT)]);
}

export async function writeCheckpoint(tx: Queryable, stateSchema: string, c: Checkpoint): Promise<void> {
  const res = await tx.exec(
    `UPDATE ${stateTable(stateSchema, 'checkpoint')}
        SET binlog_file = ?, binlog_pos = ?, gtid = ?, hlc = ?, updated_at = UTC_TIMESTAMP(6) WHERE id = 1`,
    [c.position.file, c.position.pos, c.gtid, c.hlc],
  );
  if (res.affectedRows !== 1) throw new SpokesyncError('SPOKESYNC_E_CAPTURE', 'the capture checkpoint row is missing from the state schema');
}

export async function readCheckpoint(db: Queryable, stateSchema: string): Promise<Checkpoint | null> {
  const rows = await db.query<{ binlog_file: string; binlog_pos: string | number; gtid: string; hlc: string | number }>(
    `SELECT binlog_file, binlog_pos, gtid, hlc FROM ${stateTable(stateSchema, 'checkpoint')} WHERE id = 1`,
  );
  const r = rows[0];
  if (!r) return null;
  return { position: { file: r.binlog_file, pos: Number(r.binlog_pos) }, gtid: r.gtid, hlc: String(r.hlc) };
}

/** Creates the checkpoint row; false when one exists already (another process got there first). */
export async function createCheckpoint(db: Queryable, stateSchema: string, c: Checkpoint): Promise<boolean> {
  const res = await db.exec(
    `INSERT INTO ${stateTable(stateSchema, 'checkpoint')} (id, binlog_file, binlog_pos, gtid, hlc, updated_at)
     SELECT 1, ?, ?, ?, ?, UTC_TIMESTAMP(6) FROM DUAL
      WHERE NOT EXISTS (SELECT 1 FROM ${stateTable(stateSchema, 'checkpoint')} WHERE id = 1)`,
    [c.position.file, c.position.pos, c.gtid, c.hlc],
  );
  return res.affectedRows === 1;
}
