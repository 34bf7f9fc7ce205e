// How the row images of one table are read from the binlog's bytes: a reader
// per column (column-readers.ts), and where each value lies without decoding
// it. A table gets a plan when every column has a type decoded here and the
// binlog's columns are the catalogue's; any other table is left to zongji.
import type { TableMapEntry } from '@vlasky/zongji';
import type { Value } from '../../apply/core/model.js';
import type { ColumnInfo, TableInfo } from '../../apply/core/catalog.js';
import { INT_TYPES, T, TEXT_TYPES, columnReader, fixedSize, prefixSize, type BinlogColumn, type ColumnReader } from './column-readers.js';
import type { RowReader } from './row-reader.js';

export type { BinlogColumn } from './column-readers.js';

export interface RowPlan {
  readonly names: readonly string[];
  readonly readers: readonly ColumnReader[];
  /**
   * How to pass over each column's value without decoding it: its size when
   * fixed (> 0), else minus the size of its length prefix (one number per
   * column, not a function: finding where values lie is done for every row).
   * A fixed-size column's values read as plain ASCII text, never empty:
   * numbers, dates and times.
   */
  readonly sizes: Int32Array;
  /**
   * Text columns (utf8 or latin1): a value whose bytes are all ASCII is those
   * characters, one per byte (raw-insert-form.ts copies such values as they are).
   */
  readonly text: readonly boolean[];
  /**
   * Integer columns of up to 32 bits: how their value lies in the bytes
   * (IntKind), for writing its digits without a string (raw-insert-form.ts); 0
   * for any other column.
   */
  readonly ints: Int8Array;
}

/** The integers RowPlan.ints names: signed and unsigned, 8, 16, 24 and 32 bits. */
export const enum IntKind { None = 0, I8, U8, I16, U16, I24, U24, I32, U32 }

type Latin1Slicing = Buffer & { latin1Slice?: (start: number, end: number) => string };

/**
 * The text of bytes known to be ASCII: Buffer's own latin1Slice where it has
 * one (toString's encoding dispatch costs as much as the copy on short
 * values), else toString.
 */
export const asciiText: (b: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as Latin1Slicing).latin1Slice === 'function'
    ? (b, start, end) => (b as Latin1Slicing).latin1Slice!(start, end)
    : (b, start, end) => b.toString('latin1', start, end);

/** The value of an integer column of `kind` (RowPlan.ints) whose bytes start at `p` (located already: within the image). */
export function intAt(b: Buffer, p: number, kind: IntKind): number {
  switch (kind) {
    case IntKind.I8:
      return (b[p]! << 24) >> 24;
    case IntKind.U8:
      return b[p]!;
    case IntKind.I16:
      return ((b[p]! | (b[p + 1]! << 8)) << 16) >> 16;
    case IntKind.U16:
      return b[p]! | (b[p + 1]! << 8);
    case IntKind.I24:
      return ((b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) << 8) >> 8;
    case IntKind.U24:
      return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16);
    case IntKind.I32:
      return b.readInt32LE(p);
    default:
      return b.readUInt32LE(p);
  }
}

function intKind(c: BinlogColumn, col: ColumnInfo): IntKind {
  if (INT_TYPES[c.type] !== col.dataType || c.type === T.LONGLONG) return IntKind.None;
  const unsigned = /\bunsigned\b/.test(col.columnType) ? 1 : 0;
  const signed = c.type === T.TINY ? IntKind.I8 : c.type === T.SHORT ? IntKind.I16 : c.type === T.INT24 ? IntKind.I24 : IntKind.I32;
  return signed + unsigned;
}

/** Where a table map entry keeps the plan its rows are decoded with. */
const PLAN = Symbol('spokesync.rowPlan');

type PlannedEntry = TableMapEntry & { [PLAN]?: RowPlan | null };

/** Plans by catalogue table and binlog column signature (a cache: both are never changed). */
const plans = new WeakMap<TableInfo, Map<string, RowPlan | null>>();

/**
 * Keeps on a table map entry of `table` the plan its rows are decoded with;
 * none (the entry left to zongji) when a column is of a type not decoded
 * here or the binlog's columns are not the catalogue's.
 */
