// SQL that asks the parent's own server whether rows belong to a child with
// row filters (graph.ts gives the rule). Each level of a follower's path is an
// EXISTS on the table the edge reaches, aliased by its table's name, so the
// operator's expression finds its table by name at the innermost level. A
// question names rows by identity (verify/row-sql.ts computes it) and is
// asked once per table per batch. Pure: names come from the catalogue.
import type { Catalog, TableInfo } from '../../apply/core/catalog.js';
import mysql from 'mysql2';
import { qid } from '../../apply/core/db.js';
import { identitySql } from '../verify/row-sql.js';
import type { RowGraph } from './graph.js';

/**
 * What is asked of a row:
 * - 'match': it matches the filter itself (an owner row), or every owner it follows does;
 * - 'ref': a row that goes to the child names it (a user's person, a provider's);
 * - 'in': either.
 */
export type Ask = 'match' | 'ref' | 'in';

export interface Filters {
  readonly schema: string;
  readonly graph: RowGraph;
  /** owner table → expression */
  readonly exprs: Readonly<Record<string, string>>;
  /** the columns that name one row of a table (keyOf) */
  readonly key: (table: string) => readonly string[];
}

/** How many rows a chain of references may pass through (a provider's person, named by an encounter_provider). */
const REF_DEPTH = 2;

const ref = (table: string, column: string): string => `${qid(table)}.${qid(column)}`;

/** The condition on the row aliased as its table's name that it matches (FALSE for a shared table: never asked). */
export function matchSql(f: Filters, table: string): string {
  const role = f.graph.role(table);
  if (role === 'owner') return `(${f.exprs[table]!})`;
  if (role === 'shared') return 'FALSE';
  return f.graph.edges(table).map((e) => {
    const owner = `EXISTS (SELECT 1 FROM ${qid(f.schema)}.${qid(e.refTable)} AS ${qid(e.refTable)} WHERE ${ref(e.refTable, e.refColumn)} = ${ref(table, e.column)} AND ${matchSql(f, e.refTable)})`;
    // a NULL edge names no owner
    return e.nullable ? `(${ref(table, e.column)} IS NULL OR ${owner})` : owner;
  }).join(' AND ');
}

/**
 * The condition that a row going to the child refers to the row aliased
 * `outer` (FALSE when none can): a row of a shared table, a matching row of
 * another, or one such a row refers to in turn. A referring table keeps its
 * own name as alias (its filter names it so); the row it refers to is `outer`.
 */
export function refSql(f: Filters, table: string, outer = 't0', depth = 0): string {
  const parts: string[] = [];
  for (const e of f.graph.referencedBy(table)) {
    const named = `${ref(e.table, e.column)} = ${outer}.${qid(e.refColumn)}`;
    const from = `${qid(f.schema)}.${qid(e.table)} AS ${qid(e.table)}`;
    if (f.graph.role(e.table) === 'shared') {
      parts.push(`EXISTS (SELECT 1 FROM ${from} WHERE ${named})`);
      continue;
    }
    const why = [matchSql(f, e.table)];
    if (depth + 1 < REF_DEPTH && f.key(e.table).length > 0) {
      const inner = `r${depth + 1}`;
      const deeper = refSql(f, e.table, inner, depth + 1);
      if (deeper !== 'FALSE') {
        const same = f.key(e.table).map((c) => `${inner}.${qid(c)} = ${ref(e.table, c)}`).join(' AND ');
        why.push(`EXISTS (SELECT 1 FROM ${qid(f.schema)}.${qid(e.table)} AS ${inner} WHERE ${same} AND ${deeper})`);
      }
    }
    if (why.length > 0) parts.push(`EXISTS (SELECT 1 FROM ${from} WHERE ${named} AND ${why.length === 1 ? why[0]! : `(${why.join(' OR ')})`})`);
  }
  return parts.length === 0 ? 'FALSE' : parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`;
}

export function askSql(f: Filters, table: string, ask: Ask): string {
  if (ask === 'match') return matchSql(f, table);
  if (ask === 'ref') return refSql(f, table);
  return `(${matchSql(f, table)} OR ${refSql(f, table)})`;
}

/**
 * The filters with some owner rows counted as matching or not whatever their
 * expression says: `excluded` never match (owners whose rows a fill on its
 * way carries), `forced` always do (owners that left, to name what they took
 * with them). Identities are as they travel (SQL form of uuid and shared keys).
 */
export function adjusted(f: Filters, catalog: Catalog, excluded: ReadonlyMap<string, readonly string[]>, forced: ReadonlyMap<string, readonly string[]> = new Map()): Filters {
  const exprs: Record<string, string> = { ...f.exprs };
  const named = (table: string, ids: readonly string[]): string => {
    const rs = identitySql(catalog, table);
    const same = f.key(table).map((c) => `t0.${qid(c)} = ${ref(table, c)}`).join(' AND ');
    return `EXISTS (SELECT 1 FROM ${rs.from} WHERE ${same} AND ${rs.identity} IN (${ids.map((i) => mysql.escape(i)).join(', ')}))`;
  };
  for (const [table, ids] of excluded) if (ids.length > 0 && exprs[table] !== undefined) exprs[table] = `(${exprs[table]}) AND NOT ${named(table, ids)}`;
  for (const [table, ids] of forced) if (ids.length > 0 && exprs[table] !== undefined) exprs[table] = `(${exprs[table]}) OR ${named(table, ids)}`;
  return { ...f, exprs };
}

/** Columns that name one row of the table: its primary key, else a unique key, else its uuid; none for a table without any. */
export function keyOf(t: TableInfo): readonly string[] {
  return t.primaryKey.length > 0 ? t.primaryKey : t.uniqueKeys[0] ?? (t.identity?.kind === 'uuid' ? [t.identity.column] : []);
}

/**
 * Which rows of `table` go to the child (whole tables: snapshots): the alias
 * the row must have in FROM and the condition on it; null when every row goes.
 */
export function subsetSql(f: Filters, table: string): { alias: string; where: string } | null {
  if (f.graph.role(table) === 'shared') return null;
  const key = f.key(table);
  // a table without a key (it never syncs) is read under its own name: only its references look outward
  if (key.length === 0) return { alias: qid(table), where: `(${matchSql(f, table)} OR ${refSql(f, table, qid(table))})` };
  const same = key.map((c) => `${ref(table, c)} = t0.${qid(c)}`).join(' AND ');
  return { alias: 't0', where: `EXISTS (SELECT 1 FROM ${qid(f.schema)}.${qid(table)} AS ${qid(table)} WHERE ${same} AND ${askSql(f, table, 'in')})` };
}

/**
 * The identities among `count` placeholders (identities as they travel) of
 * rows of `table` that answer `ask` yes: `SELECT k FROM … WHERE identity IN (…) AND …`.
 */
export function questionSql(f: Filters, catalog: Catalog, table: string, ask: Ask, count: number): string {
  const rs = identitySql(catalog, table);
  const same = f.key(table).map((c) => `${ref(table, c)} = t0.${qid(c)}`).join(' AND ');
  const list = Array<string>(count).fill('?').join(', ');
  return `SELECT ${rs.identity} AS k FROM ${rs.from} WHERE ${rs.identityColumn ?? rs.identity} IN (${list})` +
    ` AND EXISTS (SELECT 1 FROM ${qid(f.schema)}.${qid(table)} AS ${qid(table)} WHERE ${same} AND ${askSql(f, table, ask)})`;
}
