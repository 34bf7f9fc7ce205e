// Inserts. Consecutive inserts into one table that do not reference each other
// form a run: one SELECT finds which identities exist already, one multi-row
// INSERT writes the new rows (auto-increment keys left to the server, shared
// keys taken from the referenced row). An identity that exists already is an
// insert conflict, merged per column.
import type { TableInfo } from '../core/catalog.js';
import { isRef, type InsertOp, type ChangeSet } from '../core/model.js';
import { columnOutcome, versionJson, winner, type Side } from './conflict-rules.js';
import {
  localValue, lockRow, logConflict, requiredValue, settledVersion, versionOf, type OpContext, type Raw,
} from './context.js';
import { localSide } from './ops.js';
import { ApplyProblem, isDuplicateKey } from './problems.js';
import { Missing } from './target-resolver.js';
import { insertSql, rowWhere, selectInSql, updateSql, type Sql } from './sql.js';
import { rowKey, targetDependencies } from './target.js';
import type { PlannedOp } from './validate.js';
import { bindValue, jsonRow, sameValue, type LocalValue } from './value-compare.js';
import { newer, TOMBSTONE, type Version } from './versions.js';

/** Rows and bytes per INSERT statement. */
const MAX_ROWS = 500;
const MAX_BYTES = 4 * 1024 * 1024;

