// Reviewing and resolving recorded conflicts (`spokesync conflicts review|resolve`).
//
// A record holds two sides: `local`, the row here before the change, and
// `remote`, what the change carried. Resolving takes one side and writes its
// values again through ordinary SQL on the application schema, so capture
// journals it as a new change of this node with a fresh version that wins
// everywhere, and the record is marked resolved in the same transaction.
// What a side means depends on the record:
// - columns (update or insert of a row here): the values of the conflicting columns;
// - a row (a delete that met a row here, or an insert that met a delete): the whole row;
// - absent (a delete): the row deleted;
// - partial (an update of a row deleted here): the update's columns only, which
//   cannot re-create the row, so that side cannot be taken.
// Before writing, the row must still be as the conflict left it; if it changed
// since, the resolve is refused (with what changed) unless forced.
import type { Catalog, TableInfo } from '../core/catalog.js';
import type { Db, Queryable } from '../core/db.js';
import { SpokesyncError } from '../core/errors.js';
import { hlcTime } from '../core/hlc.js';
import type { Ref, Value } from '../core/model.js';
import { stateTable } from '../core/state-schema.js';
import { getConflict, winner, type ConflictRow, type Side } from './conflict-rules.js';
import { Layers } from './layers.js';
import { RowMapper } from './rowmap.js';
import { deleteSql, insertSql, rowWhere, selectSql, updateSql, type Where } from './sql.js';
import { Missing, Resolver } from './target-resolver.js';
import { parseTarget, type Target } from './target.js';
import { bindValue, jsonRow, sqlTime, type LocalValue } from './value-compare.js';
import { storedVersionsQuery, type Version } from './versions.js';

type Json = Record<string, unknown>;

/** What one side of a record stands for. */
export type SideState =
  | { readonly kind: 'columns'; readonly values: Json }
  | { readonly kind: 'row'; readonly values: Json }
  | { readonly kind: 'absent' }
  | { readonly kind: 'partial'; readonly values: Json };

export interface SideView {
  readonly name: Side;
  /** the nodes that wrote what this side holds */
  readonly writers: readonly string[];
  readonly state: SideState;
}

/** The row as the conflict left it here: absent, or these columns with these values. */
type Expected = { readonly exists: false } | { readonly exists: true; readonly values: Json };

export interface Sides {
  readonly local: SideView;
  readonly remote: SideView;
  readonly after: Expected;
}

/** A column whose value here is not what the conflict left. */
export interface Drift {
  readonly column: string | null;
  /** what the conflict left (wire JSON), or 'absent' / 'present' for the row */
  readonly then: unknown;
  readonly now: unknown;
  /** the version that wrote the value here now, when known */
  readonly writtenBy: Version | null;
}

export interface ResolveResult {
  readonly conflict: ConflictRow;
  readonly taken: SideView;
  /** what was written: an update of these columns, an insert, a delete, or nothing (the row holds that side already) */
  readonly wrote: { readonly kind: 'update'; readonly columns: readonly string[] } | { readonly kind: 'insert' | 'delete' | 'nothing' };
  /** what had changed since the conflict (written over because of --force) */
  readonly drift: readonly Drift[];
  readonly resolution: string;
}

function bad(message: string, fix?: string): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_USAGE', message, fix === undefined ? undefined : { fix });
}

function obj(v: unknown): Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
}

function versionIn(v: unknown): Version | undefined {
  const o = obj(v);
  return typeof o.hlc === 'string' && typeof o.node === 'string' ? { hlc: o.hlc, node: o.node } : undefined;
}

function nodesOf(vs: ReadonlyArray<Version | undefined>): string[] {
  return [...new Set(vs.filter((v): v is Version => v !== undefined).map((v) => v.node))].sort();
}

/** The outcome text's sides per column ('remote wins: a, b; local wins: c'), as recorded when it happened. */
function outcomeSides(outcome: string): Map<string, Side> {
  const out = new Map<string, Side>();
  for (const part of outcome.split('; ')) {
    const m = /^(remote|local) wins: (.*)$/.exec(part);
    if (m) for (const c of m[2]!.split(', ')) out.set(c, m[1] as Side);
  }
  return out;
}

