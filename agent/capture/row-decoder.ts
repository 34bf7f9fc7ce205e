// Row images read straight from the binlog's bytes into canonical values
// (apply/core/model.ts Value, exactly what binlog-values.ts makes of zongji's values),
// for the tables whose every column has a type decoded here: integers, YEAR,
// FLOAT/DOUBLE, CHAR/VARCHAR/TEXT in utf8 or latin1, BINARY/VARBINARY/BLOB,
// DATE, DATETIME and TIMESTAMP. Any other table, and any row image that is not
// whole, is decoded by zongji as before and converted by binlog-values.ts.
//
// Why: zongji builds each value through a general decoder (IEEE 754 by hand,
// dates padded piece by piece), and capture then converts every value again.
// Decoding once into the final form took about a third off the CPU a captured
// row costs (`npm run bench`, capture section: 7.8 → 5.5 µs in the capture process). zongji still reads the stream, the table
// maps and every other event; only the decoding of a row's values is done here,
// by taking over RowsEvent's per-row method (the event is marked so capture
// knows its rows are canonical already). test/db/capture-types checks both
// paths against the server's own SELECT, byte for byte.
import type { TableMapEntry } from '@vlasky/zongji';
import type { Value } from '../../apply/core/model.js';
import type { RowChange, RowImage } from './events.js';
import type { ColumnInfo, TableInfo } from '../../apply/core/catalog.js';
import { floatFormat } from '../../apply/core/float-text.js';
import { decodeLatin1 } from './binlog-values.js';

/** Set on a rows event whose rows this module decoded: their values are canonical. */
export const CANONICAL_ROWS = Symbol('spokesync.canonicalRows');
/** Where a table map entry keeps the plan its rows are decoded with. */
const PLAN = Symbol('spokesync.rowPlan');

type Reader = (b: Buffer) => Value;

export interface RowPlan {
  readonly names: readonly string[];
  readonly readers: readonly Reader[];
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
   * characters, one per byte (insert-form.ts copies such values as they are).
   */
  readonly text: readonly boolean[];
  /**
   * Integer columns of up to 32 bits: how their value lies in the bytes
   * (IntKind), for writing its digits without a string (insert-form.ts); 0
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

/** The value of an integer column of `kind` (RowPlan.ints) whose bytes start at `p`. */
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

/**
 * An inserted row's image not decoded yet: where it starts in a copy of its
 * event's rows. Inserts wait in capture's queue like this (a small object
 * each, not an object of values and their strings) and are decoded when their
 * group is mapped (decodeImages).
 */
export class RawImage {
  constructor(readonly bytes: Buffer, readonly at: number, readonly plan: RowPlan) {}

  decode(): Record<string, Value> {
    at = this.at;
    return readValues(this.bytes, this.plan);
  }

  /**
   * Where each column's value lies, without decoding any: `where[2i]` the
   * start of column i's value (its length prefix included), -1 when NULL;
   * `where[2i + 1]` its end.
   */
  locate(where: Int32Array): void {
    const b = this.bytes;
    const { sizes } = this.plan;
    const count = sizes.length;
    const nulls = this.at;
    let p = nulls + ((count + 7) >> 3);
    for (let i = 0; i < count; i++) {
      if ((b[nulls + (i >> 3)]! & (1 << (i & 7))) !== 0) {
        where[2 * i] = -1;
        continue;
      }
      where[2 * i] = p;
      p = pastValue(b, p, sizes[i]!);
      where[2 * i + 1] = p;
    }
  }