/** Splits ops into runs: consecutive inserts into one table, none needing a row written earlier in its run. */
export function splitRuns(ops: readonly PlannedOp[]): PlannedOp[][] {
  const runs: PlannedOp[][] = [];
  let run: PlannedOp[] = [];
  let written = new Set<string>();
  for (const p of ops) {
    const key = rowKey(p.target.table.name, p.target.id);
    const needs = targetDependencies(p.target);
    for (const r of p.refs.values()) {
      needs.add(rowKey(r.table.name, r.id));
      targetDependencies(r, needs);
    }
    const joins = p.op.kind === 'insert' && run.length > 0 && run[0]!.op.kind === 'insert'
      && run[0]!.target.table === p.target.table && !written.has(key) && ![...needs].some((n) => written.has(n));
    if (!joins && run.length > 0) {
      runs.push(run);
      run = [];
      written = new Set();
    }
    run.push(p);
    written.add(key);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

export async function applyInsertRun(ctx: OpContext, cs: ChangeSet, run: readonly PlannedOp[]): Promise<void> {
  const t = run[0]!.target.table;
  const remote = versionOf(cs);
  // Usual case: none of the rows is here and the identity is a unique key, so one
  // INSERT does it; if a row is here after all, the server refuses the whole
  // statement (duplicate key) and the careful path below looks row by row.
  if (identityIsUnique(t) && !run.some((p) => ctx.versions.get(t.name, p.target.id, TOMBSTONE))) {
    const statements = await insertStatements(ctx, t, run);
    if (statements.length === 1) {
      try {
        await ctx.tx.exec(statements[0]!.sql, statements[0]!.params);
        noteInserted(ctx, cs, run);
        return;
      } catch (e) {
        if (!isDuplicateKey(e)) throw e;
      }
    }
  }
  const existing = await findExisting(ctx, run);
  if (existing.size > 0) await ctx.versions.readExisting(t.name, [...existing.keys()]);
  const fresh: PlannedOp[] = [];
  for (const p of run) {
    const raw = existing.get(p.target.id);
    if (raw) {
      await mergeInsert(ctx, cs, p, raw);
      continue;
    }
    const tomb = ctx.versions.get(t.name, p.target.id, TOMBSTONE);
    if (tomb && !newer(remote, tomb)) {
      await logConflict(ctx, {
        cs, table: t.name, id: p.target.id, kind: 'insert',
        local: { deleted: versionJson(tomb) },
        remote: { row: jsonRow((p.op as InsertOp).row), version: remote },
        outcome: 'deleted here by a newer change: delete wins',
      });
      continue;
    }
    fresh.push(p);
  }
  for (const s of await insertStatements(ctx, t, fresh)) await ctx.tx.exec(s.sql, s.params);
  noteInserted(ctx, cs, fresh);
}

function noteInserted(ctx: OpContext, cs: ChangeSet, ops: readonly PlannedOp[]): void {
  for (const p of ops) ctx.versions.noteInserted(p.target.table.name, p.target.id, versionOf(cs));
}

/** Whether the identity columns are the primary key or a unique key (the server refuses a second row). */
function identityIsUnique(t: TableInfo): boolean {
  const rule = t.identity;
  if (!rule) return false;
  const cols = rule.kind === 'natural' ? rule.columns : [rule.column];
  const same = (k: readonly string[]): boolean => k.length === cols.length && k.every((c) => cols.includes(c));
  return same(t.primaryKey) || t.uniqueKeys.some(same);
}

/** Multi-row INSERTs of the ops' rows: references resolved, shared keys from the referenced row, bounded in rows and bytes. */
async function insertStatements(ctx: OpContext, t: TableInfo, ops: readonly PlannedOp[]): Promise<Sql[]> {
  const out: Sql[] = [];
  let batch: { cols: string[]; sig: string; rows: LocalValue[][]; bytes: number } | undefined;
  const flush = (): void => {
    if (batch && batch.rows.length > 0) out.push(insertSql(ctx.schema, t, batch.cols, batch.rows));
    batch = undefined;
  };
  for (const p of ops) {
    const op = p.op as InsertOp;
    // Sorted, so rows of one table whose decoded column order differs (their NULL
    // columns travel apart) still share one multi-row statement.
    const cols = Object.keys(op.row).sort();
    const values: LocalValue[] = [];
    for (const c of cols) {
      const v = op.row[c]!;
      // references need a lookup; plain values do not (no await: this loop runs for every value)
      values.push(v !== null && isRef(v) ? await requiredValue(ctx, v, p.refs, t, c) : v === null ? null : bindValue(v, t.column.get(c)));
    }
    if (p.target.kind === 'shared') {
      const parent = await ctx.resolver.value(p.target.parent, p.target.refColumn);
      if (parent instanceof Missing) throw new ApplyProblem(`the ${parent.table} row that ${t.name} shares its key with is not here yet`, parent.key);
      cols.push(p.target.column);
      values.push(parent);
    }
    const sig = cols.join('\u0000');
    const size = values.reduce<number>((n, v) => n + (v === null ? 4 : Buffer.isBuffer(v) ? v.length : String(v).length), 0);
    if (batch && (batch.sig !== sig || batch.rows.length >= MAX_ROWS || batch.bytes + size > MAX_BYTES)) flush();
    batch ??= { cols, sig, rows: [], bytes: 0 };
    batch.rows.push(values);
    batch.bytes += size;
  }
  flush();
  return out;
}

/** The stored rows of the run's identities that exist already, locked, by identity. */
async function findExisting(ctx: OpContext, run: readonly PlannedOp[]): Promise<Map<string, Raw>> {
  const out = new Map<string, Raw>();
  const first = run[0]!.target;
  if (first.kind === 'uuid' && run.length > 1) {
    const ids = run.map((p) => p.target.id);
    const s = selectInSql(ctx.schema, first.table, first.table.columns.map((c) => c.name), first.column, ids, true);
    for (const raw of await ctx.tx.query<Raw>(s.sql, s.params)) {
      const id = String(raw[first.column]);
      if (out.has(id)) throw new ApplyProblem(`an identity of table ${first.table.name} names several rows here`, `${first.table.name}/${id}`);
      out.set(id, raw);
    }
    return out;
  }
  for (const p of run) {
    const { raw } = await lockRow(ctx, p.target);
    if (raw) out.set(p.target.id, raw);
  }
  return out;
}

/** An insert of a row that exists: same values merge silently, different ones are resolved per column. */
async function mergeInsert(ctx: OpContext, cs: ChangeSet, p: PlannedOp, raw: Raw): Promise<void> {
  const op = p.op as InsertOp;
  const t = p.target.table;
  const id = p.target.id;
  const remote = versionOf(cs);
  const waited = { done: false };
  const kept = new Map<string, Side>();
  const before = new Map<string, Version | undefined>();
  const set: [string, LocalValue][] = [];
  for (const c of Object.keys(op.row)) {
    const col = t.column.get(c);
    const incoming = await localValue(ctx, op.row[c]!, p.refs, t, c);
    if (!(incoming instanceof Missing) && sameValue(raw[c], incoming, col)) {
      if (newer(remote, await settledVersion(ctx, t, id, c, remote, waited))) {
        ctx.versions.noteUnchanged(t.name, id, c, remote);
        ctx.carried.column(t.name, id, c, op.row[c]!);
      }
      continue;
    }
    const local = await settledVersion(ctx, t, id, c, remote, waited);
    const side = winner(remote, local);
    kept.set(c, side);
    before.set(c, local);
    if (side === 'local') continue;
    if (incoming instanceof Missing) throw new ApplyProblem(`${t.name}.${c} references a ${incoming.table} row that is not here yet`, incoming.key);
    set.push([c, incoming]);
    ctx.versions.note(t.name, id, c, remote);
  }
  if (set.length > 0) {
    const where = await ctx.resolver.where(p.target);
    if (where instanceof Missing) throw new ApplyProblem(`the ${where.table} row of ${t.name} vanished`, where.key);
    const s = updateSql(ctx.schema, t, set, rowWhere(t, raw, where));
    await ctx.tx.exec(s.sql, s.params);
  }
  if (kept.size > 0) {
    await logConflict(ctx, {
      cs, table: t.name, id, kind: 'insert',
      local: await localSide(ctx, t, raw, before),
      remote: { row: jsonRow(op.row), version: remote },
      outcome: columnOutcome(kept),
    });
  }
}
