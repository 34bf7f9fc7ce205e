// What a change set's id stands for: its content, as a digest kept with its
// ledger row (and recomputable from a quarantined body), and its stamp, which
// must not be ahead of this node's clock by more than clock.maxDrift. An id
// that comes again with other content is refused with its batch: an id can be
// claimed once, never pre-empted silently.
import { createHash } from 'node:crypto';
import type { Queryable } from '../core/db.js';
import { formatDuration } from '../core/units.js';
import { SpokesyncError } from '../core/errors.js';
import { stateTable } from '../core/state-schema.js';
import { encodeChangeSet, encodeChangeSetBytes } from '../codec/encode.js';
import { hlcTime, unpackHlc } from '../core/hlc.js';
import type { ChangeSet } from '../core/model.js';
import { label, type PlannedEntry } from './validate.js';

const digests = new WeakMap<ChangeSet, string>();

/** The change set in its canonical encoding (what quarantine and holds keep). */
export function changeSetXml(cs: ChangeSet): string {
  return encodeChangeSet(cs);
}

/** SHA-256 (hex) of the canonical encoding's bytes: equal content, equal digest, whatever path it came by. */
export function changeSetDigest(cs: ChangeSet): string {
  let d = digests.get(cs);
  if (d === undefined) {
    d = createHash('sha256').update(encodeChangeSetBytes(cs)).digest('hex');
    digests.set(cs, d);
  }
  return d;
}

/**
 * Refuses the batch when one of its ids was applied or quarantined here with
 * other content, or comes twice in it with different content. Rows applied
 * before digests were kept are not checked.
 */
export async function checkContent(db: Queryable, stateSchema: string, fromPeer: string, entries: readonly PlannedEntry[]): Promise<void> {
  // digests are taken here only where they are compared (the rest while the group's statements run: executor.ts)
  const mine = new Map<string, ChangeSet>();
  for (const e of entries) {
    const before = mine.get(e.cs.id);
    if (before !== undefined && changeSetDigest(before) !== changeSetDigest(e.cs)) throw differs(e.cs.id, fromPeer, 'sent twice in one batch with different content');
    mine.set(e.cs.id, e.cs);
  }
  const ids = [...mine.keys()];
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    const list = part.map(() => '?').join(', ');
    const rows = await db.query<{ src: string; id: string; digest: string | null }>(
      `SELECT 'applied' AS src, change_id AS id, LOWER(HEX(digest)) AS digest FROM ${stateTable(stateSchema, 'ledger')} WHERE change_id IN (${list})
       UNION ALL
       SELECT 'quarantined', change_id, LOWER(SHA2(body, 256)) FROM ${stateTable(stateSchema, 'quarantine')} WHERE change_id IN (${list})`,
      [...part, ...part],
    );
    for (const r of rows) {
      if (r.digest !== null && r.digest !== changeSetDigest(mine.get(r.id)!)) throw differs(r.id, fromPeer, `${r.src} here before with other content`);
    }
  }
}

function differs(id: string, fromPeer: string, how: string): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_CHANGE_ID',
    `change set ${label(id)} from '${fromPeer}' was ${how}: one of the two is forged; nothing of the batch was applied`);
}

/** Why a change set's stamp keeps it from applying now (too far ahead of `nowMs`), or null. */
export function stampAhead(cs: ChangeSet, nowMs: number, maxDriftMs: number): string | null {
  const h = BigInt(cs.hlc);
  if (unpackHlc(h).ms <= nowMs + maxDriftMs) return null;
  return `the stamp of origin '${cs.origin}' is at ${hlcTime(h)}, more than ${formatDuration(maxDriftMs)} (clock.maxDrift) ahead of this node's clock; ` +
    `retried until this clock is within ${formatDuration(maxDriftMs)} of it (correct the clock of '${cs.origin}' if it is wrong)`;
}
