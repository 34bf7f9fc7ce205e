// Identity → local ids: finds the row a target names and the local values
// (auto-increment ids, shared keys) that a reference or a shared key needs.
// Lookups are cached in layers that follow the transaction (see layers.ts).
import type { Queryable } from '../core/db.js';
import type { Layers } from './layers.js';
import { ApplyProblem } from './problems.js';
import { selectSql, whereEq, type Where } from './sql.js';
import { rowKey, type Target } from './target.js';
import type { LocalValue } from './value-compare.js';

/** The row a target needs is not here (yet). */
export class Missing {
  constructor(readonly table: string, readonly id: string) {}
  get key(): string {
    return `${this.table}/${this.id}`;
  }
}

export class Resolver {
  /** columns ever cached per table, so a row can be forgotten without scanning the cache */
  private readonly columns = new Map<string, Set<string>>();

  private q: Queryable | undefined;

  constructor(
    private readonly schema: string,
    /** layers follow the transaction: begin/commit/rollback them with it */
    readonly cache: Layers<LocalValue>,
  ) {}

  /** Lookups run in this transaction from now on. */
  attach(q: Queryable): void {
    this.q = q;
  }

  /** The condition that finds the row named by target, or Missing when a row it is built on is absent. */
  async where(target: Target): Promise<Where | Missing> {
    const t = target.table;
    switch (target.kind) {
      case 'uuid':
        return whereEq(t, [[target.column, target.value]]);
      case 'shared': {
        const v = await this.value(target.parent, target.refColumn);
        return v instanceof Missing ? v : whereEq(t, [[target.column, v]]);
      }
      case 'natural': {
        const pairs: (readonly [string, unknown])[] = [];
        for (const p of target.parts) {
          if ('ref' in p) {
            const v = await this.value(p.ref, p.refColumn);
            if (v instanceof Missing) return v;
            pairs.push([p.column, v]);
          } else {
            pairs.push([p.column, p.value]);
          }
        }
        return whereEq(t, pairs);
      }
    }
  }

  /** The value of `column` in the row named by target (a reference's local value). */
  async value(target: Target, column: string): Promise<LocalValue | Missing> {
    const key = `${rowKey(target.table.name, target.id)}\u0000${column}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const where = await this.where(target);
    if (where instanceof Missing) return where;
    const s = selectSql(this.schema, target.table, [column], where, { limit: 2 });
    if (!this.q) throw new Error('Resolver used outside a transaction');
    const rows = await this.q.query<Record<string, LocalValue>>(s.sql, s.params);
    if (rows.length === 0) return new Missing(target.table.name, target.id);
    if (rows.length > 1) throw new ApplyProblem(`an identity of table ${target.table.name} names several rows here`, `${target.table.name}/${target.id}`);
    const v = rows[0]![column] ?? null;
    this.remember(target.table.name, target.id, column, v);
    return v;
  }

  /** Remembers a value learned otherwise (a row just written). */
  remember(table: string, id: string, column: string, v: LocalValue): void {
    let cols = this.columns.get(table);
    if (!cols) this.columns.set(table, (cols = new Set()));
    cols.add(column);
    this.cache.set(`${rowKey(table, id)}\u0000${column}`, v);
  }

  /** Forgets every cached value of a row (deleted, or its key changed). */
  forget(table: string, id: string): void {
    for (const c of this.columns.get(table) ?? []) this.cache.delete(`${rowKey(table, id)}\u0000${c}`);
  }
}