export function attachPlan(entry: TableMapEntry, table: TableInfo | undefined): void {
  const e = entry as PlannedEntry;
  const cols = (entry.columns ?? []) as BinlogColumn[];
  if (!table || cols.length === 0) {
    e[PLAN] = null;
    return;
  }
  let byShape = plans.get(table);
  if (!byShape) plans.set(table, (byShape = new Map()));
  let signature = '';
  for (const c of cols) {
    signature += `${c.name}\u0001${c.type}\u0001${c.charset ?? ''}`;
    if (c.metadata) for (const k in c.metadata) signature += `\u0001${k}=${c.metadata[k]}`;
    signature += '\u0002';
  }
  let plan = byShape.get(signature);
  if (plan === undefined) {
    plan = makePlan(cols, table);
    byShape.set(signature, plan);
  }
  e[PLAN] = plan;
}

/** The plan attachPlan kept on `entry`; undefined when none. */
export function planOf(entry: TableMapEntry | undefined): RowPlan | null | undefined {
  return (entry as PlannedEntry | undefined)?.[PLAN];
}

/** How rows of `table` with the binlog's columns `cols` are decoded; null when they cannot be here. */
export function makePlan(cols: readonly BinlogColumn[], table: TableInfo): RowPlan | null {
  if (cols.length !== table.columns.length) return null;
  const readers: ColumnReader[] = [];
  const sizes: number[] = [];
  const text: boolean[] = [];
  const ints: IntKind[] = [];
  for (const c of cols) {
    const info = table.column.get(c.name);
    const r = info ? columnReader(c, info) : null;
    if (!r) return null;
    readers.push(r);
    sizes.push(fixedSize(c) ?? -prefixSize(c));
    text.push(!info!.binary && TEXT_TYPES.has(info!.dataType));
    ints.push(intKind(c, info!));
  }
  return { names: cols.map((c) => c.name), readers, sizes: Int32Array.from(sizes), text, ints: Int8Array.from(ints) };
}

/** Whether every column of the image is present (a whole image; binlog_row_image=FULL). */
export function whole(present: Buffer | undefined, count: number): boolean {
  if (!present || present.length < (count + 7) >> 3) return false;
  for (let i = 0; i < count; i++) if ((present[i >> 3]! & (1 << (i & 7))) === 0) return false;
  return true;
}

/** The image at the reader's position (its null bitmap), decoded; the reader ends past it. */
export function readValues(r: RowReader, plan: RowPlan): Record<string, Value> {
  const { names, readers } = plan;
  const count = names.length;
  const nulls = r.take((count + 7) >> 3);
  const b = r.buf;
  const row: Record<string, Value> = {};
  for (let i = 0; i < count; i++) {
    row[names[i]!] = (b[nulls + (i >> 3)]! & (1 << (i & 7))) !== 0 ? null : readers[i]!(r);
  }
  return row;
}

/** Passes over the image at the reader's position; the reader ends past it. */
export function skipValues(r: RowReader, plan: RowPlan): void {
  const { sizes } = plan;
  const count = sizes.length;
  const nulls = r.take((count + 7) >> 3);
  const b = r.buf;
  for (let i = 0; i < count; i++) if ((b[nulls + (i >> 3)]! & (1 << (i & 7))) === 0) r.skip(sizes[i]!);
}

/**
 * Where each column's value lies in the image at the reader's position,
 * without decoding any: `where[2i]` the start of column i's value (its length
 * prefix included), -1 when NULL; `where[2i + 1]` its end. The reader ends past it.
 */
export function locateValues(r: RowReader, plan: RowPlan, where: Int32Array): void {
  const { sizes } = plan;
  const count = sizes.length;
  const nulls = r.take((count + 7) >> 3);
  const b = r.buf;
  for (let i = 0; i < count; i++) {
    if ((b[nulls + (i >> 3)]! & (1 << (i & 7))) !== 0) {
      where[2 * i] = -1;
      continue;
    }
    where[2 * i] = r.pos;
    r.skip(sizes[i]!);
    where[2 * i + 1] = r.pos;
  }
}
