// What the op appliers share while one group of change sets is applied.
import type { Queryable } from '../core/db.js';
import type { Logger } from '../core/log.js';
import type { TableInfo } from '../core/catalog.js';
import type { Carried } from './carry.js';
import type { ChangeSet, Value } from '../core/model.js';
import { isRef } from '../core/model.js';
import { recordConflict, type ConflictEntry } from './conflict-rules.js';
import { ApplyProblem } from './problems.js';
import { Missing, type Resolver } from './target-resolver.js';
import type { RowMapper } from './rowmap.js';
import { selectSql, type Where } from './sql.js';
import type { Target } from './target.js';
import { bindValue, type LocalValue } from './value-compare.js';
import type { Version, Versions } from './versions.js';

export interface OpContext {
  readonly tx: Queryable;
  readonly schema: string;
  readonly stateSchema: string;
  readonly resolver: Resolver;
  readonly versions: Versions;
  readonly rowmap: RowMapper;
  readonly log: Logger;
  readonly now: () => number;
  readonly waitForCapture: (() => Promise<void>) | undefined;
  /** conflicts logged in the current change set */
  conflicts: number;
  /** what won here without changing a byte, for capture to forward (carry.ts) */
  readonly carried: Carried;
}

export type Raw = Record<string, unknown>;

export function versionOf(cs: ChangeSet): Version {
  return { hlc: cs.hlc, node: cs.origin };
}

/** The local value a wire value stands for; Missing when it references a row that is not here. */
export async function localValue(ctx: OpContext, v: Value, refs: ReadonlyMap<object, Target>, t: TableInfo, column: string): Promise<LocalValue | Missing> {
  if (v === null) return null;
  if (isRef(v)) {
    const target = refs.get(v);
    const fk = t.refs.get(column);
    if (!target || !fk) throw new ApplyProblem(`${t.name}.${column} has a reference that was not checked`);
    return ctx.resolver.value(target, fk.column);
  }
  return bindValue(v, t.column.get(column));
}

/** Like localValue, but a missing referenced row makes the change set wait for it. */
export async function requiredValue(ctx: OpContext, v: Value, refs: ReadonlyMap<object, Target>, t: TableInfo, column: string): Promise<LocalValue> {
  const r = await localValue(ctx, v, refs, t, column);
  if (r instanceof Missing) throw new ApplyProblem(`${t.name}.${column} references a ${r.table} row that is not here yet`, r.key);
  return r;
}

/** The stored row a target names, locked for the rest of the transaction; null when absent. */
export async function lockRow(ctx: OpContext, target: Target): Promise<{ raw: Raw | null; where: Where | null }> {
  const where = await ctx.resolver.where(target);
  if (where instanceof Missing) return { raw: null, where: null };
  const s = selectSql(ctx.schema, target.table, '*', where, { forUpdate: true, limit: 2 });
  const rows = await ctx.tx.query<Raw>(s.sql, s.params);
  if (rows.length > 1) throw new ApplyProblem(`an identity of table ${target.table.name} names several rows here`, `${target.table.name}/${target.id}`);
  return { raw: rows[0] ?? null, where };
}

/**
 * The local version of a column, waiting once for capture when it may be stale:
 * when it is unknown or older than the incoming change (a local write capture
 * has not recorded yet would make it newer).
 */
export async function settledVersion(ctx: OpContext, t: TableInfo, id: string, col: string, remote: Version, waited: { done: boolean }): Promise<Version | undefined> {
  let v = ctx.versions.get(t.name, id, col);
  const older = v === undefined || BigInt(v.hlc) < BigInt(remote.hlc) || (v.hlc === remote.hlc && v.node < remote.node);
  if (older && ctx.waitForCapture && !waited.done) {
    waited.done = true;
    await ctx.waitForCapture();
    await ctx.versions.refresh(t.name, id);
    v = ctx.versions.get(t.name, id, col);
  }
  return v;
}

export async function logConflict(ctx: OpContext, c: ConflictEntry): Promise<void> {
  await recordConflict(ctx.tx, ctx.stateSchema, ctx.now(), c);
  ctx.conflicts++;
  ctx.log.debug('conflict', { change: c.cs.id, table: c.table, kind: c.kind, outcome: c.outcome });
}
