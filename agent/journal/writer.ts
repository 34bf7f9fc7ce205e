// The journal writer: one InnoDB transaction per group of captured source
// transactions holds their journal rows, the versions they set, the insert
// ranges and idmap rows learnt, and the checkpoint at the end of the last one. Capture is the
// only writer of these tables. A change id that is already in the journal
// fails the whole write (the unique key), never silently: replays restart at
// the checkpoint, so a duplicate is a bug to surface, not to hide.
import mysql from 'mysql2';
import type { ChangeSet } from '../../apply/core/model.js';
import { ROW_INSERT, TOMBSTONE } from '../../apply/replay/versions.js';
import type { Db, Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { storedBody } from './body.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { Logger } from '../../apply/core/log.js';
import { formatPosition, type BinlogPosition } from '../capture/position.js';
import { binlogEnd } from '../capture/binlog-server.js';
import { checkCheckpoint, checkpointSavedAt, noteCheckpointTable } from '../capture/checkpoint-check.js';
import { recordRestore } from '../routing/restore.js';
import type { IdentityWrites, IdmapRow, InsertRange } from '../capture/ref-resolver.js';
import type { StateSession, StateTx } from '../capture/state-session.js';
import type { DeletedRefs } from '../capture/mapper.js';
import { encodeDeleted } from './deleted.js';
import { isFillOrigin } from '../rows/origins.js';

/**
 * Which columns of which row a change set wrote: an update its changed columns, a
 * delete the tombstone column '*', an insert nothing when its version rides in the
 * row's idmap row and the row-insert column '+' otherwise.
 */
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
  /** the <cs> element (encodeChangeSet), as UTF-8 (the writer stores it in the journal's form, journal/body.ts) */
  readonly body: Buffer;
  readonly written: readonly Written[];
  readonly end: BinlogPosition;
  /** the references of the rows its deletes removed (journal/deleted.ts), null when none */
  readonly deleted?: string | null;
}

const NONE: readonly string[] = [];
const TOMBSTONE_COLS = [TOMBSTONE];
/** What an insert into a table without a one-column key writes: the row-insert version. */
export const INSERT_COLS: readonly string[] = [ROW_INSERT];

/** A change set's UTF-8 bytes; ASCII text (most change sets) copied as it is. */
export function utf8Bytes(s: string): Buffer {
  return Buffer.from(s, Buffer.byteLength(s, 'utf8') === s.length ? 'latin1' : 'utf8');
}

/** The journal entry of a change set; `inIdmap`: whether the idmap records the version of an insert into the table. */
export function journalEntry(
  cs: ChangeSet, body: string, fromPeer: string | null, end: BinlogPosition, inIdmap: (table: string) => boolean = () => false,
  deleted: readonly DeletedRefs[] = [],
): JournalEntry {
  const tables: string[] = [];
  const written: Written[] = [];
  // a fill's rows keep the versions they have here
  const versions = !isFillOrigin(cs.origin);
  for (const op of cs.ops) {
    if (!tables.includes(op.table)) tables.push(op.table);
    if (!versions) continue;
    const cols = op.kind === 'delete' ? TOMBSTONE_COLS
      : op.kind === 'update' ? Object.keys(op.set)
      : inIdmap(op.table) ? NONE : INSERT_COLS;
    if (cols.length > 0) written.push({ table: op.table, id: op.id, cols });
  }
  return {
    changeId: cs.id, origin: cs.origin, hlc: cs.hlc, time: cs.time, fromPeer, tables, opCount: cs.ops.length,
    // bytes, not the string: an encoded body is a rope of many small pieces until flattened
    body: utf8Bytes(body),
    written, end, deleted: encodeDeleted(deleted),
  };
}

/** The entries' bodies in the journal's form (journal/body.ts), in order. */
export function storedBodies(entries: readonly JournalEntry[]): readonly Buffer[] {
  return entries.map((e) => storedBody(e.body));
}

export interface Checkpoint {
  readonly position: BinlogPosition;
  readonly gtid: string;
  /** the clock after the last captured change set */
  readonly hlc: string;
}

/**
 * Statement bounds: bytes of values per statement (well under the 16 MiB
 * max_allowed_packet spokesync check asks for at least) and rows per statement.
 */
