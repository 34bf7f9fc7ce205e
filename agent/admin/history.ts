// The history of exchange rounds with each peer (state table `exchanges`):
// when, how long, bytes and change sets each way, and how it ended. Both
// sides record: a child its rounds with its parent, a parent each child's.
// Bounded: past the newest `keep` rows of a peer, older ones go as rows are written.
import type { Db, Queryable } from '../../apply/core/db.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { unlogged } from '../../apply/core/unlogged.js';
import { sqlTime } from '../../apply/replay/value-compare.js';
import type { RoundRecord } from '../exchange/protocol.js';
import { isoOf } from './time.js';

/** rounds kept per peer */
export const HISTORY_KEEP = 200;

/** One round as status.json and the status reports show it. Up is toward the parent. */
export interface HistoryEntry {
  /** ISO 8601, UTC */
  readonly at: string;
  readonly durationMs: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly setsUp: number;
  readonly setsDown: number;
  /** 'ok', or `CODE: message` */
  readonly result: string;
}

const clampInt = (n: number, max: number): number => Math.max(0, Math.min(max, Math.round(Number.isFinite(n) ? n : 0)));

/** Writes one round and drops the peer's rows past the newest `keep`. */
export async function recordRound(db: Db, stateSchema: string, r: RoundRecord, keep = HISTORY_KEEP): Promise<void> {
  const table = stateTable(stateSchema, 'exchanges');
  await unlogged(db, async (q) => {
    const { insertId } = await q.exec(
      `INSERT INTO ${table} (peer, role, started_at, duration_ms, bytes_up, bytes_down, sets_up, sets_down, result)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [r.peer, r.role, sqlTime(r.startedAt.getTime()), clampInt(r.durationMs, 4_294_967_295), clampInt(r.bytesUp, Number.MAX_SAFE_INTEGER),
        clampInt(r.bytesDown, Number.MAX_SAFE_INTEGER), clampInt(r.setsUp, 4_294_967_295), clampInt(r.setsDown, 4_294_967_295), r.result.slice(0, 500)],
    );
    // ids grow: everything of the peer below its keep-th newest goes
    await q.exec(
      `DELETE FROM ${table} WHERE peer = ? AND id < ? AND id <= (
         SELECT id FROM (SELECT id FROM ${table} WHERE peer = ? ORDER BY id DESC LIMIT 1 OFFSET ?) AS newest)`,
      [r.peer, insertId, r.peer, Math.max(0, keep)],
    );
  });
}

/** The newest `limit` rounds with `peer`, newest first. */
export async function roundsWith(db: Queryable, stateSchema: string, peer: string, limit: number): Promise<HistoryEntry[]> {
  const rows = await db.query<{
    started_at: string; duration_ms: number | string; bytes_up: number | string; bytes_down: number | string;
    sets_up: number | string; sets_down: number | string; result: string;
  }>(
    `SELECT started_at, duration_ms, bytes_up, bytes_down, sets_up, sets_down, result FROM ${stateTable(stateSchema, 'exchanges')}
      WHERE peer = ? ORDER BY id DESC LIMIT ${Math.max(0, Math.floor(limit))}`, [peer]);
  return rows.map((r) => ({
    at: isoOf(r.started_at) ?? '', durationMs: Number(r.duration_ms), bytesUp: Number(r.bytes_up), bytesDown: Number(r.bytes_down),
    setsUp: Number(r.sets_up), setsDown: Number(r.sets_down), result: r.result,
  }));
}
