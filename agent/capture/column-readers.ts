// Readers of one column's value in a binlog row image, straight into its
// canonical value (apply/core/model.ts Value, exactly what binlog-values.ts
// makes of zongji's value for the same column), for the types decoded here:
// integers, YEAR, FLOAT/DOUBLE, CHAR/VARCHAR/TEXT in utf8 or latin1,
// BINARY/VARBINARY/BLOB, DATE, DATETIME, TIMESTAMP and TIME. Every read goes through
// a RowReader, which checks it against the end of the event.
import type { TableMapEntry } from '@vlasky/zongji';
import type { Value } from '../../apply/core/model.js';
import type { ColumnInfo } from '../../apply/core/catalog.js';
import { floatFormat } from '../../apply/core/float-text.js';
import { decodeLatin1 } from './binlog-values.js';
import type { RowReader } from './row-reader.js';
import { time2Size, time2Text } from './time2.js';

export type ColumnReader = (r: RowReader) => Value;

/** A column as the binlog's table map describes it (zongji's table map entry). */
export type BinlogColumn = NonNullable<TableMapEntry['columns']>[number] & { metadata?: Record<string, number> };

/** binlog column type codes (after zongji has put ENUM/SET in place of STRING) */
export const T = {
  TINY: 1, SHORT: 2, LONG: 3, FLOAT: 4, DOUBLE: 5, LONGLONG: 8, INT24: 9, DATE: 10, YEAR: 13,
  VARCHAR: 15, TIMESTAMP2: 17, DATETIME2: 18, TIME2: 19, BLOB: 252, STRING: 254,
} as const;

export const INT_TYPES: Record<number, string> = { [T.TINY]: 'tinyint', [T.SHORT]: 'smallint', [T.INT24]: 'mediumint', [T.LONG]: 'int', [T.LONGLONG]: 'bigint' };
const UTF8 = new Set(['utf8mb4', 'utf8mb3', 'utf8']);
export const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext']);
const BYTES_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

const FIXED_SIZE: Record<number, number> = {
  [T.TINY]: 1, [T.SHORT]: 2, [T.INT24]: 3, [T.LONG]: 4, [T.LONGLONG]: 8, [T.FLOAT]: 4, [T.DOUBLE]: 8, [T.DATE]: 3, [T.YEAR]: 1,
};

/** The size of a fixed-size value of a column columnReader() decodes; undefined for a length-prefixed one. */
export function fixedSize(c: BinlogColumn): number | undefined {
  if (c.type === T.TIME2) return time2Size(c.metadata?.decimals ?? 0);
  const fixed = FIXED_SIZE[c.type] ?? (c.type === T.DATETIME2 ? 5 : c.type === T.TIMESTAMP2 ? 4 : undefined);
  if (fixed === undefined) return undefined;
  return fixed + Math.ceil((c.type === T.DATETIME2 || c.type === T.TIMESTAMP2 ? c.metadata?.decimals ?? 0 : 0) / 2);
}

/** The length prefix's size of a value of a column columnReader() decodes (0: fixed size). */
export function prefixSize(c: BinlogColumn): number {
  if (fixedSize(c) !== undefined) return 0;
  const meta = c.metadata ?? {};
  return c.type === T.BLOB ? meta.length_size ?? 0 : (meta.max_length ?? 0) > 255 ? 2 : 1;
}