const MAX_BYTES = 4 * 1024 * 1024;
const MAX_ROWS = 20_000;

type Runner = Pick<StateSession, 'transaction'>;

/**
 * Writes a group in one transaction: one multi-row statement per table as a
 * rule, sent one after the other without waiting for each answer (one
 * connection runs them in order; the first failure fails the transaction,
 * which then rolls back). Journal bodies go as a prepared statement (bytes as
 * they are); the short values of versions and idmap as SQL text.
 */
export class JournalWriter {
  constructor(private readonly session: Runner, private readonly stateSchema: string) {}

  /** `bodies`: the entries' bodies in the journal's form, when the caller made them (capture does while the group before is written). */
  async write(
    entries: readonly JournalEntry[], writes: IdentityWrites, checkpoint: Checkpoint, bodies: readonly Buffer[] = storedBodies(entries),
  ): Promise<void> {
    await this.session.transaction(async (tx) => {
      const sent: Promise<unknown>[] = [];
      this.insertJournal(tx, entries, bodies, sent);
      this.upsertVersions(tx, entries, sent);
      // ranges before idmap rows: a re-keyed row's insert version is copied from its range
      this.insertRanges(tx, writes.ranges, writes.marks, sent);
      this.upsertIdmap(tx, writes.idmap, sent);
      sent.push(writeCheckpoint(tx, this.stateSchema, checkpoint));
      await Promise.all(sent);
    });
  }

  private insertJournal(tx: StateTx, entries: readonly JournalEntry[], bodies: readonly Buffer[], sent: Promise<unknown>[]): void {
    const head = `INSERT INTO ${stateTable(this.stateSchema, 'journal')}
      (change_id, origin, from_peer, hlc, commit_time, tables, op_count, body, binlog_file, binlog_pos, deleted) VALUES `;
    const one = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
    const rows = entries.map((e, i) => ({ e, body: bodies[i]! }));
    for (const chunk of chunks(rows, (r) => r.body.length + (r.e.deleted?.length ?? 0) + 200)) {
      const params: unknown[] = [];
      for (const { e, body } of chunk) {
        const tables = e.tables.join(',');
        params.push(
          e.changeId, e.origin, e.fromPeer, e.hlc, e.time.slice(0, 10) + ' ' + e.time.slice(11, 19),
          tables.length > 4000 ? tables.slice(0, 4000) : tables, e.opCount, body, e.end.file, e.end.pos, e.deleted ?? null,
        );
      }
      sent.push(tx.execute(head + Array<string>(chunk.length).fill(one).join(', '), params).catch((e: unknown) => {
        if ((e as { code?: string }).code === 'ER_DUP_ENTRY') {
          throw new SpokesyncError('SPOKESYNC_E_JOURNAL_DUPLICATE', 'a change set captured now is already in the journal (duplicate change id)', { cause: e });
        }
        throw e;
      }));
    }
  }

  private upsertVersions(tx: StateTx, entries: readonly JournalEntry[], sent: Promise<unknown>[]): void {
    const rows: [string, string, string, string, string, number][] = [];
    for (const e of entries) {
      for (const w of e.written) for (const col of w.cols) rows.push([w.table, w.id, col, e.hlc, e.origin, rows.length]);
    }
    if (rows.length === 0) return;
    // in key order (InnoDB inserts sorted keys much faster than random uuids); the last writer of a key wins
    rows.sort((a, b) => byKey(a, b) || a[5] - b[5]);
    const last = rows.filter((r, i) => i === rows.length - 1 || byKey(r, rows[i + 1]!) !== 0).map((r) => r.slice(0, 5));
    const sql = `INSERT INTO ${stateTable(this.stateSchema, 'versions')} (tbl, identity, col, hlc, node) VALUES ?
      ON DUPLICATE KEY UPDATE hlc = VALUES(hlc), node = VALUES(node)`;
    for (const chunk of chunks(last, rowBytes)) sent.push(tx.exec(sql, [chunk]));
  }

