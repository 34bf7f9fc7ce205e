// SQL that names and fingerprints the rows of a synced table inside the server,
// so that comparing two nodes moves checksums, not rows (DESIGN.md "Identity").
// A row's identity is computed as spokesync names it across the network (its
// uuid, its shared key's referenced identity, or its key tuple with foreign-key
// parts as identities); its fingerprint is an MD5 over every column that
// travels, each foreign key replaced by the referenced row's identity, so two
// nodes whose local integer ids differ still agree. Rows are grouped into
// chunks by the leading hex digits of MD5(identity): both sides agree on the
// chunks without exchanging bounds, and a chunk that differs splits sixteen ways.
// Pure: table and column names come from the catalogue.
import type { Catalog, ColumnInfo, TableInfo } from '../../apply/core/catalog.js';
import { qid } from '../../apply/core/db.js';
import { exactReadExpr } from '../../apply/core/float-text.js';
import { SpokesyncError } from '../../apply/core/errors.js';

/** How one table is read: FROM with the joins its identities need, and the two expressions. */
export interface RowSql {
  readonly table: TableInfo;
  /** `schema`.`t` AS t0 LEFT JOIN ... */
  readonly from: string;
  /** the identity's text (SQL form: a key tuple is a JSON array written by the server), NULL when it cannot be named */
  readonly identity: string;
  /** the plain column holding the identity (uuid tables): lookups by identity use its index */
  readonly identityColumn: string | null;
  /** hex MD5 of the row's travelling content */
  readonly fingerprint: string;
}

/** Longest chain of joins one identity may need (natural keys of natural keys). */
const MAX_DEPTH = 8;

/** Values stored off-page (TEXT, BLOB, JSON): fingerprinted by their own MD5, so no row concatenation nears max_allowed_packet. */
const LONG_TYPES = new Set([
  'text', 'tinytext', 'mediumtext', 'longtext', 'blob', 'tinyblob', 'mediumblob', 'longblob', 'json',
  'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection',
]);

class Joins {
  readonly clauses: string[] = [];
  private n = 0;
  constructor(private readonly schema: string) {}
  /** LEFT JOIN `table` on `column` = `value`; returns its alias. */
  add(table: string, column: string, value: string): string {
    const alias = `t${++this.n}`;
    this.clauses.push(`LEFT JOIN ${qid(this.schema)}.${qid(table)} AS ${alias} ON ${alias}.${qid(column)} = ${value}`);
    return alias;
  }
}

const col = (alias: string, name: string): string => `${alias}.${qid(name)}`;

/** A key part as identity text: keyText of row-identity.ts (bytes as lower-case hex, other values as their text). */
function keyPart(c: ColumnInfo, expr: string): string {
  return c.binary ? `LOWER(HEX(${expr}))` : exactReadExpr(expr, c);
}

function identityOf(catalog: Catalog, t: TableInfo, alias: string, joins: Joins, depth: number): string {
  if (depth > MAX_DEPTH) {
    throw new SpokesyncError('SPOKESYNC_E_NO_IDENTITY', `the identities of table ${t.name} nest deeper than ${MAX_DEPTH} tables`);
  }
  const rule = t.identity;
  if (!rule) throw new SpokesyncError('SPOKESYNC_E_NO_IDENTITY', t.identityProblem ?? `table ${t.name} has no identity`);
  switch (rule.kind) {
    case 'uuid':
      return keyPart(t.column.get(rule.column)!, col(alias, rule.column));
    case 'shared': {
      const ref = catalog.table(rule.refTable);
      return identityOf(catalog, ref, joins.add(ref.name, rule.refColumn, col(alias, rule.column)), joins, depth + 1);
    }
    case 'natural': {
      const parts = rule.columns.map((name) => {
        const fk = t.refs.get(name);
        if (!fk) return keyPart(t.column.get(name)!, col(alias, name));
        const ref = catalog.table(fk.table);
        return identityOf(catalog, ref, joins.add(ref.name, fk.column, col(alias, name)), joins, depth + 1);
      });
      const quoted = parts.map((p) => `JSON_QUOTE(CONVERT(${p} USING utf8mb4))`);
      // encodeIdentity: one part travels as itself unless it starts with '['; several as a JSON array (NULL if any part is)
      if (parts.length === 1) return `IF(LEFT(${parts[0]!}, 1) = '[', CONCAT('[', ${quoted[0]!}, ']'), ${parts[0]!})`;
      return `CONCAT('[', ${quoted.join(", ',', ")}, ']')`;
    }
  }
}

