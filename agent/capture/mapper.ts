// Row changes → operations of a change set (apply/core/model.ts). Pure, given a
// resolver that already knows every referenced row it will be asked about
// (collect them first with lookupsFor).
//
// - insert: every column but local ids and generated columns; single-column
//   foreign keys as Refs (raw value when the target table has no identity);
// - update: only the columns whose canonical value changed, with their old
//   values; nothing changed → no op; identity changed → delete + insert;
// - delete: identity + rowDigest of the old row mapped like an insert row.
import { rowDigest } from '../../apply/codec/digest.js';
import { isRef, type Op, type Ref, type Row, type Value } from '../../apply/core/model.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import type { Catalog, TableInfo } from '../../apply/core/catalog.js';
import type { RowChange, RowImage } from './events.js';
import { identityColumns, keyText, rowIdentity, singlePk, type CanonRow, type Lookup, type RefResolver } from '../../apply/core/row-identity.js';
import { canonicalValue, sameValue, valueConverter } from './binlog-values.js';

/** A row change with its images in canonical form. */
export interface Canon {
  readonly table: TableInfo;
  readonly op: RowChange['op'];
  readonly before: CanonRow | null;
  readonly after: CanonRow | null;
}

/** What mapping learnt: the row of `table` with primary key `localId` has (or, deleted, had) `identity`. */
export interface Learned {
  readonly table: string;
  readonly column: string;
  readonly localId: string;
  readonly identity: string;
  /** the change set inserts this identity: its idmap row records the insert's version */
  readonly inserted: boolean;
  /** the key changed and the identity did not: the row's local id before (its insert version moves along) */
  readonly from?: string;
}

const travelCache = new WeakMap<TableInfo, readonly string[]>();

/** The columns that travel: all but local ids and generated columns, in table order. */
export function travelColumns(t: TableInfo): readonly string[] {
  let cols = travelCache.get(t);
  if (!cols) {
    cols = t.columns.filter((c) => !t.localColumns.has(c.name) && !c.generated).map((c) => c.name);
    travelCache.set(t, cols);
  }
  return cols;
}

const convertCache = new WeakMap<TableInfo, ReadonlyMap<string, (v: unknown) => Value>>();

/** Each column's canonicalValue, by column name. */
export function converters(t: TableInfo): ReadonlyMap<string, (v: unknown) => Value> {
  let m = convertCache.get(t);
  if (!m) {
    m = new Map(t.columns.map((c) => [c.name, valueConverter(c)]));
    convertCache.set(t, m);
  }
  return m;
}

const unknownColumn = (v: unknown): Value => canonicalValue(undefined, v);

export function canonicalImage(t: TableInfo, image: RowImage): CanonRow {
  const conv = converters(t);
  const out: Record<string, Value> = {};
  for (const name in image) out[name] = (conv.get(name) ?? unknownColumn)(image[name]);
  return out;
}

export function canonicalize(c: RowChange, catalog: Catalog): Canon {
  const table = catalog.table(c.table);
  // images row-decoder.ts made are canonical already
  const image = c.canon ? (i: RowImage): CanonRow => i as CanonRow : (i: RowImage): CanonRow => canonicalImage(table, i);
  return {
    table,
    op: c.op,
    before: c.op === 'insert' ? null : image(c.before),
    after: c.op === 'delete' ? null : c.op === 'insert' && c.raw ? c.raw.decode() as CanonRow : image(c.after!),
  };
}

/** Every referenced row mapping `c` will ask the resolver about (answered ones included). */
export function lookupsFor(c: Canon, catalog: Catalog, out: Lookup[]): void {
  const t = c.table;
  const whole = c.op !== 'update' || identityChanged(t, c.before!, c.after!);
  const cols = whole ? refColumns(t) : changedColumns(t, c.before!, c.after!);
  if (c.after) wantRow(t, catalog, c.after, cols, out);
  if (c.before) wantRow(t, catalog, c.before, cols, out);
}

function wantRow(t: TableInfo, catalog: Catalog, row: CanonRow, cols: readonly string[], out: Lookup[]): void {
  const id = t.identity;
  if (id?.kind === 'shared') add(out, id.refTable, id.refColumn, row[id.column]);
  if (id?.kind === 'natural') for (const k of id.columns) addRef(out, t, catalog, k, row[k]);
  for (const col of cols) addRef(out, t, catalog, col, row[col]);
}

const refCache = new WeakMap<TableInfo, readonly string[]>();

/** The travelling columns that hold references (the only ones addRef looks up). */
function refColumns(t: TableInfo): readonly string[] {
  let cols = refCache.get(t);
  if (!cols) {
    cols = travelColumns(t).filter((c) => t.refs.has(c));
    refCache.set(t, cols);
  }
  return cols;
}

/** An update that changes the identity columns (uuid, shared key, natural key) travels as delete + insert. */
export function identityChanged(t: TableInfo, before: CanonRow, after: CanonRow): boolean {
  return identityColumns(t).some((col) => !sameValue(before[col] ?? null, after[col] ?? null));
}

function add(out: Lookup[], table: string, column: string, v: Value | undefined): void {
  const value = keyText(v);
  if (value !== undefined) out.push({ table, column, value });
}

function addRef(out: Lookup[], t: TableInfo, catalog: Catalog, col: string, v: Value | undefined): void {
  const ref = t.refs.get(col);
  if (ref && catalog.tables.get(ref.table)?.identity) add(out, ref.table, ref.column, v);
}