  /** Column i's canonical value, from where locate() found it to start. */
  read(i: number, start: number): Value {
    at = start;
    return this.plan.readers[i]!(this.bytes);
  }
}

/** The read position in the buffer being decoded (one row at a time, synchronously). */
let at = 0;
/** Row images taken by this module since the process started, decoded or kept as RawImage (for tests). */
let decoded = 0;

export function rowsDecoded(): number {
  return decoded;
}

// binlog column type codes (after zongji has put ENUM/SET in place of STRING)
const T = {
  TINY: 1, SHORT: 2, LONG: 3, FLOAT: 4, DOUBLE: 5, LONGLONG: 8, INT24: 9, DATE: 10, YEAR: 13,
  VARCHAR: 15, TIMESTAMP2: 17, DATETIME2: 18, BLOB: 252, STRING: 254,
} as const;

const INT_TYPES: Record<number, string> = { [T.TINY]: 'tinyint', [T.SHORT]: 'smallint', [T.INT24]: 'mediumint', [T.LONG]: 'int', [T.LONGLONG]: 'bigint' };
const UTF8 = new Set(['utf8mb4', 'utf8mb3', 'utf8']);
const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext']);
const BYTES_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

/** A column as the binlog's table map describes it (zongji's table map entry). */
export type BinlogColumn = NonNullable<TableMapEntry['columns']>[number] & { metadata?: Record<string, number> };

const plans = new WeakMap<TableInfo, Map<string, RowPlan | null>>();

/**
 * Keeps on a table map entry of `table` the plan its rows are decoded with;
 * none (the entry left to zongji) when a column is of a type not decoded
 * here or the binlog's columns are not the catalogue's.
 */
export function attachPlan(entry: TableMapEntry, table: TableInfo | undefined): void {
  const e = entry as TableMapEntry & { [PLAN]?: RowPlan | null };
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

/** How rows of `table` with the binlog's columns `cols` are decoded; null when they cannot be here. */
export function makePlan(cols: readonly BinlogColumn[], table: TableInfo): RowPlan | null {
  if (cols.length !== table.columns.length) return null;
  const readers: Reader[] = [];
  const sizes: number[] = [];
  const text: boolean[] = [];
  const ints: IntKind[] = [];
  for (const c of cols) {
    const info = table.column.get(c.name);
    const r = info ? reader(c, info) : null;
    if (!r) return null;
    readers.push(r);
    sizes.push(fixedSize(c) ?? -prefixSize(c));
    text.push(!info!.binary && TEXT_TYPES.has(info!.dataType));
    ints.push(intKind(c, info!));
  }
  return { names: cols.map((c) => c.name), readers, sizes: Int32Array.from(sizes), text, ints: Int8Array.from(ints) };
}

const FIXED_SIZE: Record<number, number> = {
  [T.TINY]: 1, [T.SHORT]: 2, [T.INT24]: 3, [T.LONG]: 4, [T.LONGLONG]: 8, [T.FLOAT]: 4, [T.DOUBLE]: 8, [T.DATE]: 3, [T.YEAR]: 1,
};

/** The size of a fixed-size value of a column reader() decodes; undefined for a length-prefixed one. */
function fixedSize(c: BinlogColumn): number | undefined {
  const fixed = FIXED_SIZE[c.type] ?? (c.type === T.DATETIME2 ? 5 : c.type === T.TIMESTAMP2 ? 4 : undefined);
  if (fixed === undefined) return undefined;
  return fixed + Math.ceil((c.type === T.DATETIME2 || c.type === T.TIMESTAMP2 ? c.metadata?.decimals ?? 0 : 0) / 2);
}

/** The length prefix's size of a value of a column reader() decodes (0: fixed size). */
function prefixSize(c: BinlogColumn): number {
  if (fixedSize(c) !== undefined) return 0;
  const meta = c.metadata ?? {};
  return c.type === T.BLOB ? meta.length_size ?? 0 : (meta.max_length ?? 0) > 255 ? 2 : 1;
}

/** Where the value that starts at `p` ends, given its column's entry in RowPlan.sizes. */
function pastValue(b: Buffer, p: number, size: number): number {
  switch (size) {
    case -1:
      return p + 1 + b[p]!;
    case -2:
      return p + 2 + (b[p]! | (b[p + 1]! << 8));
    case -3:
      return p + 3 + (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16));
    case -4:
      return p + 4 + b.readUInt32LE(p);
    default:
      return p + size;
  }
}

function reader(c: BinlogColumn, col: ColumnInfo): Reader | null {
  const t = col.dataType;
  const meta = c.metadata ?? {};
  if (INT_TYPES[c.type] !== undefined) return INT_TYPES[c.type] === t ? intReader(c.type, /\bunsigned\b/.test(col.columnType)) : null;
  switch (c.type) {
    case T.YEAR:
      return t === 'year' ? (b) => {
        const v = b[at++]!;
        // YEAR 0000 (binlog-values.ts: the decoder's 1900)
        return v === 0 ? '0' : String(1900 + v);
      } : null;
    case T.FLOAT:
    case T.DOUBLE: {
      const double = c.type === T.DOUBLE;
      if (t !== (double ? 'double' : 'float')) return null;
      const format = floatFormat(t, col.columnType);
      return (b) => {
        const v = double ? b.readDoubleLE(at) : b.readFloatLE(at);
        at += double ? 8 : 4;
        return format(v);
      };
    }
    case T.VARCHAR:
    case T.STRING: {
      if (t !== 'char' && t !== 'varchar' && t !== 'binary' && t !== 'varbinary') return null;
      return bytesReader(prefixSize(c), col);
    }
    case T.BLOB: {
      const size = prefixSize(c);
      // TEXT and BLOB types only (CHAR/VARCHAR/BINARY/VARBINARY never come as BLOB)
      if (size < 1 || size > 4 || !/text$|blob$/.test(t)) return null;
      return bytesReader(size, col);
    }
    case T.DATE: {
      if (t !== 'date') return null;
      const text = lastText((v) => `${pad4(v >>> 9)}-${PAD2[(v >>> 5) & 15]!}-${PAD2[v & 31]!}`);
      return (b) => {
        const v = b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16);
        at += 3;
        return text(v, 0, 0);
      };
    }
    case T.DATETIME2: {
      if (t !== 'datetime') return null;
      const fraction = fractionReader(meta.decimals ?? 0);
      const text = lastText((hi, lo, frac) => {
        const ym = (hi >>> 14) & 0x1ffff;
        return `${pad4(Math.floor(ym / 13))}-${PAD2[ym % 13]!}-${PAD2[(lo >>> 17) & 31]!} ` +
          `${PAD2[(lo >>> 12) & 31]!}:${PAD2[(lo >>> 6) & 63]!}:${PAD2[lo & 63]!}${fraction ? fraction.text(frac) : ''}`;
      });
      return (b) => {
        const hi = b.readUInt32BE(at);
        const lo = b.readUInt32BE(at + 1);
        at += 5;
        return text(hi, lo, fraction ? fraction.raw(b) : 0);
      };
    }
    case T.TIMESTAMP2: {
      if (t !== 'timestamp') return null;
      const fraction = fractionReader(meta.decimals ?? 0);
      const text = lastText((seconds, frac) => {
        const f = fraction ? fraction.text(frac) : '';
        // the zero timestamp, as the decoder writes it; any other in UTC (capture's time zone)
        if (seconds === 0 && frac === 0) return `0000-00-00 00:00:00${f}`;
        const d = new Date(seconds * 1000);
        return `${pad4(d.getUTCFullYear())}-${PAD2[d.getUTCMonth() + 1]!}-${PAD2[d.getUTCDate()]!} ` +
          `${PAD2[d.getUTCHours()]!}:${PAD2[d.getUTCMinutes()]!}:${PAD2[d.getUTCSeconds()]!}${f}`;
      });
      return (b) => {
        const seconds = b.readUInt32BE(at);
        at += 4;
        return text(seconds, fraction ? fraction.raw(b) : 0, 0);
      };
    }
    default:
      return null;
  }
}