/** The columns whose values travel (identity.ts: not local ids, not generated), by name. */
export function travellingColumns(t: TableInfo): ColumnInfo[] {
  return t.columns.filter((c) => !c.generated && !t.localColumns.has(c.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * One column's part of the fingerprint, unambiguous whatever the bytes: 'n'
 * for NULL, else a tag, the length and the bytes (or the MD5 of a long value);
 * a foreign key as the referenced row's identity, or '?' and the local value
 * when that row is not there.
 */
function fingerprintPart(catalog: Catalog, t: TableInfo, c: ColumnInfo, joins: Joins): string {
  const here = col('t0', c.name);
  const fk = t.refs.get(c.name);
  if (fk) {
    const ref = catalog.table(fk.table);
    const id = `CAST(${identityOf(catalog, ref, joins.add(ref.name, fk.column, here), joins, 1)} AS BINARY)`;
    return `IF(${here} IS NULL, 'n', COALESCE(CONCAT('r', LENGTH(${id}), ':', ${id}), CONCAT('?', ${here})))`;
  }
  if (LONG_TYPES.has(c.dataType)) return `IF(${here} IS NULL, 'n', CONCAT('h', MD5(${here})))`;
  const bytes = `CAST(${exactReadExpr(here, c)} AS BINARY)`;
  return `IF(${here} IS NULL, 'n', CONCAT('v', LENGTH(${bytes}), ':', ${bytes}))`;
}

export function rowSql(catalog: Catalog, table: string): RowSql {
  const t = catalog.table(table);
  const joins = new Joins(catalog.schema);
  const identity = identityOf(catalog, t, 't0', joins, 0);
  const parts = travellingColumns(t).map((c) => fingerprintPart(catalog, t, c, joins));
  // (the server joins at most 61 tables in one statement)
  if (joins.clauses.length > 60) {
    throw new SpokesyncError('SPOKESYNC_E_NO_IDENTITY', `table ${t.name} has too many foreign keys to compare in one statement (${joins.clauses.length} joins)`, {
      fix: 'Leave the table out of the comparison with tables.exclude, or report it.',
    });
  }
  const rule = t.identity!;
  // a shared key is a local id, not a travelling column: the identity it stands for is fingerprinted instead, so
  // that rows alike but for whose they are (patients without an allergy) do not cancel out in a chunk's sum
  if (rule.kind === 'shared') {
    const id = `CAST(${identity} AS BINARY)`;
    parts.unshift(`COALESCE(CONCAT('i', LENGTH(${id}), ':', ${id}), 'i?')`);
  }
  return {
    table: t,
    from: [`${qid(catalog.schema)}.${qid(t.name)} AS t0`, ...joins.clauses].join(' '),
    identity,
    identityColumn: rule.kind === 'uuid' && !t.column.get(rule.column)!.binary ? col('t0', rule.column) : null,
    fingerprint: parts.length === 0 ? `MD5('')` : `MD5(CONCAT(${parts.join(', ')}))`,
  };
}

/** FROM and identity of a table's rows (alias t0), with only the joins the identity needs. */
export function identitySql(catalog: Catalog, table: string): Pick<RowSql, 'table' | 'from' | 'identity' | 'identityColumn'> {
  const t = catalog.table(table);
  const joins = new Joins(catalog.schema);
  const identity = identityOf(catalog, t, 't0', joins, 0);
  return {
    table: t,
    from: [`${qid(catalog.schema)}.${qid(t.name)} AS t0`, ...joins.clauses].join(' '),
    identity,
    identityColumn: t.identity!.kind === 'uuid' && !t.column.get(t.identity!.column)!.binary ? col('t0', t.identity!.column) : null,
  };
}

/** The chunk digits of a row: hex MD5 of its identity (a row that cannot be named hashes as the empty identity). */
export function chunkHash(r: RowSql): string {
  return `MD5(COALESCE(${r.identity}, ''))`;
}

/** Hex digits of a chunk name: a prefix of MD5(identity). */
export const PREFIX = /^[0-9a-f]{0,32}$/;

/** WHERE for rows under any of `prefixes` (all of one length); TRUE when there are none to filter by. */
export function underSql(r: RowSql, prefixes: readonly string[] | null): { sql: string; params: string[] } {
  if (prefixes === null) return { sql: 'TRUE', params: [] };
  const len = prefixes[0]?.length ?? 0;
  if (prefixes.length === 0) return { sql: 'FALSE', params: [] };
  if (len === 0) return { sql: 'TRUE', params: [] };
  return { sql: `LEFT(${chunkHash(r)}, ${len}) IN (${prefixes.map(() => '?').join(', ')})`, params: [...prefixes] };
}

/**
 * Per chunk of `depth` hex digits (under the prefixes, when given): row count and
 * the sum of the first 60 bits of every row's fingerprint (a sum, not XOR: a row
 * held twice does not cancel out).
 */
export function sumsSql(r: RowSql, depth: number, prefixes: readonly string[] | null, limit: number): { sql: string; params: string[] } {
  const where = underSql(r, prefixes);
  const part = `CAST(CONV(LEFT(${r.fingerprint}, 15), 16, 10) AS UNSIGNED)`;
  const chunk = depth === 0 ? `''` : `LEFT(${chunkHash(r)}, ${depth})`;
  return {
    sql: `SELECT ${chunk} AS p, COUNT(*) AS n, CAST(COALESCE(SUM(${part}), 0) AS CHAR) AS s FROM ${r.from} WHERE ${where.sql}` +
      `${depth === 0 ? '' : ' GROUP BY p'} LIMIT ${Math.floor(limit)}`,
    params: where.params,
  };
}

/** Identity and short fingerprint of every row under the prefixes. */
export function rowsSql(r: RowSql, prefixes: readonly string[], limit: number): { sql: string; params: string[] } {
  const where = underSql(r, prefixes);
  return { sql: `SELECT ${r.identity} AS k, LEFT(${r.fingerprint}, 16) AS h FROM ${r.from} WHERE ${where.sql} LIMIT ${Math.floor(limit)}`, params: where.params };
}

/** The name under which byIdentitySql returns each row's identity (not a column name schemas use). */
export const KEY_ALIAS = '@identity';

/** The rows with these identities (SQL form): their short fingerprints, or every column read exactly. */
export function byIdentitySql(r: RowSql, keys: readonly string[], select: 'hash' | 'row'): { sql: string; params: string[] } {
  const list = keys.map(() => '?').join(', ');
  const what = select === 'hash'
    ? `LEFT(${r.fingerprint}, 16) AS h`
    : r.table.columns.map((c) => `${exactReadExpr(col('t0', c.name), c)} AS ${qid(c.name)}`).join(', ');
  return { sql: `SELECT ${r.identity} AS ${qid(KEY_ALIAS)}, ${what} FROM ${r.from} WHERE ${r.identityColumn ?? r.identity} IN (${list})`, params: [...keys] };
}
