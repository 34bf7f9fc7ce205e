// The ledger of applied change ids: written first in every change set's
// transaction (capture reads it from the binlog to attribute what follows to
// its origin and peer), checked before applying so a change set applies once.
import type { Queryable } from '../../agent/db.js';
import { stateTable } from '../../agent/state/schema.js';
import type { ChangeSet } from '../model.js';
import { sqlCommitTime, sqlTime } from './values.js';

/** Which of ids are in the ledger already. */
export async function inLedger(q: Queryable, stateSchema: string, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await q.query<{ change_id: string }>(
    `SELECT change_id FROM ${stateTable(stateSchema, 'ledger')} WHERE change_id IN (${ids.map(() => '?').join(', ')})`,
    ids,
  );
  return new Set(rows.map((r) => r.change_id));
}

export async function writeLedger(tx: Queryable, stateSchema: string, cs: ChangeSet, fromPeer: string, nowMs: number): Promise<void> {
  await tx.exec(
    `INSERT INTO ${stateTable(stateSchema, 'ledger')} (change_id, origin, from_peer, hlc, commit_time, applied_at) VALUES (?, ?, ?, ?, ?, ?)`,
    [cs.id, cs.origin, fromPeer, cs.hlc, sqlCommitTime(cs.time), sqlTime(nowMs)],
  );
}