function intReader(type: number, unsigned: boolean): Reader {
  switch (type) {
    case T.TINY:
      return unsigned ? (b) => String(b[at++]!) : (b) => String(b.readInt8(at++));
    case T.SHORT:
      return (b) => {
        const v = unsigned ? b.readUInt16LE(at) : b.readInt16LE(at);
        at += 2;
        return String(v);
      };
    case T.INT24:
      return (b) => {
        const v = unsigned ? b.readUIntLE(at, 3) : b.readIntLE(at, 3);
        at += 3;
        return String(v);
      };
    case T.LONG:
      return (b) => {
        const v = unsigned ? b.readUInt32LE(at) : b.readInt32LE(at);
        at += 4;
        return String(v);
      };
    default:
      return (b) => {
        const lo = b.readUInt32LE(at);
        const hi = unsigned ? b.readUInt32LE(at + 4) : b.readInt32LE(at + 4);
        const start = at;
        at += 8;
        // exact as a double below 2^53 in magnitude; beyond, as a bigint
        if (hi < 0x200000 && hi >= -0x200000) return String(hi * 0x100000000 + lo);
        return (unsigned ? b.readBigUInt64LE(start) : b.readBigInt64LE(start)).toString();
      };
  }
}

/** A length-prefixed value: text in the column's character set, or bytes (BINARY(n) padded to n, as the server returns it). */
function bytesReader(prefix: number, col: ColumnInfo): Reader | null {
  const length = prefix === 1 ? (b: Buffer): number => b[at++]! : (b: Buffer): number => {
    const n = b.readUIntLE(at, prefix);
    at += prefix;
    return n;
  };
  if (col.binary) {
    if (!BYTES_TYPES.has(col.dataType)) return null;
    const width = col.dataType === 'binary' ? Number(/\((\d+)\)/.exec(col.columnType)?.[1] ?? NaN) : 0;
    if (Number.isNaN(width)) return null;
    return (b) => {
      const n = length(b);
      const out = Buffer.alloc(Math.max(n, width));
      b.copy(out, 0, at, at + n);
      at += n;
      return out;
    };
  }
  if (!TEXT_TYPES.has(col.dataType)) return null;
  if (col.charset !== null && UTF8.has(col.charset)) {
    return (b) => {
      const n = length(b);
      const s = b.toString('utf8', at, at + n);
      at += n;
      return s;
    };
  }
  if (col.charset === 'latin1') {
    return (b) => {
      const n = length(b);
      const s = decodeLatin1(b.toString('latin1', at, at + n));
      at += n;
      return s;
    };
  }
  return null;
}

