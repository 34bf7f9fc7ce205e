// The ledger of applied change ids: written first in every change set's
// transaction (capture reads it from the binlog to attribute what follows to
// its origin and peer), checked before applying so a change set applies once.
import type { Queryable } from '../core/db.js';
import { stateTable } from '../core/state-schema.js';
import type { ChangeSet } from '../core/model.js';
import { changeSetDigest } from './content.js';
import { sqlCommitTime, sqlTime } from './value-compare.js';

/** The ledger row of `cs`, with the digest of its content (content.ts): the id is claimed for that content only. */
export async function writeLedger(tx: Queryable, stateSchema: string, cs: ChangeSet, fromPeer: string, nowMs: number): Promise<void> {
  await tx.exec(
    `INSERT INTO ${stateTable(stateSchema, 'ledger')} (change_id, origin, from_peer, hlc, commit_time, applied_at, digest) VALUES (?, ?, ?, ?, ?, ?, UNHEX(?))`,
    [cs.id, cs.origin, fromPeer, cs.hlc, sqlCommitTime(cs.time), sqlTime(nowMs), changeSetDigest(cs)],
  );
}
