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
import { compareVersions } from '../core/hlc.js';
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
  /**
   * 'repair': a row `spokesync repair` overwrote or deleted, kept with the version that replaced it;
   * 'join': a row `spokesync join` found at both nodes with other content, whose version here goes up
   */
  readonly kind: 'insert' | 'update' | 'delete' | 'repair' | 'join';
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
  /** `spokesync conflicts review` (or resolve): when and by whom; null while unreviewed */
  readonly reviewedAt: string | null;
  readonly reviewedBy: string | null;
  /** `spokesync conflicts resolve`: when, by whom, and what was written; null while unresolved */
  readonly resolvedAt: string | null;
  readonly resolvedBy: string | null;
  readonly resolution: string | null;
}

interface StoredConflict {
  id: string; detected_at: string; change_id: string; origin: string; tbl: string; identity: string;
  kind: string; local_version: string; remote_version: string; outcome: string;
  reviewed_at: string | null; reviewed_by: string | null; resolved_at: string | null; resolved_by: string | null; resolution: string | null;
}

const COLUMNS = 'id, detected_at, change_id, origin, tbl, identity, kind, local_version, remote_version, outcome, ' +
  'reviewed_at, reviewed_by, resolved_at, resolved_by, resolution';

/** The most recent conflicts, newest first; only those nobody has reviewed yet with `unreviewed`. */
export async function listConflicts(db: Queryable, stateSchema: string, limit: number, opts: { unreviewed?: boolean } = {}): Promise<ConflictRow[]> {
  const rows = await db.query<StoredConflict>(
    `SELECT ${COLUMNS} FROM ${stateTable(stateSchema, 'conflicts')}
      ${opts.unreviewed ? 'WHERE reviewed_at IS NULL' : ''} ORDER BY id DESC LIMIT ?`,
    [Math.max(0, Math.floor(limit))],
  );
  return rows.map(conflictRow);
}

/** One conflict by its id, or null; locked for the transaction with `forUpdate`. */
export async function getConflict(db: Queryable, stateSchema: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<ConflictRow | null> {
  const rows = await db.query<StoredConflict>(
    `SELECT ${COLUMNS} FROM ${stateTable(stateSchema, 'conflicts')} WHERE id = ?${opts.forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ? conflictRow(rows[0]) : null;
}

/** How many conflicts are recorded here, and how many of them nobody has reviewed yet. */
export async function countConflicts(db: Queryable, stateSchema: string): Promise<{ total: number; unreviewed: number }> {
  const [r] = await db.query<{ total: number | string; unreviewed: number | string | null }>(
    `SELECT COUNT(*) AS total, SUM(reviewed_at IS NULL) AS unreviewed FROM ${stateTable(stateSchema, 'conflicts')}`);
  return { total: Number(r?.total ?? 0), unreviewed: Number(r?.unreviewed ?? 0) };
}

function conflictRow(r: StoredConflict): ConflictRow {
  return {
    id: String(r.id), detectedAt: r.detected_at, changeId: r.change_id, origin: r.origin, table: r.tbl,
    identity: r.identity, kind: r.kind, local: parseJson(r.local_version), remote: parseJson(r.remote_version), outcome: r.outcome,
    reviewedAt: r.reviewed_at, reviewedBy: r.reviewed_by, resolvedAt: r.resolved_at, resolvedBy: r.resolved_by, resolution: r.resolution,
  };
}

/**
 * The writes a record sets against each other: the versions it names on both
 * sides (columns here, a delete or insert here, the incoming change), oldest
 * first. Every node that meets the same two writes names the same ones, so
 * records of one conflict at several nodes share them (conflictKey).
 */
export function conflictWriters(r: Pick<ConflictRow, 'local' | 'remote'>): Version[] {
  const found: Version[] = [];
  const take = (v: unknown): void => {
    if (isVersion(v) && !found.some((f) => f.hlc === v.hlc && f.node === v.node)) found.push({ hlc: v.hlc, node: v.node });
  };
  const local = (r.local ?? {}) as Record<string, unknown>;
  for (const v of Object.values((local.versions ?? {}) as Record<string, unknown>)) take(v);
  take(local.deleted);
  take(local.inserted);
  take(((r.remote ?? {}) as Record<string, unknown>).version);
  return found.sort(compareVersions);
}

/** One conflict network-wide: the row and the writes it set against each other (records of it at any node share it). */
export function conflictKey(r: Pick<ConflictRow, 'table' | 'identity' | 'local' | 'remote'>): string {
  return [r.table, r.identity, ...conflictWriters(r).map((v) => `${v.hlc}@${v.node}`)].join('\u0000');
}

function isVersion(v: unknown): v is Version {
  return typeof v === 'object' && v !== null && typeof (v as Version).hlc === 'string' && typeof (v as Version).node === 'string';
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return s;
  }
}