/** The fractional seconds of a DATETIME/TIMESTAMP of `digits` digits: read (as stored), and written as '.ddd'; null without any. */
function fractionReader(digits: number): { raw: (b: Buffer) => number; text: (raw: number) => string } | null {
  if (digits <= 0) return null;
  const size = Math.ceil(digits / 2);
  const odd = digits % 2 !== 0;
  return {
    raw: (b) => {
      const v = b.readUIntBE(at, size);
      at += size;
      return v;
    },
    // an odd number of digits keeps one more in storage, always 0
    text: (raw) => '.' + String(odd ? Math.floor(raw / 10) : raw).padStart(digits, '0'),
  };
}

/**
 * A value's text, kept for the next value when it is the same (the rows of a
 * transaction often share their dates and times): `format` of up to three numbers.
 */
function lastText(format: (a: number, b: number, c: number) => string): (a: number, b: number, c: number) => string {
  let la = NaN;
  let lb = NaN;
  let lc = NaN;
  let text = '';
  return (a, b, c) => {
    if (a !== la || b !== lb || c !== lc) {
      la = a;
      lb = b;
      lc = c;
      text = format(a, b, c);
    }
    return text;
  };
}

const PAD2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));

function pad4(n: number): string {
  return n >= 1000 ? String(n) : String(n).padStart(4, '0');
}

/** Whether every column of the image is present (a whole image; binlog_row_image=FULL). */
function whole(present: Buffer, count: number): boolean {
  for (let i = 0; i < count; i++) if ((present[i >> 3]! & (1 << (i & 7))) === 0) return false;
  return true;
}

/** One row image at the parser's position: column name → canonical value; the parser moves past it. */
function decodeRow(parser: ZongjiParser, plan: RowPlan): Record<string, Value> {
  at = parser._offset;
  const row = readValues(parser._buffer, plan);
  parser._offset = at;
  decoded++;
  return row;
}

/** The image that starts at `at` (its null bitmap), decoded; `at` ends past it. */
function readValues(b: Buffer, plan: RowPlan): Record<string, Value> {
  const { names, readers } = plan;
  const count = names.length;
  const nulls = at;
  at += (count + 7) >> 3;
  const row: Record<string, Value> = {};
  for (let i = 0; i < count; i++) {
    row[names[i]!] = (b[nulls + (i >> 3)]! & (1 << (i & 7))) !== 0 ? null : readers[i]!(b);
  }
  return row;
}

/** Decodes the inserted rows left undecoded (RawImage) among `changes`, in place. */
export function decodeImages(changes: RowChange[]): void {
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    // (in place: the change is capture's own, made by binlog-source.ts for this image)
    if (c.op === 'insert' && c.after instanceof RawImage) (c as { after: RowImage }).after = c.after.decode();
  }
}