/** Columns that travel and whose canonical value differs (foreign keys compared as local values). */
export function changedColumns(t: TableInfo, before: CanonRow, after: CanonRow): string[] {
  const out: string[] = [];
  for (const col of travelColumns(t)) {
    if (!(col in after) && !(col in before)) continue;
    if (!sameValue(before[col] ?? null, after[col] ?? null)) out.push(col);
  }
  return out;
}

export interface Mapped {
  readonly ops: Op[];
  readonly learned: Learned[];
  /** each delete's references as the deleted row held them (row filters route a delete by them: agent/rows/) */
  readonly deleted: DeletedRefs[];
}

/** The references (column → referenced row) of a row a delete removed. */
export interface DeletedRefs {
  readonly table: string;
  readonly id: string;
  readonly refs: Readonly<Record<string, Ref>>;
}

function refsOf(row: Row): Record<string, Ref> {
  const out: Record<string, Ref> = {};
  for (const col in row) {
    const v = row[col]!;
    if (isRef(v)) out[col] = v;
  }
  return out;
}

/** Maps one row change. Throws SPOKESYNC_E_CAPTURE when a referenced row cannot be identified. */
export function mapChange(c: Canon, catalog: Catalog, refs: RefResolver): Mapped {
  const t = c.table;
  const ops: Op[] = [];
  const learned: Learned[] = [];
  const deleted: DeletedRefs[] = [];
  if (c.op === 'insert') {
    const id = identityOf(t, c.after!, refs);
    ops.push({ kind: 'insert', table: t.name, id, row: travelRow(t, c.after!, travelColumns(t), catalog, refs) });
    learn(t, c.after!, id, true, undefined, learned);
  } else if (c.op === 'delete') {
    const id = identityOf(t, c.before!, refs);
    const old = travelRow(t, c.before!, travelColumns(t), catalog, refs);
    ops.push({ kind: 'delete', table: t.name, id, digest: rowDigest(old) });
    deleted.push({ table: t.name, id, refs: refsOf(old) });
    // the row is gone from the table now: the idmap keeps its identity for references
    learn(t, c.before!, id, false, undefined, learned);
  } else {
    const before = c.before!;
    const after = c.after!;
    const oldId = identityOf(t, before, refs);
    const newId = identityChanged(t, before, after) ? identityOf(t, after, refs) : oldId;
    if (oldId !== newId) {
      const old = travelRow(t, before, travelColumns(t), catalog, refs);
      ops.push({ kind: 'delete', table: t.name, id: oldId, digest: rowDigest(old) });
      deleted.push({ table: t.name, id: oldId, refs: refsOf(old) });
      ops.push({ kind: 'insert', table: t.name, id: newId, row: travelRow(t, after, travelColumns(t), catalog, refs) });
    } else {
      const changed = changedColumns(t, before, after);
      if (changed.length > 0) {
        ops.push({
          kind: 'update',
          table: t.name,
          id: newId,
          set: travelRow(t, after, changed, catalog, refs),
          old: travelRow(t, before, changed, catalog, refs),
        });
      }
    }
    const pk = singlePk(t);
    const from = pk === undefined ? undefined : keyText(before[pk]);
    if (oldId !== newId) learn(t, after, newId, true, undefined, learned);
    else if (pk !== undefined && from !== keyText(after[pk])) learn(t, after, newId, false, from, learned);
  }
  return { ops, learned, deleted };
}

function learn(t: TableInfo, row: CanonRow, identity: string, inserted: boolean, from: string | undefined, out: Learned[]): void {
  const pk = singlePk(t);
  const localId = pk === undefined ? undefined : keyText(row[pk]);
  if (pk !== undefined && localId !== undefined) {
    out.push(from === undefined ? { table: t.name, column: pk, localId, identity, inserted } : { table: t.name, column: pk, localId, identity, inserted, from });
  }
}

function identityOf(t: TableInfo, row: CanonRow, refs: RefResolver): string {
  const id = rowIdentity(t, row, refs);
  if (id === undefined) {
    // again, to name what is missing
    const missing: Lookup[] = [];
    rowIdentity(t, row, refs, missing);
    if (missing.length > 0) throw unresolved(t.name, missing[0]!);
    throw new SpokesyncError('SPOKESYNC_E_NO_IDENTITY', `a row of ${t.name} has no identity (its key is NULL or the table has none)`);
  }
  return id;
}

function travelRow(t: TableInfo, row: CanonRow, cols: readonly string[], catalog: Catalog, refs: RefResolver): Row {
  const out: Record<string, Value> = {};
  for (const col of cols) {
    if (!(col in row)) continue;
    const v = row[col]!;
    const ref = t.refs.get(col);
    if (v === null || !ref || !catalog.tables.get(ref.table)?.identity) {
      out[col] = v;
      continue;
    }
    const value = keyText(v)!;
    const id = refs.identity(ref.table, ref.column, value);
    if (id === undefined) throw unresolved(t.name, { table: ref.table, column: ref.column, value });
    out[col] = { ref: ref.table, id };
  }
  return out;
}

/** A reference nothing could answer: the row is gone from the table, and neither the idmap nor the batch knows it. */
export class UnresolvedReference extends SpokesyncError {
  constructor(from: string, readonly lookup: Lookup) {
    super(
      'SPOKESYNC_E_CAPTURE',
      `a change to ${from} refers to the ${lookup.table} row with ${lookup.column} = ${lookup.value}, which is neither in the idmap nor in the table any more`,
    );
  }
}

function unresolved(from: string, l: Lookup): SpokesyncError {
  return new UnresolvedReference(from, l);
}
