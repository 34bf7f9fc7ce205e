// Conflict resolution rules and the conflict log.
//
// Per column, last writer wins: the incoming change's (hlc, origin) against
// the column's local version (compareVersions; unknown = version 0). Columns
// not in conflict merge. Rows:
// - a delete always wins over updates, whatever their versions: an update
//   carries only changed columns and cannot bring a deleted row back, so
//   "delete wins" is the only rule that ends the same in every order;
// - a row's newest insert or delete decides whether it exists: an insert meeting
//   a tombstone wins only when it is newer than the delete, and a delete meeting
//   a row inserted (again) by a newer change loses to it (a natural key added
//   again after it was removed);
// - an update of a deleted row is dropped (delete wins), logged as a conflict.
// Every conflict is logged with both sides and the outcome.
import type { Queryable } from '../core/db.js';
import { stateTable } from '../core/state-schema.js';
import type { ChangeSet } from '../core/model.js';
import { sqlTime } from './value-compare.js';
import { newer, type Version } from './versions.js';

export type Side = 'remote' | 'local';

/** Which side a column keeps. */
export function winner(remote: Version, local: Version | undefined): Side {
  return newer(remote, local) ? 'remote' : 'local';
}

export interface ConflictEntry {
  readonly cs: ChangeSet;
  readonly table: string;
  readonly id: string;
  /** 'repair': a row `spokesync repair` overwrote or deleted, kept with the version that replaced it */
  readonly kind: 'insert' | 'update' | 'delete' | 'repair';
  /** the row here before the change (wire values, JSON-safe) and its versions */
  readonly local: unknown;
  /** what the change carried and its version */
  readonly remote: unknown;
  readonly outcome: string;
}

/** Outcome text: which columns each side kept. */
export function columnOutcome(kept: ReadonlyMap<string, Side>): string {
  const remote = [...kept].filter(([, s]) => s === 'remote').map(([c]) => c);
  const local = [...kept].filter(([, s]) => s === 'local').map(([c]) => c);
  const parts: string[] = [];
  if (remote.length > 0) parts.push(`remote wins: ${remote.join(', ')}`);
  if (local.length > 0) parts.push(`local wins: ${local.join(', ')}`);
  return parts.join('; ') || 'no column differs';
}

export function versionJson(v: Version | undefined): unknown {
  return v ? { hlc: v.hlc, node: v.node } : null;
}

export async function recordConflict(tx: Queryable, stateSchema: string, nowMs: number, c: ConflictEntry): Promise<void> {
  const outcome = c.outcome.length > 500 ? c.outcome.slice(0, 497) + '...' : c.outcome;
  await tx.exec(
    `INSERT INTO ${stateTable(stateSchema, 'conflicts')}
       (detected_at, change_id, origin, tbl, identity, kind, local_version, remote_version, outcome)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [sqlTime(nowMs), c.cs.id, c.cs.origin, c.table, c.id, c.kind, JSON.stringify(c.local), JSON.stringify(c.remote), outcome],
  );
}

export interface ConflictRow {
  readonly id: string;
  readonly detectedAt: string;
  readonly changeId: string;
  readonly origin: string;
  readonly table: string;
  readonly identity: string;
  readonly kind: string;
  readonly local: unknown;
  readonly remote: unknown;
  readonly outcome: string;
}

/** The most recent conflicts, newest first. */
export async function listConflicts(db: Queryable, stateSchema: string, limit: number): Promise<ConflictRow[]> {
  const rows = await db.query<{
    id: string; detected_at: string; change_id: string; origin: string; tbl: string; identity: string;
    kind: string; local_version: string; remote_version: string; outcome: string;
  }>(
    `SELECT id, detected_at, change_id, origin, tbl, identity, kind, local_version, remote_version, outcome
       FROM ${stateTable(stateSchema, 'conflicts')} ORDER BY id DESC LIMIT ?`,
    [Math.max(0, Math.floor(limit))],
  );
  return rows.map((r) => ({
    id: String(r.id), detectedAt: r.detected_at, changeId: r.change_id, origin: r.origin, table: r.tbl,
    identity: r.identity, kind: r.kind, local: parseJson(r.local_version), remote: parseJson(r.remote_version), outcome: r.outcome,
  }));
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return s;
  }
}