/** Both sides of a record and the row as the conflict left it. */
export function sidesOf(r: ConflictRow): Sides {
  const local = obj(r.local);
  const remote = obj(r.remote);
  const remoteVersion = versionIn(remote.version);
  if (!remoteVersion) throw bad(`conflict #${r.id} has no readable incoming version; it cannot be resolved by spokesync`);
  const remoteWriters = [remoteVersion.node];
  if ('deleted' in local) {
    const state: SideState = r.kind === 'insert' ? { kind: 'row', values: obj(remote.row) }
      : r.kind === 'update' ? { kind: 'partial', values: obj(remote.set) } : { kind: 'absent' };
    return {
      local: { name: 'local', writers: nodesOf([versionIn(local.deleted)]), state: { kind: 'absent' } },
      remote: { name: 'remote', writers: remoteWriters, state },
      after: { exists: false },
    };
  }
  const values = obj(local.values);
  const versions = obj(local.versions);
  const localWriters = nodesOf([...Object.values(versions).map(versionIn), versionIn(local.inserted)]);
  if (r.kind === 'delete') {
    return {
      local: { name: 'local', writers: localWriters, state: { kind: 'row', values } },
      remote: { name: 'remote', writers: remoteWriters, state: { kind: 'absent' } },
      after: 'inserted' in local ? { exists: true, values } : { exists: false },
    };
  }
  const carried = obj(remote.set ?? remote.row);
  const recorded = outcomeSides(r.outcome);
  const theirs: Json = {};
  const after: Json = {};
  for (const c of Object.keys(values)) {
    theirs[c] = carried[c] ?? null;
    const side = recorded.get(c) ?? winner(remoteVersion, versionIn(versions[c]));
    after[c] = side === 'remote' ? theirs[c] : values[c];
  }
  return {
    local: { name: 'local', writers: localWriters, state: { kind: 'columns', values } },
    remote: { name: 'remote', writers: remoteWriters, state: { kind: 'columns', values: theirs } },
    after: { exists: true, values: after },
  };
}

/** The side `take` names: `local`, `remote`, or the id of the node that wrote exactly one of them. */
export function chooseSide(r: ConflictRow, sides: Sides, take: string): SideView {
  if (take === 'local') return sides.local;
  if (take === 'remote') return sides.remote;
  const named = [sides.local, sides.remote].filter((s) => s.writers.includes(take));
  const choices = `local (written by ${sides.local.writers.join(', ') || 'an unknown node'}) or remote (written by ${sides.remote.writers.join(', ')})`;
  if (named.length === 1) return named[0]!;
  if (named.length === 2) throw bad(`--take ${take}: node ${take} wrote both sides of conflict #${r.id}; say local or remote`);
  throw bad(`--take ${JSON.stringify(take)} names no side of conflict #${r.id}: take ${choices}`);
}

/** Marks a conflict reviewed (kept as first reviewed: who and when); false when it was already. */
export async function markReviewed(db: Queryable, stateSchema: string, id: string, by: string, nowMs: number): Promise<boolean> {
  const r = await db.exec(
    `UPDATE ${stateTable(stateSchema, 'conflicts')} SET reviewed_at = ?, reviewed_by = ? WHERE id = ? AND reviewed_at IS NULL`,
    [sqlTime(nowMs), by.slice(0, 255), id]);
  return r.affectedRows > 0;
}

export interface ResolveOptions {
  readonly db: Db;
  readonly catalog: Catalog;
  readonly stateSchema: string;
  readonly id: string;
  readonly take: string;
  readonly force: boolean;
  readonly by: string;
  readonly nowMs: number;
}

/**
 * Writes the side taken as a new change of this node and marks the conflict
 * resolved, in one transaction. Throws SPOKESYNC_E_USAGE for a side that cannot
 * be taken and SPOKESYNC_E_ROW_CHANGED (with `drift`) when the row changed since
 * the conflict and `force` is not set.
 */
