// Which network identity a row has, under its table's rule (DESIGN.md
// "Identity"), given a way to look up referenced rows. Pure.
import { encodeIdentity } from './identity.js';
import type { Value } from './model.js';
import type { TableInfo } from './catalog.js';

/** "The row of `table` whose `column` holds `value`" (value as key text). */
export interface Lookup {
  readonly table: string;
  readonly column: string;
  readonly value: string;
}

/** Answers lookups from what is already known; undefined when it is not. */
export interface RefResolver {
  identity(table: string, column: string, value: string): string | undefined;
}

/** Values by column, canonical, local columns included. */
export type CanonRow = Readonly<Record<string, Value>>;

export function lookupKey(table: string, column: string, value: string): string {
  return `${table}\u0000${column}\u0000${value}`;
}

/** A canonical value as a key part: text as it is, bytes as hex; null has none. */
export function keyText(v: Value | undefined): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('hex');
  return v.id;
}

/** The only column of the primary key, if the key has one column. */
export function singlePk(t: TableInfo): string | undefined {
  return t.primaryKey.length === 1 ? t.primaryKey[0] : undefined;
}

const INTEGER_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'bigint']);

/**
 * The key column of a table whose insert versions are kept as ranges of local
 * ids (state table `insert_ranges`): its row is its uuid and its primary key
 * one integer column. Capture and apply must agree on it, so both ask here.
 */
export function rangeKey(t: TableInfo): string | undefined {
  let k = rangeKeys.get(t);
  if (k === undefined) rangeKeys.set(t, (k = findRangeKey(t) ?? null));
  return k ?? undefined;
}

const rangeKeys = new WeakMap<TableInfo, string | null>();

function findRangeKey(t: TableInfo): string | undefined {
  if (t.identity?.kind !== 'uuid') return undefined;
  const pk = singlePk(t);
  const col = pk === undefined ? undefined : t.column.get(pk);
  return col && INTEGER_TYPES.has(col.dataType) && pk !== t.identity.column ? pk : undefined;
}

const INTEGER_TEXT = /^-?\d+$/;

/** A key's text as a number when it is an integer JavaScript holds exactly; undefined otherwise. */
export function safeInteger(text: string): number | undefined {
  // (the pattern a constant: a literal here would make a new RegExp object per call)
  if (text.length > 16 || !INTEGER_TEXT.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The row's identity, or undefined when a referenced row is not known yet
 * (each such lookup is added to `missing`) or a key column is NULL.
 */
export function rowIdentity(t: TableInfo, row: CanonRow, refs: RefResolver, missing?: Lookup[]): string | undefined {
  const rule = t.identity;
  if (!rule) return undefined;
  switch (rule.kind) {
    case 'uuid':
      return keyText(row[rule.column]);
    case 'shared':
      return ask(refs, rule.refTable, rule.refColumn, row[rule.column], missing);
    case 'natural': {
      const parts: string[] = [];
      let complete = true;
      for (const c of rule.columns) {
        const ref = t.refs.get(c);
        const part = ref ? ask(refs, ref.table, ref.column, row[c], missing) : keyText(row[c]);
        if (part === undefined) complete = false;
        else parts.push(part);
      }
      return complete ? encodeIdentity(parts) : undefined;
    }
  }
}

function ask(refs: RefResolver, table: string, column: string, v: Value | undefined, missing: Lookup[] | undefined): string | undefined {
  const value = keyText(v);
  if (value === undefined) return undefined;
  const id = refs.identity(table, column, value);
  if (id === undefined) missing?.push({ table, column, value });
  return id;
}

/** The columns a row's identity is computed from (for reading it from the live table). */
export function identityColumns(t: TableInfo): string[] {
  const rule = t.identity;
  if (!rule) return [];
  switch (rule.kind) {
    case 'uuid':
    case 'shared':
      return [rule.column];
    case 'natural':
      return [...rule.columns];
  }
}
