// A node's incarnation, and the record of its restore from a backup. The
// incarnation is a random id kept in the state schema; a node restored from a
// backup (agent/capture/checkpoint-check.ts finds that the capture checkpoint is
// not on this server's binlog) takes a new one, so its peers, which remember the
// old one, know that it lost what it had after the backup (agent/exchange/recovery.ts).
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../../apply/core/db.js';
import { DEFAULT_MAX_DRIFT_MS, hlcMs, packHlc } from '../../apply/core/hlc.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { BinlogPosition } from '../capture/position.js';
import { getMeta, setMeta } from './cursors.js';

/** meta key: this node's incarnation */
export const INCARNATION_KEY = 'incarnation';
/** meta key: the last restore from a backup (JSON, RestoreRecord) */
export const RESTORE_KEY = 'restore';

export function newIncarnation(): string {
  return randomBytes(16).toString('hex');
}

/** This node's incarnation, made on first use. */
export async function incarnation(db: Queryable, stateSchema: string): Promise<string> {
  const known = await getMeta(db, stateSchema, INCARNATION_KEY);
  if (known) return known;
  await db.exec(`INSERT IGNORE INTO ${stateTable(stateSchema, 'meta')} (k, v) VALUES (?, ?)`, [INCARNATION_KEY, newIncarnation()]);
  return (await getMeta(db, stateSchema, INCARNATION_KEY))!;
}

export interface RestoreRecord {
  /** when the restore was found (ISO) */
  readonly at: string;
  /** why the checkpoint was not this server's */
  readonly reason: string;
  /** the checkpoint the backup held: the last binlog position captured before it, and when it was written */
  readonly from: { readonly file: string; readonly pos: number; readonly gtid: string; readonly savedAt: string | null };
  /** where capture started instead: the end of this server's binlog when the restore was found */
  readonly to: { readonly file: string; readonly pos: number };
  /** the clock of the backup: every change set of this node stamped up to it is in the restored journal */
  readonly hlc: string;
  /** change sets of this node stamped after `hlc` and up to this, not in the journal, were lost with the disk: peers may send them back */
  readonly until: string;
  /** the highest journal seq the backup held */
  readonly journalTop: string;
  /** incarnations before and after */
  readonly incarnation: { readonly before: string | null; readonly after: string };
}

/** The last restore of this node, if any. */
export async function readRestore(db: Queryable, stateSchema: string): Promise<RestoreRecord | null> {
  const v = await getMeta(db, stateSchema, RESTORE_KEY);
  if (!v) return null;
  try {
    return JSON.parse(v) as RestoreRecord;
  } catch {
    return null;
  }
}

/**
 * Records a restore inside the caller's transaction: capture starts at `to`
 * (the checkpoint moves there, the clock kept), and the node takes a new incarnation.
 */
export async function recordRestore(
  tx: Queryable, stateSchema: string,
  found: { reason: string; from: RestoreRecord['from']; hlc: string; to: BinlogPosition; toGtid: string; nowMs: number },
): Promise<RestoreRecord> {
  const [top] = await tx.query<{ m: string | number | null }>(`SELECT MAX(seq) AS m FROM ${stateTable(stateSchema, 'journal')}`);
  const before = await getMeta(tx, stateSchema, INCARNATION_KEY);
  const rec: RestoreRecord = {
    at: new Date(found.nowMs).toISOString(),
    reason: found.reason,
    from: found.from,
    to: { file: found.to.file, pos: found.to.pos },
    hlc: found.hlc,
    // a day ahead: the lost change sets may have been stamped by a clock ahead of this one
    until: packHlc(hlcMs(found.nowMs + DEFAULT_MAX_DRIFT_MS), 0xffff).toString(),
    journalTop: String(top?.m ?? 0),
    incarnation: { before, after: newIncarnation() },
  };
  await tx.exec(
    `UPDATE ${stateTable(stateSchema, 'checkpoint')} SET binlog_file = ?, binlog_pos = ?, gtid = ?, updated_at = UTC_TIMESTAMP(6) WHERE id = 1`,
    [found.to.file, found.to.pos, found.toGtid],
  );
  await setMeta(tx, stateSchema, INCARNATION_KEY, rec.incarnation.after);
  await setMeta(tx, stateSchema, RESTORE_KEY, JSON.stringify(rec));
  return rec;
}

/** Whether `hlc` is a stamp this node may have lost in its last restore (an own change set a peer may send back). */
export function lostInRestore(rec: RestoreRecord | null, hlc: string): boolean {
  return rec !== null && BigInt(hlc) > BigInt(rec.hlc) && BigInt(hlc) <= BigInt(rec.until);
}