export async function resolveConflict(o: ResolveOptions): Promise<ResolveResult> {
  return o.db.transaction(async (tx) => {
    const r = await getConflict(tx, o.stateSchema, o.id, { forUpdate: true });
    if (!r) throw unknownConflict(o.id);
    if (r.resolvedAt !== null && !o.force) {
      throw bad(`conflict #${r.id} was resolved already, by ${r.resolvedBy ?? '?'} at ${r.resolvedAt} (${r.resolution ?? ''})`,
        'Pass --force to resolve it again (the row has usually changed since: that is shown and written over).');
    }
    const sides = sidesOf(r);
    const taken = chooseSide(r, sides, o.take);
    if (taken.state.kind === 'partial') {
      throw bad(`conflict #${r.id}: the remote side is an update of ${Object.keys(taken.state.values).join(', ')} of a row deleted here; ` +
        'it is not a whole row, so spokesync cannot bring the row back from it',
        'Take local (the delete), or insert the row again by hand with the values shown by `spokesync conflicts`: the insert travels like any other change.');
    }
    const t = o.catalog.table(r.table);
    const target = parseTarget(o.catalog, r.table, r.identity);
    const resolver = new Resolver(o.catalog.schema, new Layers<LocalValue>());
    resolver.attach(tx);
    const where = await resolver.where(target);
    const raw = where instanceof Missing ? null : await lockedRow(tx, o.catalog, t, where);
    const now = raw ? jsonRow(await new RowMapper(o.catalog, o.stateSchema).toWire(tx, t, raw)) : null;
    const drift = await driftSince(tx, o.stateSchema, o.catalog, r, sides.after, now);
    if (drift.length > 0 && !o.force) throw new RowChanged(r, drift);
    const wrote = await write(tx, o.catalog, t, target, resolver, taken.state, raw, now, where instanceof Missing ? null : where);
    const resolution = describe(taken, wrote, drift.length > 0);
    await tx.exec(
      `UPDATE ${stateTable(o.stateSchema, 'conflicts')}
          SET resolved_at = ?, resolved_by = ?, resolution = ?, reviewed_at = COALESCE(reviewed_at, ?), reviewed_by = COALESCE(reviewed_by, ?)
        WHERE id = ?`,
      [sqlTime(o.nowMs), o.by.slice(0, 255), resolution.slice(0, 1000), sqlTime(o.nowMs), o.by.slice(0, 255), r.id]);
    return { conflict: r, taken, wrote, drift, resolution };
  });
}

export function unknownConflict(id: string): SpokesyncError {
  return bad(`no conflict #${id} is recorded here`, 'List the conflicts with `spokesync conflicts --config F` and use the number after #.');
}

/** The row changed here since the conflict: resolving would write over that change. */
export class RowChanged extends SpokesyncError {
  constructor(readonly conflict: ConflictRow, readonly drift: readonly Drift[]) {
    super('SPOKESYNC_E_ROW_CHANGED', `the ${conflict.table} row of conflict #${conflict.id} changed here since the conflict: ` +
      drift.map((d) => d.column === null ? `the row is ${String(d.now)}` : `${d.column}${d.writtenBy ? ` (written by ${d.writtenBy.node} at ${hlcTime(BigInt(d.writtenBy.hlc))})` : ''}`).join(', '));
  }
}

/** The row an identity names, locked; null when absent. */
async function lockedRow(tx: Queryable, catalog: Catalog, t: TableInfo, where: Where): Promise<Json | null> {
  const s = selectSql(catalog.schema, t, '*', where, { forUpdate: true, limit: 2 });
  const rows = await tx.query<Json>(s.sql, s.params);
  if (rows.length > 1) throw new SpokesyncError('SPOKESYNC_E_APPLY', `an identity of table ${t.name} names several rows here`);
  return rows[0] ?? null;
}

/** What differs between the row here now and the row as the conflict left it. */
async function driftSince(tx: Queryable, stateSchema: string, catalog: Catalog, r: ConflictRow, after: Expected, now: Json | null): Promise<Drift[]> {
  if (!after.exists) return now === null ? [] : [{ column: null, then: 'absent', now: 'present', writtenBy: null }];
  if (now === null) return [{ column: null, then: 'present', now: 'absent', writtenBy: null }];
  const changed = Object.keys(after.values).filter((c) => JSON.stringify(now[c] ?? null) !== JSON.stringify(after.values[c] ?? null));
  if (changed.length === 0) return [];
  const q = storedVersionsQuery(stateSchema, catalog.tables.get(r.table), catalog.schema, 'v', r.table, [r.identity]);
  const stored = await tx.query<{ b: string; c: string; d: string }>(q.sql, q.params);
  const versionOf = (c: string): Version | null => {
    const v = stored.filter((s) => s.b === c || s.b === '+').map((s) => ({ hlc: String(s.c), node: s.d }))
      .sort((a, b) => (BigInt(a.hlc) === BigInt(b.hlc) ? a.node.localeCompare(b.node) : BigInt(a.hlc) < BigInt(b.hlc) ? -1 : 1));
    return v[v.length - 1] ?? null;
  };
  return changed.map((c) => ({ column: c, then: after.values[c] ?? null, now: now[c] ?? null, writtenBy: versionOf(c) }));
}

