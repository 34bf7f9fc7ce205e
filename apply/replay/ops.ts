// Updates and deletes, with conflict detection and per-column resolution
// (rules in conflicts.ts). Inserts are in inserts.ts.
import type { TableInfo } from '../core/catalog.js';
import { rowDigest } from '../codec/digest.js';
import type { ChangeSet, DeleteOp, UpdateOp } from '../core/model.js';
import { columnOutcome, versionJson, winner, type Side } from './conflict-rules.js';
import {
  localValue, lockRow, logConflict, settledVersion, versionOf, type OpContext, type Raw,
} from './context.js';
import { ApplyProblem } from './problems.js';
import { Missing } from './target-resolver.js';
import { deleteSql, rowWhere, updateSql } from './sql.js';
import type { Target } from './target.js';
import type { PlannedOp } from './validate.js';
import { jsonRow, sameValue, type LocalValue } from './value-compare.js';
import { newer, ROW_INSERT, TOMBSTONE, type Version } from './versions.js';

export async function applyUpdate(ctx: OpContext, cs: ChangeSet, p: PlannedOp): Promise<void> {
  const op = p.op as UpdateOp;
  const t = p.target.table;
  const id = p.target.id;
  const remote = versionOf(cs);
  const { raw, where } = await lockRow(ctx, p.target);
  if (!raw || !where) {
    await missingRow(ctx, cs, p.target, 'update', { set: jsonRow(op.set), old: jsonRow(op.old), version: remote });
    return;
  }
  const waited = { done: false };
  const kept = new Map<string, Side>();
  const before = new Map<string, Version | undefined>();
  const set: [string, LocalValue][] = [];
  for (const c of Object.keys(op.set)) {
    const col = t.column.get(c);
    const cur = raw[c];
    const oldLocal = await localValue(ctx, op.old[c] ?? null, p.refs, t, c);
    const next = await localValue(ctx, op.set[c] ?? null, p.refs, t, c);
    const conflict = oldLocal instanceof Missing || !sameValue(cur, oldLocal, col);
    const unchanged = !(next instanceof Missing) && sameValue(cur, next, col);
    // a version that decides a conflict, or that apply records itself, must be settled
    const local = conflict || unchanged ? await settledVersion(ctx, t, id, c, remote, waited) : ctx.versions.get(t.name, id, c);
    const side = winner(remote, local);
    if (conflict || side === 'local') {
      kept.set(c, side);
      before.set(c, local);
    }
    if (side === 'local') continue;
    if (next instanceof Missing) throw new ApplyProblem(`${t.name}.${c} references a ${next.table} row that is not here yet`, next.key);
    if (unchanged) {
      ctx.versions.noteUnchanged(t.name, id, c, remote);
      ctx.carried.column(t.name, id, c, op.set[c] ?? null);
    } else {
      set.push([c, next]);
      ctx.versions.note(t.name, id, c, remote);
    }
  }
  if (set.length > 0) {
    const s = updateSql(ctx.schema, t, set, rowWhere(t, raw, where));
    await ctx.tx.exec(s.sql, s.params);
    if (set.some(([c]) => identityColumn(t, c))) ctx.resolver.forget(t.name, id);
  }
  if (kept.size > 0) {
    await logConflict(ctx, {
      cs, table: t.name, id, kind: 'update',
      local: await localSide(ctx, t, raw, before),
      remote: { set: jsonRow(op.set), old: jsonRow(op.old), version: remote },
      outcome: columnOutcome(kept),
    });
  }
}