/** The reader of column `c` (the binlog's) holding values of `col` (the catalogue's); null when not decoded here. */
export function columnReader(c: BinlogColumn, col: ColumnInfo): ColumnReader | null {
  const t = col.dataType;
  const meta = c.metadata ?? {};
  if (INT_TYPES[c.type] !== undefined) return INT_TYPES[c.type] === t ? intReader(c.type, /\bunsigned\b/.test(col.columnType)) : null;
  switch (c.type) {
    case T.YEAR:
      return t === 'year' ? (r) => {
        const v = r.u8();
        // YEAR 0000 (binlog-values.ts: the decoder's 1900)
        return v === 0 ? '0' : String(1900 + v);
      } : null;
    case T.FLOAT:
    case T.DOUBLE: {
      const double = c.type === T.DOUBLE;
      if (t !== (double ? 'double' : 'float')) return null;
      const format = floatFormat(t, col.columnType);
      return double ? (r) => format(r.buf.readDoubleLE(r.take(8))) : (r) => format(r.buf.readFloatLE(r.take(4)));
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
      return (r) => text(r.length(3), 0, 0);
    }
    case T.DATETIME2: {
      if (t !== 'datetime') return null;
      const fraction = fractionReader(meta.decimals ?? 0);
      const text = lastText((hi, lo, frac) => {
        const ym = (hi >>> 14) & 0x1ffff;
        return `${pad4(Math.floor(ym / 13))}-${PAD2[ym % 13]!}-${PAD2[(lo >>> 17) & 31]!} ` +
          `${PAD2[(lo >>> 12) & 31]!}:${PAD2[(lo >>> 6) & 63]!}:${PAD2[lo & 63]!}${fraction ? fraction.text(frac) : ''}`;
      });
      return (r) => {
        const p = r.take(5);
        const b = r.buf;
        return text(b.readUInt32BE(p), b.readUInt32BE(p + 1), fraction ? fraction.raw(r) : 0);
      };
    }
    case T.TIME2: {
      if (t !== 'time') return null;
      const fsp = meta.decimals ?? 0;
      if (!(fsp >= 0 && fsp <= 6)) return null;
      const size = time2Size(fsp);
      return (r) => time2Text(r.buf, r.take(size), fsp);
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
      return (r) => {
        const seconds = r.buf.readUInt32BE(r.take(4));
        return text(seconds, fraction ? fraction.raw(r) : 0, 0);
      };
    }
    default:
      return null;
  }
}

function intReader(type: number, unsigned: boolean): ColumnReader {
  switch (type) {
    case T.TINY:
      return unsigned ? (r) => String(r.u8()) : (r) => String(r.buf.readInt8(r.take(1)));
    case T.SHORT:
      return unsigned ? (r) => String(r.length(2)) : (r) => String(r.buf.readInt16LE(r.take(2)));
    case T.INT24:
      return unsigned ? (r) => String(r.length(3)) : (r) => String(r.buf.readIntLE(r.take(3), 3));
    case T.LONG:
      return unsigned ? (r) => String(r.buf.readUInt32LE(r.take(4))) : (r) => String(r.buf.readInt32LE(r.take(4)));
    default:
      return (r) => {
        const start = r.take(8);
        const b = r.buf;
        const lo = b.readUInt32LE(start);
        const hi = unsigned ? b.readUInt32LE(start + 4) : b.readInt32LE(start + 4);
        // exact as a double below 2^53 in magnitude; beyond, as a bigint
        if (hi < 0x200000 && hi >= -0x200000) return String(hi * 0x100000000 + lo);
        return (unsigned ? b.readBigUInt64LE(start) : b.readBigInt64LE(start)).toString();
      };
  }
}

/** A length-prefixed value: text in the column's character set, or bytes (BINARY(n) padded to n, as the server returns it). */
function bytesReader(prefix: number, col: ColumnInfo): ColumnReader | null {
  if (col.binary) {
    if (!BYTES_TYPES.has(col.dataType)) return null;
    const width = col.dataType === 'binary' ? Number(/\((\d+)\)/.exec(col.columnType)?.[1] ?? NaN) : 0;
    if (Number.isNaN(width)) return null;
    return (r) => {
      const n = r.length(prefix);
      const at = r.take(n);
      const out = Buffer.alloc(Math.max(n, width));
      r.buf.copy(out, 0, at, at + n);
      return out;
    };
  }
  if (!TEXT_TYPES.has(col.dataType)) return null;
  if (col.charset !== null && UTF8.has(col.charset)) {
    return (r) => {
      const n = r.length(prefix);
      const at = r.take(n);
      return r.buf.toString('utf8', at, at + n);
    };
  }
  if (col.charset === 'latin1') {
    return (r) => {
      const n = r.length(prefix);
      const at = r.take(n);
      return decodeLatin1(r.buf.toString('latin1', at, at + n));
    };
  }
  return null;
}

/** The fractional seconds of a DATETIME/TIMESTAMP of `digits` digits: read (as stored), and written as '.ddd'; null without any. */
function fractionReader(digits: number): { raw: (r: RowReader) => number; text: (raw: number) => string } | null {
  if (digits <= 0) return null;
  const size = Math.ceil(digits / 2);
  const odd = digits % 2 !== 0;
  return {
    raw: (r) => r.buf.readUIntBE(r.take(size), size),
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
