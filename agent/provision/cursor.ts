// Where a new child's cursor starts on its parent. A snapshot corresponds to a
// binlog position P; the parent's capture journals source transactions in binlog
// order, so once capture has passed P, the journal rows with (binlog_file,
// binlog_pos) <= P are exactly the change sets already in the snapshot's data,
// and the cursor is the largest seq among them.
import { comparePositions, formatPosition, type BinlogPosition } from '../capture/position.js';
import { readCheckpoint } from '../journal/writer.js';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { stateTable } from '../../apply/core/state-schema.js';

/** What the snapshot writer calls once the data is out: resolve when capture has journaled up to `pos`. */
export type WaitForCapture = (pos: BinlogPosition, keepAlive: () => Promise<void>) => Promise<void>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits through a capture running in this process: caughtUp() resolves when
 * everything committed before the call is journaled, which includes `pos`.
 */
export function viaCapture(capture: { caughtUp(timeoutMs?: number): Promise<void> }, timeoutMs = 300_000): WaitForCapture {
  return async (_pos, keepAlive) => {
    const done = capture.caughtUp(timeoutMs).then(() => true);
    done.catch(() => undefined);
    while (!(await Promise.race([done, sleep(2000).then(() => false)]))) await keepAlive();
  };
}

/**
 * Waits through the checkpoint table, for a capture running in another process
 * (the daemon). Capture checkpoints past transactions it skips only when more
 * binlog arrives a few seconds after its last write, so while waiting this
 * writes a tick into the state schema's meta table (never journaled).
 */
export function viaCheckpoint(db: Queryable, stateSchema: string, opts: { stallMs?: number; pollMs?: number } = {}): WaitForCapture {
  const stallMs = opts.stallMs ?? 300_000;
  const pollMs = opts.pollMs ?? 1000;
  return async (target, keepAlive) => {
    let last: BinlogPosition | undefined;
    let stalled = 0;
    for (;;) {
      const at = (await readCheckpoint(db, stateSchema))?.position;
      if (at && comparePositions(at, target) >= 0) return;
      const moved = at !== undefined && (last === undefined || comparePositions(at, last) !== 0);
      stalled = moved ? 0 : stalled + pollMs;
      last = at;
      if (stalled >= stallMs) {
        throw new SpokesyncError(
          'SPOKESYNC_E_SNAPSHOT',
          `capture has not reached the snapshot position ${formatPosition(target)} (it is at ${at ? formatPosition(at) : 'no checkpoint'})`,
          { fix: 'Make sure `spokesync run` is capturing on this node (see `spokesync status`), then try again.' },
        );
      }
      await db.exec(
        `INSERT INTO ${stateTable(stateSchema, 'meta')} (k, v) VALUES ('snapshot.tick', ?) ON DUPLICATE KEY UPDATE v = VALUES(v)`,
        [new Date().toISOString()],
      );
      await keepAlive();
      await sleep(pollMs);
    }
  };
}

/**
 * The largest journal seq whose source transaction ends at or before `pos`
 * ('0' when there is none). Journal seqs follow binlog order, so this scans
 * backwards from the newest row and stops at the first one at or before `pos`.
 */
export async function journalSeqAt(db: Queryable, stateSchema: string, pos: BinlogPosition): Promise<string> {
  const journal = stateTable(stateSchema, 'journal');
  let below: string | undefined;
  for (;;) {
    const rows = await db.query<{ seq: string | number; binlog_file: string; binlog_pos: string | number }>(
      `SELECT seq, binlog_file, binlog_pos FROM ${journal}${below === undefined ? '' : ' WHERE seq < ?'} ORDER BY seq DESC LIMIT 500`,
      below === undefined ? [] : [below],
    );
    if (rows.length === 0) return '0';
    for (const r of rows) {
      if (comparePositions({ file: r.binlog_file, pos: Number(r.binlog_pos) }, pos) <= 0) return String(r.seq);
    }
    below = String(rows[rows.length - 1]!.seq);
  }
}

/**
 * Starts a child's cursor at `seq` of our journal: everything up to it is in the
 * snapshot the child loads. received_seq restarts at 0 (a re-provisioned child may
 * number its journal afresh; the ledger drops anything seen twice).
 */
export async function startChildCursor(db: Queryable, stateSchema: string, peer: string, seq: string, note: string): Promise<void> {
  await db.exec(
    `INSERT INTO ${stateTable(stateSchema, 'peers')} (peer, acked_seq, received_seq, batch_seq, last_contact, last_result)
     VALUES (?, ?, 0, 0, UTC_TIMESTAMP(6), ?)
     ON DUPLICATE KEY UPDATE acked_seq = VALUES(acked_seq), received_seq = 0,
       last_contact = VALUES(last_contact), last_result = VALUES(last_result)`,
    [peer, seq, note.slice(0, 500)],
  );
}
