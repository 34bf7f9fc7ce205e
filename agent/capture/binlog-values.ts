// Binlog values (as the zongji decoder hands them over) → canonical values
// (apply/core/model.ts Value): the text a SELECT through apply/core/db.ts returns, after
// String() for numbers; Buffers for binary columns. Pure.
import type { Value } from '../../apply/core/model.js';
import type { ColumnInfo } from '../../apply/core/catalog.js';
import { FIXED_TEXT_TYPES, fixedText } from './fixed-text.js';
import { floatFormat } from '../../apply/core/float-text.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { time2Size, time2Text } from './time2.js';

/**
 * MariaDB's latin1 is Windows-1252 with the five unassigned bytes kept as the
 * C1 controls of the same number. Index: byte 0x80..0x9f.
 */
const LATIN1_HIGH = [
  0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
  0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
];

/** Bytes of a latin1 column (arriving as a one-char-per-byte string) → the text MariaDB returns for them. */
const CP1252_RANGE = /[\x80-\x9f]/;

export function decodeLatin1(bytesAsText: string): string {
  if (!CP1252_RANGE.test(bytesAsText)) return bytesAsText;
  let out = '';
  for (let i = 0; i < bytesAsText.length; i++) {
    const c = bytesAsText.charCodeAt(i);
    out += c >= 0x80 && c <= 0x9f ? String.fromCharCode(LATIN1_HIGH[c - 0x80]!) : bytesAsText[i];
  }
  return out;
}

/** Columns whose text the source hands over as raw bytes (one char per byte) for decodeLatin1. */
export function isRawLatin1(charset: string | null): boolean {
  return charset === 'latin1';
}

const INTEGER_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint']);

/** One column value from a binlog row image, canonical. */
export function canonicalValue(col: ColumnInfo | undefined, v: unknown): Value {
  if (v === null) return null;
  if (v === undefined) {
    // an ENUM holding the empty error value (index 0) has no label in the metadata
    return col?.dataType === 'enum' ? '' : null;
  }
  if (col === undefined) return generic(v);
  const t = col.dataType;
  if (typeof v === 'number') {
    if (t === 'float' || t === 'double') return floatFormat(t, col.columnType)(v);
    // zongji decodes YEAR 0000 as 1900, a year the type cannot hold
    if (t === 'year') return v === 1900 ? '0' : String(v);
    return String(v);
  }
  if (typeof v === 'string') {
    if (col.binary) return Buffer.from(v, 'latin1');
    if (isRawLatin1(col.charset) && !INTEGER_TYPES.has(t) && t !== 'enum' && t !== 'set') return decodeLatin1(v);
    return v;
  }
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v)) {
    if (t === 'time') return timeOf(col, v);
    // a copy: the decoder's Buffers are views of whole network packets
    const copy = Buffer.allocUnsafe(v.length);
    v.copy(copy);
    return copy;
  }
  return generic(v);
}

const converters = new WeakMap<ColumnInfo, (v: unknown) => Value>();

/**
 * canonicalValue for one column, with what depends on the column's type
 * worked out once (the hot path of capture: one call per column per row).
 */
export function valueConverter(col: ColumnInfo): (v: unknown) => Value {
  let f = converters.get(col);
  if (!f) {
    const t = col.dataType;
    if (t === 'float' || t === 'double') {
      const format = floatFormat(t, col.columnType);
      f = (v) => (typeof v === 'number' ? format(v) : canonicalValue(col, v));
    } else if (FIXED_TEXT_TYPES.has(t)) {
      // UUID/INET6/INET4: the server's text of the bytes (bytes of an unexpected length stay bytes)
      f = (v) => {
        if (!Buffer.isBuffer(v) && typeof v !== 'string') return canonicalValue(col, v);
        const bytes = Buffer.isBuffer(v) ? v : Buffer.from(v, 'latin1');
        return fixedText(t, bytes) ?? Buffer.from(bytes);
      };
    } else if (t === 'time') {
      f = (v) => (Buffer.isBuffer(v) ? timeOf(col, v) : canonicalValue(col, v));
    } else if (INTEGER_TYPES.has(t)) {
      f = (v) => (typeof v === 'number' ? String(v) : canonicalValue(col, v));
    } else {
      f = (v) => canonicalValue(col, v);
    }
    converters.set(col, f);
  }
  return f;
}

/** A TIME column's stored bytes (binlog-source.ts has the decoder hand them over), as text; never a guess. */
function timeOf(col: ColumnInfo, bytes: Buffer): Value {
  const fsp = Number(/^time\((\d)\)/.exec(col.columnType)?.[1] ?? 0);
  if (bytes.length !== time2Size(fsp)) {
    throw new SpokesyncError('SPOKESYNC_E_BINLOG_ROW', `a TIME value of column ${col.name} has ${bytes.length} bytes in the binlog, not the ${time2Size(fsp)} of ${col.columnType}: the table changed since its catalogue was read`);
  }
  return time2Text(bytes, 0, fsp);
}

function generic(v: unknown): Value {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  return JSON.stringify(v);
}

/** Equality of canonical values (Buffers by bytes). */
export function sameValue(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  if (typeof a === 'string' || typeof b === 'string') return false;
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (!Buffer.isBuffer(a) && !Buffer.isBuffer(b)) return a.ref === b.ref && a.id === b.id;
  return false;
}

/** Rough in-memory size of a value, for the memory budget. */
export function valueBytes(v: unknown): number {
  if (typeof v === 'string') return 16 + v.length * 2;
  if (Buffer.isBuffer(v)) return 64 + v.length;
  return 16;
}