/** Passes over the image that starts at `at`; `at` ends past it. */
function skipValues(b: Buffer, plan: RowPlan): void {
  const { sizes } = plan;
  const count = sizes.length;
  const nulls = at;
  let p = at + ((count + 7) >> 3);
  for (let i = 0; i < count; i++) if ((b[nulls + (i >> 3)]! & (1 << (i & 7))) === 0) p = pastValue(b, p, sizes[i]!);
  // (a length read past the end is undefined, and the position NaN: the rows event is not what its table map says)
  if (!(p <= b.length)) throw new RangeError(`a row image runs past the end of its rows event (${p} > ${b.length})`);
  at = p;
}

/** Inserted rows of a table with a plan, kept undecoded (RawImage): the copy of the event's rows they point into. */
const RAW = Symbol('spokesync.rawRows');

interface ZongjiParser {
  _buffer: Buffer;
  _offset: number;
}

interface RowsEventShape {
  tableMap?: Record<number, TableMapEntry & { [PLAN]?: RowPlan | null }>;
  tableId: number;
  numberOfColumns: number;
  columns_present_bitmap: Buffer;
  columns_present_bitmap2?: Buffer;
  [CANONICAL_ROWS]?: boolean;
  [RAW]?: { readonly bytes: Buffer; readonly base: number };
}

type FetchOne = (this: RowsEventShape, parser: ZongjiParser) => unknown;

let installing: Promise<boolean> | undefined;

/**
 * Takes over the per-row decoding of zongji's rows events for tables with a
 * plan (once per process). False, with zongji left as it is, when its classes
 * are not shaped as expected (another version): capture then converts
 * zongji's values as before.
 */
export function installRowDecoder(): Promise<boolean> {
  installing ??= (async () => {
    try {
      const main = import.meta.resolve('@vlasky/zongji');
      const mod = (await import(new URL('./lib/rows_event.js', main).href)) as Record<string, { prototype: Record<string, unknown> } | undefined>;
      const writeClass = mod.WriteRows as unknown as abstract new (...args: never[]) => unknown;
      const write = mod.WriteRows?.prototype;
      const update = mod.UpdateRows?.prototype;
      const base = write ? (Object.getPrototypeOf(write) as Record<string, unknown>) : undefined;
      const single = base?._fetchOneRow;
      const pair = update?._fetchOneRow;
      if (!base || !update || typeof single !== 'function' || typeof pair !== 'function' || update === base) return false;
      base._fetchOneRow = function (this: RowsEventShape, parser: ZongjiParser): unknown {
        const plan = this.tableMap?.[this.tableId]?.[PLAN];
        if (!plan || this.numberOfColumns !== plan.names.length || !whole(this.columns_present_bitmap, plan.names.length)) {
          return (single as FetchOne).call(this, parser);
        }
        this[CANONICAL_ROWS] = true;
        if (!(this instanceof writeClass)) return decodeRow(parser, plan);
        // an insert: left undecoded until its group is mapped
        let raw = this[RAW];
        if (!raw) {
          const end = (parser as ZongjiParser & { _packetEnd: number })._packetEnd;
          raw = this[RAW] = { bytes: Buffer.from(parser._buffer.subarray(parser._offset, end)), base: parser._offset };
        }
        const start = parser._offset - raw.base;
        at = start;
        skipValues(raw.bytes, plan);
        parser._offset = raw.base + at;
        decoded++;
        return new RawImage(raw.bytes, start, plan);
      } satisfies FetchOne;
      update._fetchOneRow = function (this: RowsEventShape, parser: ZongjiParser): unknown {
        const plan = this.tableMap?.[this.tableId]?.[PLAN];
        if (!plan || this.numberOfColumns !== plan.names.length || !whole(this.columns_present_bitmap, plan.names.length) ||
          !whole(this.columns_present_bitmap2!, plan.names.length)) {
          return (pair as FetchOne).call(this, parser);
        }
        this[CANONICAL_ROWS] = true;
        return { before: decodeRow(parser, plan), after: decodeRow(parser, plan) };
      } satisfies FetchOne;
      return true;
    } catch {
      return false;
    }
  })();
  return installing;
}
