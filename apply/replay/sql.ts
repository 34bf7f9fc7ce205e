// SQL text for apply (pure). Identifiers come from the catalogue only and are
// checked again here before quoting; every value is a bound parameter.
import type { TableInfo } from '../core/catalog.js';
import { qid } from '../core/db.js';
import { SpokesyncError } from '../core/errors.js';
import { exactReadExpr } from '../core/float-text.js';

export interface Sql {
  readonly sql: string;
  readonly params: readonly unknown[];
}

/** A WHERE condition with its parameters. */
export type Where = Sql;

function colId(t: TableInfo, name: string): string {
  if (!t.column.has(name)) throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_COLUMN', `table ${t.name} has no column ${JSON.stringify(name.slice(0, 64))}`);
  return qid(name);
}

/** A column in a SELECT list: a FLOAT as its exact value (the server's text of a FLOAT has 6 digits). */
function readCol(t: TableInfo, name: string): string {
  const q = colId(t, name);
  const expr = exactReadExpr(q, t.column.get(name)!);
  return expr === q ? q : `${expr} AS ${q}`;
}

/** The SELECT list of every column of `t`, named (`*` leaves out INVISIBLE columns). */
function allColumns(t: TableInfo): string {
  return t.columns.map((c) => readCol(t, c.name)).join(', ');
}

export function tableId(schema: string, t: TableInfo): string {
  return `${qid(schema)}.${qid(t.name)}`;
}

/** `a` = ? AND `b` = ? (key values are never NULL). */
export function whereEq(t: TableInfo, pairs: ReadonlyArray<readonly [string, unknown]>): Where {
  if (pairs.length === 0) throw new Error(`empty key for table ${t.name}`);
  return { sql: pairs.map(([c]) => `${colId(t, c)} = ?`).join(' AND '), params: pairs.map(([, v]) => v) };
}

export function selectSql(schema: string, t: TableInfo, columns: readonly string[] | '*', where: Where, opts: { forUpdate?: boolean; limit?: number } = {}): Sql {
  const cols = columns === '*' ? allColumns(t) : columns.map((c) => readCol(t, c)).join(', ');
  const limit = opts.limit === undefined ? '' : ` LIMIT ${Math.floor(opts.limit)}`;
  return { sql: `SELECT ${cols} FROM ${tableId(schema, t)} WHERE ${where.sql}${limit}${opts.forUpdate ? ' FOR UPDATE' : ''}`, params: where.params };
}

/** SELECT of the rows whose `column` is one of values (one round trip for many identities). */
export function selectInSql(schema: string, t: TableInfo, columns: readonly string[], column: string, values: readonly unknown[], forUpdate: boolean): Sql {
  return {
    sql: `SELECT ${columns.map((c) => readCol(t, c)).join(', ')} FROM ${tableId(schema, t)} WHERE ${colId(t, column)} IN (${values.map(() => '?').join(', ')})${forUpdate ? ' FOR UPDATE' : ''}`,
    params: values,
  };
}

export function insertSql(schema: string, t: TableInfo, columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>): Sql {
  const one = `(${columns.map(() => '?').join(', ')})`;
  return {
    sql: `INSERT INTO ${tableId(schema, t)} (${columns.map((c) => colId(t, c)).join(', ')}) VALUES ${rows.map(() => one).join(', ')}`,
    params: rows.flat(),
  };
}

export function updateSql(schema: string, t: TableInfo, set: ReadonlyArray<readonly [string, unknown]>, where: Where): Sql {
  return {
    sql: `UPDATE ${tableId(schema, t)} SET ${set.map(([c]) => `${colId(t, c)} = ?`).join(', ')} WHERE ${where.sql}`,
    params: [...set.map(([, v]) => v), ...where.params],
  };
}

export function deleteSql(schema: string, t: TableInfo, where: Where): Sql {
  return { sql: `DELETE FROM ${tableId(schema, t)} WHERE ${where.sql}`, params: where.params };
}

/** The key that pins one stored row: its primary key, else its identity condition. */
export function rowWhere(t: TableInfo, row: Readonly<Record<string, unknown>>, identity: Where): Where {
  if (t.primaryKey.length === 0) return identity;
  return whereEq(t, t.primaryKey.map((c) => [c, row[c]] as const));
}