export async function applyDelete(ctx: OpContext, cs: ChangeSet, p: PlannedOp): Promise<void> {
  const op = p.op as DeleteOp;
  const t = p.target.table;
  const remote = versionOf(cs);
  const { raw, where } = await lockRow(ctx, p.target);
  if (!raw || !where) {
    await missingRow(ctx, cs, p.target, 'delete', { digest: op.digest, version: remote });
    return;
  }
  const wire = await ctx.rowmap.toWire(ctx.tx, t, raw);
  const changed = rowDigest(wire) !== op.digest;
  // (waiting for capture to record a local insert is worth it only when the row is not the one the origin deleted)
  const born = changed ? await settledVersion(ctx, t, p.target.id, ROW_INSERT, remote, { done: false }) : ctx.versions.get(t.name, p.target.id, ROW_INSERT);
  if (born && newer(born, remote)) {
    // the row here was inserted (again) by a newer change than this delete: the insert wins,
    // as it does when it arrives after the delete (inserts.ts); the older tombstone is kept
    const tomb = ctx.versions.get(t.name, p.target.id, TOMBSTONE);
    if (newer(remote, tomb)) ctx.versions.noteUnchanged(t.name, p.target.id, TOMBSTONE, remote);
    await logConflict(ctx, {
      cs, table: t.name, id: p.target.id, kind: 'delete',
      local: { ...(await localSide(ctx, t, raw, currentVersions(ctx, t, p.target.id, Object.keys(wire))) as object), inserted: versionJson(born) },
      remote: { digest: op.digest, version: remote },
      outcome: 'inserted again by a newer change: insert wins',
    });
    return;
  }
  if (changed) {
    // the row changed here since the origin saw it: the delete still wins (see conflicts.ts)
    await logConflict(ctx, {
      cs, table: t.name, id: p.target.id, kind: 'delete',
      local: await localSide(ctx, t, raw, currentVersions(ctx, t, p.target.id, Object.keys(wire))),
      remote: { digest: op.digest, version: remote },
      outcome: 'delete wins',
    });
  }
  const s = deleteSql(ctx.schema, t, rowWhere(t, raw, where));
  await ctx.tx.exec(s.sql, s.params);
  ctx.resolver.forget(t.name, p.target.id);
  ctx.versions.note(t.name, p.target.id, TOMBSTONE, remote);
}

/**
 * An update or delete of a row that is not here: deleted here (a tombstone in
 * versions: the delete wins, logged) or not arrived yet (the change set waits).
 */
async function missingRow(ctx: OpContext, cs: ChangeSet, target: Target, kind: 'update' | 'delete', remote: { readonly digest?: string; readonly [k: string]: unknown }): Promise<void> {
  const t = target.table;
  const tomb = await settledVersion(ctx, t, target.id, TOMBSTONE, versionOf(cs), { done: false });
  if (!tomb) throw new ApplyProblem(`the ${t.name} row to ${kind} is not here yet`, `${t.name}/${target.id}`);
  if (remote.digest !== undefined && newer(versionOf(cs), tomb)) {
    // deleted here already, by an older change: the newer tombstone is kept and travels on
    ctx.versions.noteUnchanged(t.name, target.id, TOMBSTONE, versionOf(cs));
    ctx.carried.deleted(t.name, target.id, remote.digest);
  }
  await logConflict(ctx, {
    cs, table: t.name, id: target.id, kind,
    local: { deleted: versionJson(tomb) },
    remote,
    outcome: kind === 'delete' ? 'already deleted here' : 'row deleted here: delete wins',
  });
}

/** The versions of the columns here now, before the change writes any (the local side of a conflict). */
function currentVersions(ctx: OpContext, t: TableInfo, id: string, cols: readonly string[]): Map<string, Version | undefined> {
  return new Map(cols.map((c) => [c, ctx.versions.get(t.name, id, c)]));
}

/**
 * The local side of a conflict: the stored values of the columns (wire form) and
 * the versions that wrote them, taken before the change was applied: once a
 * column is written its version is the incoming change's, and the record would
 * credit the value here to the node the change came from.
 */
export async function localSide(ctx: OpContext, t: TableInfo, raw: Raw, before: ReadonlyMap<string, Version | undefined>): Promise<unknown> {
  const wire = await ctx.rowmap.toWire(ctx.tx, t, raw);
  const values: Record<string, unknown> = {};
  const versions: Record<string, unknown> = {};
  const all = jsonRow(wire);
  for (const [c, v] of before) {
    values[c] = all[c] ?? null;
    versions[c] = versionJson(v);
  }
  return { values, versions };
}

function identityColumn(t: TableInfo, c: string): boolean {
  const rule = t.identity;
  return rule?.kind === 'uuid' ? rule.column === c : rule?.kind === 'natural' ? rule.columns.includes(c) : false;
}
