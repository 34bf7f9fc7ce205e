// Waiting for the capture of another process (the daemon) from a command that
// runs beside it: everything committed before the call must be journaled, with
// its versions, before the command exports or decides a conflict. The daemon's
// stored checkpoint says how far it has written; transactions after it that
// capture has nothing to journal for (the state schema's own bookkeeping,
// tables that do not sync) move the checkpoint only seconds later, so the
// binlog between the checkpoint and its end is read (SHOW BINLOG EVENTS): when
// none of it is for capture, capture is caught up.
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { lockHeld } from '../../apply/core/named-lock.js';
import { CARRY_TABLE } from '../../apply/replay/carry.js';
import { binlogEnd, binlogFiles } from '../capture/binlog-server.js';
import { comparePositions, fileIndex, formatPosition, type BinlogPosition } from '../capture/position.js';
import { readCheckpoint } from '../journal/writer.js';

export interface DaemonCaptureOptions {
  readonly db: Queryable;
  /** the application schema */
  readonly schema: string;
  readonly stateSchema: string;
  /** whether capture journals rows of this application table */
  readonly journals: (table: string) => boolean;
  /** the node lock: while nobody holds it, no process captures */
  readonly nodeLock: string;
  /** how long the checkpoint may stand still before the wait fails (default 2 minutes) */
  readonly stallMs?: number;
  /** how long the node lock may be free before the wait ends with DaemonGone (default 10 s: a daemon being restarted) */
  readonly goneMs?: number;
  readonly now?: () => number;
}

/** Nobody holds the node any more: the daemon stopped while a command waited for its capture. */
export class DaemonGone extends SpokesyncError {
  constructor() {
    super('SPOKESYNC_E_CAPTURE', 'the daemon stopped while this command waited for its capture; this command stopped, keeping only what it had finished',
      { fix: 'Run the command again: with the daemon stopped it runs capture itself, and what it applied before is kept and not applied twice.' });
  }
}

/** binlog events read per question, and at most per wait before asking the checkpoint again */
const PAGE = 500;
const MAX_EVENTS = 20_000;

interface EventRow {
  Pos: number | string;
  End_log_pos: number | string;
  Event_type: string;
  Info: string | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A wait for the daemon's capture: resolves once everything committed before the call is journaled. */
export function daemonCaughtUp(o: DaemonCaptureOptions): () => Promise<void> {
  const now = o.now ?? Date.now;
  const stallMs = o.stallMs ?? 120_000;
  const goneMs = o.goneMs ?? 10_000;
  return async () => {
    const target = (await binlogEnd(o.db)).position;
    let last: BinlogPosition | undefined;
    let movedAt = now();
    let freeSince: number | null = null;
    for (let delay = 2; ; delay = Math.min(200, delay * 2)) {
      const at = (await readCheckpoint(o.db, o.stateSchema))?.position;
      if (at && (comparePositions(at, target) >= 0 || (await nothingToJournal(o, at, target)))) return;
      if (at && (!last || comparePositions(at, last) !== 0)) {
        last = at;
        movedAt = now();
      }
      if (now() - movedAt > stallMs) {
        throw new SpokesyncError('SPOKESYNC_E_CAPTURE',
          `the daemon's capture has not moved for ${Math.round(stallMs / 1000)} s (it is at ${at ? formatPosition(at) : 'no checkpoint'}, ` +
          `the binlog at ${formatPosition(target)}); this command stopped, keeping only what it had finished`,
          { fix: 'See `spokesync status` and the daemon\'s log; once capture moves again, run the command again (what it applied is kept, and nothing applies twice).' });
      }
      if (await lockHeld(o.db, o.nodeLock)) freeSince = null;
      else if (now() - (freeSince ??= now()) > goneMs) throw new DaemonGone();
      await sleep(delay);
    }
  };
}

/** Whether no event between `from` and `to` is one capture journals (false when that cannot be told). */
async function nothingToJournal(o: DaemonCaptureOptions, from: BinlogPosition, to: BinlogPosition): Promise<boolean> {
  try {
    const files = from.file === to.file ? [from.file] : (await binlogFiles(o.db)).filter((f) =>
      fileIndex(f) >= fileIndex(from.file) && fileIndex(f) <= fileIndex(to.file));
    if (files[0] !== from.file || files[files.length - 1] !== to.file) return false;
    let read = 0;
    for (const file of files) {
      let pos: number | null = file === from.file ? from.pos : null;
      for (;;) {
        const rows = await o.db.query<EventRow>(
          `SHOW BINLOG EVENTS IN ?${pos === null ? '' : ` FROM ${pos}`} LIMIT ${PAGE}`, [file]);
        for (const r of rows) {
          if (file === to.file && Number(r.Pos) >= to.pos) return true;
          if (forCapture(o, r)) return false;
        }
        read += rows.length;
        if (read > MAX_EVENTS) return false;
        if (rows.length < PAGE) break;
        pos = Number(rows[rows.length - 1]!.End_log_pos);
      }
    }
    return true;
  } catch {
    // not readable here (grants, a purged file): the checkpoint alone answers
    return false;
  }
}

/** Whether capture may journal something for this event: rows of a synced table, of the ledger or carry table, or a statement on the schema. */
export function forCapture(o: Pick<DaemonCaptureOptions, 'schema' | 'stateSchema' | 'journals'>, r: Pick<EventRow, 'Event_type' | 'Info'>): boolean {
  const info = r.Info ?? '';
  if (r.Event_type === 'Table_map') {
    const m = /\((.*)\)\s*$/.exec(info);
    if (!m) return true;
    const name = m[1]!;
    if (name === `${o.stateSchema}.ledger` || name === `${o.stateSchema}.${CARRY_TABLE}`) return true;
    return name.startsWith(`${o.schema}.`) && o.journals(name.slice(o.schema.length + 1));
  }
  if (r.Event_type.startsWith('Query')) {
    const sql = info.trim().toUpperCase();
    if (sql === 'BEGIN' || sql === 'COMMIT' || sql === 'ROLLBACK' || sql.startsWith('SAVEPOINT') || sql.startsWith('ROLLBACK TO')) return false;
    // DDL: capture reads the statements that name the schema
    return info.toLowerCase().includes(o.schema.toLowerCase());
  }
  return r.Event_type.includes('load_query');
}