  private insertRanges(tx: StateTx, ranges: readonly InsertRange[], marks: ReadonlyMap<string, number>, sent: Promise<unknown>[]): void {
    // a plain INSERT: a run starts above its table's mark, so no earlier run has its key
    const head = `INSERT INTO ${stateTable(this.stateSchema, 'insert_ranges')} (tbl, lo, hi, hlc, node) VALUES `;
    for (const chunk of chunks(ranges, (r) => 80 + 2 * (r.tbl.length + r.node.length))) {
      let text = head;
      for (let i = 0; i < chunk.length; i++) {
        const r = chunk[i]!;
        text += `${i === 0 ? '' : ', '}(${sqlString(r.tbl)}, ${r.lo}, ${r.hi}, ${sqlString(r.hlc)}, ${sqlString(r.node)})`;
      }
      sent.push(tx.exec(text));
    }
    if (marks.size > 0) {
      sent.push(tx.exec(
        `INSERT INTO ${stateTable(this.stateSchema, 'key_marks')} (tbl, hi) VALUES ? ON DUPLICATE KEY UPDATE hi = GREATEST(hi, VALUES(hi))`,
        [[...marks]],
      ));
    }
  }

  private upsertIdmap(tx: StateTx, idmap: readonly IdmapRow[], sent: Promise<unknown>[]): void {
    const table = stateTable(this.stateSchema, 'idmap');
    // a mapping learnt again keeps the insert version it has unless it names another row now
    const head = `INSERT INTO ${table} (tbl, local_id, identity, hlc, node) VALUES `;
    const tail = `
      ON DUPLICATE KEY UPDATE
        hlc = IF(identity <=> VALUES(identity), COALESCE(VALUES(hlc), hlc), VALUES(hlc)),
        node = IF(identity <=> VALUES(identity), COALESCE(VALUES(node), node), VALUES(node)),
        identity = VALUES(identity)`;
    const sql = `${head}?${tail}`;
    // a row whose key changed: its insert version moves along from the old local id (before
    // the rows below, which may give that id to another row)
    for (const r of idmap) {
      if (r.from === undefined) continue;
      sent.push(tx.exec(sql, [[[r.tbl, r.localId, r.identity, null, null]]]));
      sent.push(tx.exec(
        `UPDATE ${table} n JOIN ${table} o ON o.tbl = n.tbl AND o.local_id = ? AND o.identity = n.identity
            SET n.hlc = o.hlc, n.node = o.node WHERE n.tbl = ? AND n.local_id = ? AND n.hlc IS NULL`,
        [r.from, r.tbl, r.localId],
      ));
      // (or, when no idmap row with a version stands for the old local id, from the range that holds it)
      const ranges = stateTable(this.stateSchema, 'insert_ranges');
      sent.push(tx.exec(
        `UPDATE ${table} n JOIN ${ranges} r ON r.tbl = n.tbl
             AND r.lo = (SELECT MAX(x.lo) FROM ${ranges} x WHERE x.tbl = ? AND x.lo <= CAST(? AS SIGNED)) AND r.hi >= CAST(? AS SIGNED)
            SET n.hlc = r.hlc, n.node = r.node WHERE n.tbl = ? AND n.local_id = ? AND n.hlc IS NULL`,
        [r.tbl, r.from, r.from, r.tbl, r.localId],
      ));
    }
    const rows = idmap.filter((r) => r.from === undefined).sort(byTableAndId);
    for (const chunk of chunks(rows, idmapBytes)) {
      // the statement's text written here (a fifth cheaper than mysql2 formatting nested arrays)
      let text = head;
      for (let i = 0; i < chunk.length; i++) {
        const r = chunk[i]!;
        text += `${i === 0 ? '' : ', '}(${sqlString(r.tbl)}, ${sqlString(r.localId)}, ${sqlString(r.identity)}, ` +
          `${r.hlc === null ? 'NULL' : sqlString(r.hlc)}, ${r.node === null ? 'NULL' : sqlString(r.node)})`;
      }
      sent.push(tx.exec(text + tail));
    }
  }
}

