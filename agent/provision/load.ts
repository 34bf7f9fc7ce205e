// Loads a snapshot into this node's application schema (the child side of
// provisioning). The load runs with sql_log_bin = 0 on its own session, so it
// never reaches the binlog and capture never mistakes it for local changes; that
// needs BINLOG ADMIN (MariaDB >= 10.5.2; SUPER before) or, on MySQL,
// SYSTEM_VARIABLES_ADMIN / SESSION_VARIABLES_ADMIN.
//
// Restartable: `${stateSchema}.meta` k='clone' says 'loading' from before the
// first drop until the very end; a rerun that finds 'loading' starts over
// without --force. Completion (capture checkpoint at the binlog end, peers row
// and parent id, clone 'done') is written in one transaction, and only after
// the reader has verified the trailer's checksum and row counts. A load that
// fails once the schema was replaced (a damaged or cut stream, a chunk of a
// sealed file that does not authenticate, a lost link, a signal) empties the
// schema again before it reports the error, so no half-loaded tables are left
// for an application to start on; only a crash (kill -9, power) leaves them,
// with the 'loading' mark that makes the next clone start over.
//
// A clone over change sets the parent has not acknowledged (the journal above the
// parent's ack) throws them away: refused unless discardLocal, and then recorded
// (provision/rails.ts) before the schema is dropped.
import type { SnapshotResult } from './snapshot-writer.js';
import type { Readable } from 'node:stream';
import { qid, type Db, type Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { ensureStateSchema, stateTable } from '../../apply/core/state-schema.js';
import { NodeLock } from '../node-lock.js';
import { everyTable, operatorName, recordLoss, unacknowledged, unsentError, type LocalChanges } from './rails.js';
import type { Route } from '../routing/filters.js';
import { binlogEnd } from '../capture/binlog-server.js';
import type { SnapshotHeader, SnapshotTable, SnapshotValue } from './snapshot-format.js';
import { formatPosition, type BinlogPosition } from '../capture/position.js';
import { createProgress, type Progress } from './progress.js';
import { readSnapshot, type SnapshotEvent } from './snapshot-reader.js';

export const CLONE_KEY = 'clone';
export const PARENT_KEY = 'parent.id';

export interface CloneDeps {
  /** a pool on this node's server (no default schema needed) */
  readonly db: Db;
  readonly schema: string;
  readonly stateSchema: string;
  /** this node's id: the snapshot must have been made for it */
  readonly node: string;
  readonly log: Logger;
  /** drop a non-empty application schema */
  readonly force: boolean;
  /** throw away change sets the parent has not acknowledged (recorded as a loss); default false */
  readonly discardLocal?: boolean;
  /** the route toward the parent, by its id (its one-way tables count); default: every table */
  readonly toParent?: (parent: string) => Route;
  readonly progress?: (totalRows: number) => Progress;
  /** bytes of SQL per INSERT statement (default: a quarter of max_allowed_packet, at most 4 MiB) */
  readonly statementBytes?: number;
}

/** What a clone loaded: the snapshot's figures, and the parent it came from. */
export interface CloneResult extends SnapshotResult {
  readonly parent: string;
}

interface CloneMark {
  readonly state: 'loading' | 'done';
  readonly from?: string;
  readonly binlog?: string;
  readonly journalSeq?: string;
  readonly at: string;
}

async function getMark(db: Queryable, stateSchema: string): Promise<CloneMark | undefined> {
  const rows = await db.query<{ v: string }>(`SELECT v FROM ${stateTable(stateSchema, 'meta')} WHERE k = ?`, [CLONE_KEY]);
  if (!rows[0]) return undefined;
  try {
    return JSON.parse(rows[0].v) as CloneMark;
  } catch {
    return { state: 'loading', at: '' };
  }
}

async function setMeta(db: Queryable, stateSchema: string, k: string, v: string): Promise<void> {
  await db.exec(
    `INSERT INTO ${stateTable(stateSchema, 'meta')} (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)`,
    [k, v],
  );
}

/** Whether a clone began here and did not finish (the next one starts over). */
export async function cloneUnfinished(db: Queryable, stateSchema: string): Promise<boolean> {
  return (await getMark(db, stateSchema))?.state === 'loading';
}

/** What a clone would do here, checked before anything is downloaded or dropped. */
export async function checkCloneTarget(deps: CloneDeps): Promise<{ resume: boolean; tables: number; local: LocalChanges }> {
  if (deps.schema === deps.stateSchema) {
    throw new SpokesyncError('SPOKESYNC_E_CONFIG', 'database.schema and database.stateSchema must differ');
  }
  await ensureStateSchema(deps.db, deps.stateSchema);
  const mark = await getMark(deps.db, deps.stateSchema);
  const [row] = await deps.db.query<{ n: string | number }>(
    'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [deps.schema],
  );
  const tables = Number(row?.n ?? 0);
  const resume = mark?.state === 'loading';
  if (tables > 0 && !resume && !deps.force) {
    throw new SpokesyncError('SPOKESYNC_E_NOT_EMPTY', `schema ${deps.schema} already has ${tables} tables`);
  }
  // a clone started over was admitted (and its loss recorded) the first time
  const local = resume ? { parent: null, count: 0, ackedSeq: '0' } : await unacknowledged(deps.db, deps.stateSchema, deps.toParent ?? ((p) => everyTable(p, 'parent')));
  if (local.count > 0 && deps.discardLocal !== true) throw unsentError(deps.node, local);
  return { resume, tables, local };
}

/**
 * Multi-row INSERTs of one table, flushed by size. One statement runs on the
 * server while the next is built from the stream (at most two in memory).
 */
class TableLoader {
  private inflight: Promise<unknown> | null = null;
  private sqlHead: string;
  private tuple: string;
  private params: SnapshotValue[] = [];
  private rows = 0;
  private bytes = 0;
  constructor(private readonly conn: Queryable, schema: string, table: SnapshotTable, private readonly limit: number) {
    this.sqlHead = `INSERT INTO ${qid(schema)}.${qid(table.name)} (${table.columns.map((c) => qid(c.name)).join(', ')}) VALUES `;
    this.tuple = `(${table.columns.map(() => '?').join(', ')})`;
  }

  async add(values: SnapshotValue[], lineBytes: number): Promise<void> {
    // hex and escapes can double a value's size on the wire
    if (this.rows > 0 && this.bytes + 2 * lineBytes > this.limit) await this.flush();
    this.params.push(...values);
    this.rows++;
    this.bytes += 2 * lineBytes;
  }

  /** Sends what is buffered; resolves once the statement before it has run. */
  async flush(): Promise<void> {
    if (this.rows === 0) return;
    const sql = this.sqlHead + new Array<string>(this.rows).fill(this.tuple).join(',');
    const params = this.params;
    this.params = [];
    this.rows = 0;
    this.bytes = 0;
    await this.inflight;
    this.inflight = this.conn.exec(sql, params);
    this.inflight.catch(() => undefined);
  }

  /** Everything sent and run. */
  async finish(): Promise<void> {
    await this.flush();
    await this.inflight;
    this.inflight = null;
  }
}

/**
 * Clones the snapshot read from `open()` into the application schema.
 * `open` is called only after the target has been checked.
 */
export async function cloneSnapshot(deps: CloneDeps, open: () => Promise<Readable>): Promise<CloneResult> {
  const started = Date.now();
  const log = deps.log;
  await ensureStateSchema(deps.db, deps.stateSchema);
  const lock = await NodeLock.take(deps.db, deps.stateSchema, deps.node);
  let conn: (Queryable & { release(): void }) | undefined;
  let events: AsyncGenerator<SnapshotEvent> | undefined;
  let progress: Progress | undefined;
  /** set from the first drop until the clone is complete: a failure in between empties the schema */
  let replacing: SnapshotHeader | undefined;
  try {
    const target = await checkCloneTarget(deps);
    if (target.resume) log.warn('an earlier clone did not finish: starting over');
    events = readSnapshot(await open());
    conn = await deps.db.connection();
    try {
      await conn.exec('SET SESSION sql_log_bin = 0');
    } catch (e) {
      throw new SpokesyncError('SPOKESYNC_E_PREFLIGHT', 'cannot turn off binary logging for the clone session (SET sql_log_bin = 0)', {
        cause: e,
        fix: 'GRANT BINLOG ADMIN ON *.* TO the spokesync user (MariaDB 10.5.2+; SUPER on older MariaDB; ' +
          'SYSTEM_VARIABLES_ADMIN on MySQL 8), then run clone again. See deploy/README.md.',
      });
    }
    await conn.exec("SET SESSION foreign_key_checks = 0, unique_checks = 0, time_zone = '+00:00', " +
      "sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'");
    const [mp] = await conn.query<{ m: string | number }>('SELECT @@max_allowed_packet AS m');
    const limit = deps.statementBytes ?? Math.min(4 * 1024 * 1024, Math.floor(Number(mp?.m ?? 4194304) / 4));

    const first = await events.next();
    if (first.done || first.value.kind !== 'header') throw new SpokesyncError('SPOKESYNC_E_SNAPSHOT', 'the snapshot has no header');
    const header: SnapshotHeader = first.value.header;
    if (header.peer !== deps.node) {
      throw new SpokesyncError('SPOKESYNC_E_SNAPSHOT', `the snapshot was made for node ${header.peer}, not for ${deps.node}`, {
        fix: `Make a snapshot for this node on the parent: spokesync snapshot --config F --peer ${deps.node} --out FILE.`,
      });
    }
    log.info('clone started', { from: header.node, position: formatPosition(header.binlog), tables: header.tables.length });

    // From here until the end, a rerun knows the schema holds a partial load.
    await setMeta(conn, deps.stateSchema, CLONE_KEY, JSON.stringify({
      state: 'loading', from: header.node, binlog: formatPosition(header.binlog), at: new Date().toISOString(),
    } satisfies CloneMark));
    if (target.local.count > 0) {
      const n = target.local.count;
      await recordLoss(conn, deps.stateSchema, {
        command: 'clone --force --discard-local', peer: target.local.parent ?? header.node, changeSets: n, by: operatorName(),
        detail: `${n} change set${n === 1 ? '' : 's'} of this node's journal after seq ${target.local.ackedSeq}, not acknowledged by ` +
          `${target.local.parent ?? header.node}, were thrown away with the application schema (the journal keeps them; they are not sent)`,
      });
      log.warn('change sets not acknowledged by the parent are thrown away (--discard-local)', { count: n, parent: target.local.parent });
    }
    try {
      await conn.exec(`DROP DATABASE IF EXISTS ${qid(deps.schema)}`);
      await conn.exec(`CREATE DATABASE ${qid(deps.schema)} CHARACTER SET ${qid(header.charset)} COLLATE ${qid(header.collation)}`);
    } catch (e) {
      throw new SpokesyncError('SPOKESYNC_E_PREFLIGHT', `cannot replace schema ${deps.schema} (${(e as { code?: string }).code ?? 'error'})`, {
        cause: e,
        fix: `GRANT CREATE, DROP ON \`${deps.schema}\`.* TO the spokesync user for the clone (revoke it afterwards), then run clone again.`,
      });
    }
    replacing = header;
    await conn.exec(`USE ${qid(deps.schema)}`);
    for (const t of header.tables) await conn.exec(t.ddl);

    const totalRows = header.tables.reduce((n, t) => n + t.estimatedRows, 0);
    progress = (deps.progress ?? ((total) => createProgress({ label: 'clone', totalRows: total, log })))(totalRows);
    let loader: TableLoader | undefined;
    let rows = 0;
    let bytes = 0;
    for (;;) {
      const next = await events.next();
      if (next.done) throw new SpokesyncError('SPOKESYNC_E_SNAPSHOT', 'the snapshot ended without a trailer');
      const ev = next.value;
      if (ev.kind === 'table') {
        await loader?.finish();
        loader = new TableLoader(conn, deps.schema, ev.table, limit);
        progress.table(ev.table.name);
      } else if (ev.kind === 'row') {
        await loader!.add(ev.values, ev.bytes);
        rows++;
        bytes += ev.bytes;
        progress.add(1, ev.bytes);
      } else if (ev.kind === 'end') {
        await loader?.finish();
        // Verified: record the clone as complete, and where capture starts.
        const end = await binlogEnd(conn);
        const journalSeq = ev.trailer.journalSeq;
        const mark: CloneMark = {
          state: 'done', from: header.node, binlog: formatPosition(header.binlog), journalSeq, at: new Date().toISOString(),
        };
        await completeClone(conn, deps.stateSchema, header.node, journalSeq, end, mark);
        replacing = undefined;
        progress.done(true);
        const result: CloneResult = {
          parent: header.node, position: header.binlog, journalSeq, tables: header.tables.length, rows, bytes,
          seconds: (Date.now() - started) / 1000,
        };
        log.info('clone complete', { ...result, position: formatPosition(header.binlog), captureFrom: formatPosition(end.position) });
        return result;
      }
    }
  } catch (e) {
    progress?.done(false);
    await events?.return(undefined).catch(() => undefined);
    if (replacing && conn) await emptySchema(conn, deps, replacing);
    throw e;
  } finally {
    if (conn) {
      await conn.exec('SET SESSION sql_log_bin = 1, foreign_key_checks = 1, unique_checks = 1').catch(() => undefined);
      conn.release();
    }
    await lock.release();
  }
}

/**
 * After a failed load: the application schema is dropped and created again
 * empty, on the load's session (not binlogged). The 'loading' mark stays, so a
 * rerun starts over without --force.
 */
async function emptySchema(conn: Queryable, deps: CloneDeps, header: SnapshotHeader): Promise<void> {
  try {
    await conn.exec(`DROP DATABASE IF EXISTS ${qid(deps.schema)}`);
    await conn.exec(`CREATE DATABASE ${qid(deps.schema)} CHARACTER SET ${qid(header.charset)} COLLATE ${qid(header.collation)}`);
    deps.log.warn('the clone failed: the application schema was emptied again; run clone again', { schema: deps.schema });
  } catch (e) {
    deps.log.warn('the clone failed and its partly loaded schema could not be emptied: run clone again (it starts over), ' +
      'and do not start the application on this schema before', { schema: deps.schema, code: (e as { code?: string }).code });
  }
}

/** On the load's own session (not binlogged either), in one transaction. */
async function completeClone(
  tx: Queryable, stateSchema: string, parent: string, journalSeq: string,
  end: { position: BinlogPosition; gtid: string }, mark: CloneMark,
): Promise<void> {
  await tx.exec('START TRANSACTION');
  try {
    // Capture starts after the load; its HLC (kept) never goes backwards.
    await tx.exec(
      `INSERT INTO ${stateTable(stateSchema, 'checkpoint')} (id, binlog_file, binlog_pos, gtid, hlc, updated_at)
       VALUES (1, ?, ?, ?, 0, UTC_TIMESTAMP(6))
       ON DUPLICATE KEY UPDATE binlog_file = VALUES(binlog_file), binlog_pos = VALUES(binlog_pos), gtid = VALUES(gtid),
         updated_at = VALUES(updated_at)`,
      [end.position.file, end.position.pos, end.gtid],
    );
    // Local state about rows that are gone now.
    for (const t of ['idmap', 'insert_ranges', 'key_marks', 'versions', 'quarantine']) await tx.exec(`DELETE FROM ${stateTable(stateSchema, t)}`);
    // Everything the parent journaled up to the snapshot is in the data; nothing
    // journaled here before the clone is sent up.
    const [top] = await tx.query<{ m: string | number | null }>(`SELECT MAX(seq) AS m FROM ${stateTable(stateSchema, 'journal')}`);
    await tx.exec(
      `INSERT INTO ${stateTable(stateSchema, 'peers')} (peer, acked_seq, received_seq, batch_seq, last_contact, last_result)
       VALUES (?, ?, ?, 0, NULL, ?)
       ON DUPLICATE KEY UPDATE acked_seq = VALUES(acked_seq), received_seq = VALUES(received_seq), last_result = VALUES(last_result)`,
      [parent, String(top?.m ?? 0), journalSeq, `cloned at journal seq ${journalSeq}`],
    );
    await setMeta(tx, stateSchema, PARENT_KEY, parent);
    await setMeta(tx, stateSchema, CLONE_KEY, JSON.stringify(mark));
    await tx.exec('COMMIT');
  } catch (e) {
    await tx.exec('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