/** A wire value kept as JSON in a record, back to the wire value. */
function wireValue(v: unknown, table: string, column: string): Value {
  if (v === null || v === undefined || typeof v === 'string') return v ?? null;
  const o = obj(v);
  if (typeof o.base64 === 'string') return Buffer.from(o.base64, 'base64');
  if (typeof o.ref === 'string' && typeof o.id === 'string') return { ref: o.ref, id: o.id } satisfies Ref;
  throw bad(`conflict value of ${table}.${column} cannot be read back`);
}

/** The local value for a column of the side taken: a reference resolved to the referenced row here. */
async function localOf(catalog: Catalog, t: TableInfo, resolver: Resolver, column: string, json: unknown): Promise<LocalValue> {
  const v = wireValue(json, t.name, column);
  if (v === null) return null;
  if (typeof v === 'object' && !Buffer.isBuffer(v)) {
    const fk = t.refs.get(column);
    if (!fk) throw bad(`${t.name}.${column} is no longer a foreign key here; the conflict's reference cannot be written`);
    const local = await resolver.value(parseTarget(catalog, fk.table, v.id), fk.column);
    if (local instanceof Missing) {
      throw new SpokesyncError('SPOKESYNC_E_ROW_CHANGED', `${t.name}.${column} of the side taken references a ${fk.table} row that is not here (${local.key})`,
        { fix: 'The referenced row was deleted since the conflict: take the other side, or bring that row back first.' });
    }
    return local;
  }
  return bindValue(v, t.column.get(column));
}

async function write(
  tx: Queryable, catalog: Catalog, t: TableInfo, target: Target, resolver: Resolver, state: SideState,
  raw: Json | null, now: Json | null, where: Where | null,
): Promise<ResolveResult['wrote']> {
  const schema = catalog.schema;
  if (state.kind === 'absent') {
    if (!raw || !where) return { kind: 'nothing' };
    const s = deleteSql(schema, t, rowWhere(t, raw, where));
    await tx.exec(s.sql, s.params);
    return { kind: 'delete' };
  }
  if (state.kind === 'partial') throw new Error('a partial side is refused before writing');
  if (raw && where) {
    const set: [string, LocalValue][] = [];
    for (const [c, v] of Object.entries(state.values)) {
      if (JSON.stringify(now?.[c] ?? null) === JSON.stringify(v ?? null)) continue;
      set.push([c, await localOf(catalog, t, resolver, c, v)]);
    }
    if (set.length === 0) return { kind: 'nothing' };
    const s = updateSql(schema, t, set, rowWhere(t, raw, where));
    await tx.exec(s.sql, s.params);
    return { kind: 'update', columns: set.map(([c]) => c) };
  }
  if (state.kind === 'columns') {
    throw new SpokesyncError('SPOKESYNC_E_ROW_CHANGED', `the ${t.name} row is not here any more, and the side taken holds only some of its columns`,
      { fix: 'The row was deleted since the conflict: insert it again by hand, or leave the delete.' });
  }
  const cols: string[] = [];
  const values: LocalValue[] = [];
  for (const [c, v] of Object.entries(state.values)) {
    cols.push(c);
    values.push(await localOf(catalog, t, resolver, c, v));
  }
  if (target.kind === 'shared') {
    const parent = await resolver.value(target.parent, target.refColumn);
    if (parent instanceof Missing) {
      throw new SpokesyncError('SPOKESYNC_E_ROW_CHANGED', `the ${parent.table} row that ${t.name} shares its key with is not here (${parent.key})`,
        { fix: 'Bring that row back first, or take the other side.' });
    }
    cols.push(target.column);
    values.push(parent);
  }
  const s = insertSql(schema, t, cols, [values]);
  await tx.exec(s.sql, s.params);
  return { kind: 'insert' };
}

function describe(taken: SideView, wrote: ResolveResult['wrote'], forced: boolean): string {
  const who = taken.writers.length > 0 ? ` (written by ${taken.writers.join(', ')})` : '';
  const what = wrote.kind === 'update' ? `wrote ${wrote.columns.join(', ')}`
    : wrote.kind === 'insert' ? 'inserted the row again' : wrote.kind === 'delete' ? 'deleted the row' : 'nothing to write: the row holds it already';
  return `took ${taken.name}${who}; ${what}${forced ? '; forced over changes made since' : ''}`;
}