/** Consecutive slices of rows, each within the statement bounds (at least one row). */
function chunks<T>(rows: readonly T[], size: (r: T) => number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const r of rows) {
    const b = size(r);
    if (cur.length > 0 && (cur.length >= MAX_ROWS || bytes + b > MAX_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(r);
    bytes += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function byKey(a: readonly unknown[], b: readonly unknown[]): number {
  for (let i = 0; i < 3; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function byTableAndId(a: IdmapRow, b: IdmapRow): number {
  if (a.tbl !== b.tbl) return a.tbl < b.tbl ? -1 : 1;
  return a.localId < b.localId ? -1 : a.localId > b.localId ? 1 : 0;
}

/** What mysql2 escapes in a string literal (it quotes the rest as it is). */
// eslint-disable-next-line no-control-regex -- these control characters are exactly what needs escaping
const SQL_SPECIAL = /[\0\b\t\n\r\x1a"'\\]/;

/** A string as an SQL literal, as mysql2 would write it. */
function sqlString(s: string): string {
  return SQL_SPECIAL.test(s) ? mysql.escape(s) : `'${s}'`;
}

function idmapBytes(r: IdmapRow): number {
  return 40 + 2 * (r.tbl.length + r.localId.length + r.identity.length + (r.node?.length ?? 0));
}

/** Approximate statement bytes of a row of short values (escaped text). */
function rowBytes(r: readonly unknown[]): number {
  let n = 8;
  for (const v of r) n += typeof v === 'string' ? 2 * v.length + 4 : 24;
  return n;
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

/**
 * The checkpoint capture starts from; on the first start one is created at
 * `startAt` or the end of the binlog now. A checkpoint that is not on this
 * server's binlog (the node was restored from a backup: checkpoint-check.ts)
 * moves to the end of the binlog now, and the restore is recorded (routing/restore.ts).
 */
export async function startingCheckpoint(db: Db, stateSchema: string, startAt: BinlogPosition | undefined, log: Logger): Promise<Checkpoint> {
  const cp = await readCheckpoint(db, stateSchema);
  if (cp) {
    const verdict = await checkCheckpoint(db, stateSchema, cp);
    if (verdict.restored) await restoreFound(db, stateSchema, cp, verdict.reason, log);
    await noteCheckpointTable(db, stateSchema);
    return verdict.restored ? (await readCheckpoint(db, stateSchema))! : cp;
  }
  const end = startAt ? { position: startAt, gtid: '' } : await binlogEnd(db);
  await createCheckpoint(db, stateSchema, { position: end.position, gtid: end.gtid, hlc: '0' });
  const created = (await readCheckpoint(db, stateSchema))!;
  await noteCheckpointTable(db, stateSchema);
  log.info('first start: capture begins here', { position: formatPosition(created.position) });
  return created;
}

/** Capture starts at the end of the binlog now: what the restore wrote is in the data, and the backup's binlog is gone. */
async function restoreFound(db: Db, stateSchema: string, cp: Checkpoint, reason: string, log: Logger): Promise<void> {
  const savedAt = await checkpointSavedAt(db, stateSchema);
  const [clock] = await db.query<{ behind: number | string | null; now: string }>(
    'SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), ?) AS behind, CAST(UTC_TIMESTAMP(6) AS CHAR) AS now', [savedAt]);
  if (savedAt !== null && Number(clock?.behind ?? 0) > 0) {
    throw new SpokesyncError('SPOKESYNC_E_RESTORE_CLOCK',
      `this node was restored from a backup whose capture checkpoint was written at ${savedAt} (UTC), but its server's clock reads ${clock?.now ?? '?'}: ${reason}`);
  }
  const end = await binlogEnd(db);
  const rec = await db.transaction((tx) => recordRestore(tx, stateSchema, {
    reason, from: { file: cp.position.file, pos: cp.position.pos, gtid: cp.gtid, savedAt }, hlc: cp.hlc, to: end.position, toGtid: end.gtid, nowMs: Date.now(),
  }));
  log.warn('this node was restored from a backup: capture starts at the end of the binlog now, and its peers send again what it had after the backup', {
    reason, backupCheckpoint: formatPosition(cp.position), backupCheckpointWritten: savedAt, captureFrom: formatPosition(end.position),
    journalTop: rec.journalTop, incarnation: rec.incarnation.after,
    fix: 'Changes made on this server after the restore and before this start, and changes made before the backup that capture had not ' +
      'journaled yet (after the checkpoint time above), are not captured: run `spokesync verify` with the parent to find them.',
  });
}
