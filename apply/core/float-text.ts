// FLOAT and DOUBLE values as text that holds them exactly and that spokesync's
// own reads give for the same stored value.
//
// The binlog carries the exact IEEE-754 bits. Their text:
//   DOUBLE        the shortest text that reads back to the same double (what
//                 the server prints, and JavaScript's String());
//   FLOAT         the same of the float's exact value as a double (the server
//                 prints only 6 significant digits of a FLOAT, 16777215 as
//                 16777200, so spokesync reads FLOAT columns as CAST(c AS
//                 DOUBLE): see exactFloatRead);
//   FLOAT(M,D), DOUBLE(M,D)  exactly D decimals, as the server prints them
//                 (the server rounds such values to D decimals when storing).
// Rounding is to nearest, ties to even, on the exact binary value; JavaScript's
// toPrecision/toFixed round ties away from zero, so the digits are worked out
// exactly here. The result is then the number's canonical JavaScript text,
// which is what a SELECT through apply/core/db.ts gives after String().

interface Exact {
  readonly negative: boolean;
  /** decimal digits of the magnitude, without leading zeros ('0' for zero) */
  readonly digits: string;
  /** value = digits × 10^exp10 (exp10 ≤ 0) */
  readonly exp10: number;
}

const view = new DataView(new ArrayBuffer(8));

/** The exact decimal expansion of a finite double. */
export function exactDecimal(x: number): Exact {
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const negative = hi >>> 31 === 1;
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp2: number;
  if (biased === 0) {
    exp2 = -1074;
  } else {
    mantissa |= 1n << 52n;
    exp2 = biased - 1075;
  }
  if (mantissa === 0n) return { negative, digits: '0', exp10: 0 };
  if (exp2 >= 0) return { negative, digits: (mantissa << BigInt(exp2)).toString(), exp10: 0 };
  // m × 2^e = m × 5^-e × 10^e
  return { negative, digits: (mantissa * 5n ** BigInt(-exp2)).toString(), exp10: exp2 };
}

/** Keeps the first `keep` digits, rounding half to even; the dropped digits become zeros. */
function roundDigits(digits: string, keep: number): string {
  if (keep >= digits.length) return digits;
  if (keep < 0) return '0';
  const headText = digits.slice(0, keep);
  const head = headText === '' ? 0n : BigInt(headText);
  const rest = digits.slice(keep);
  const half = '5' + '0'.repeat(rest.length - 1);
  const up = rest > half || (rest === half && (head & 1n) === 1n);
  return (up ? head + 1n : head).toString() + '0'.repeat(rest.length);
}

function toNumberText(negative: boolean, digits: string, exp10: number): string {
  let text: string;
  if (exp10 === 0) {
    text = digits;
  } else {
    const padded = digits.padStart(-exp10 + 1, '0');
    const point = padded.length + exp10;
    text = `${padded.slice(0, point)}.${padded.slice(point)}`;
  }
  const n = Number(text);
  return String(negative && n !== 0 ? -n : n);
}

/** The value rounded to `decimals` places (ties to even), as canonical number text. */
export function formatFixed(x: number, decimals: number): string {
  if (!Number.isFinite(x)) return String(x);
  const e = exactDecimal(x);
  if (e.exp10 === 0 || -e.exp10 <= decimals) return toNumberText(e.negative, e.digits, e.exp10);
  const padded = e.digits.padStart(-e.exp10 + 1, '0');
  const keep = padded.length + e.exp10 + decimals;
  return toNumberText(e.negative, roundDigits(padded, keep), e.exp10);
}

/** FLOAT and DOUBLE from the binlog, exact (module comment). `columnType` is e.g. 'float', 'double(20,6)'. */
export function floatText(x: number, dataType: 'float' | 'double', columnType: string): string {
  return floatFormat(dataType, columnType)(x);
}

const formats = new Map<string, (x: number) => string>();

/** The formatter of a column type (one per type: the type is parsed once). */
export function floatFormat(dataType: 'float' | 'double', columnType: string): (x: number) => string {
  const key = `${dataType} ${columnType}`;
  let f = formats.get(key);
  if (!f) {
    const m = /\(\s*\d+\s*,\s*(\d+)\s*\)/.exec(columnType.toLowerCase());
    const decimals = m ? Number(m[1]) : -1;
    f = decimals >= 0 ? (x) => formatFixed(x, decimals) : String;
    formats.set(key, f);
  }
  return f;
}

/**
 * Whether a column is a FLOAT whose query text is not exact (no (M,D)): reads
 * select it as CAST(c AS DOUBLE), which gives the float's exact value.
 */
export function exactFloatRead(dataType: string, columnType: string): boolean {
  return dataType === 'float' && !/\(\s*\d+\s*,\s*\d+\s*\)/.test(columnType);
}

/** The SELECT expression of a column (`quoted`: its quoted name) that reads it exactly, without an alias. */
export function exactReadExpr(quoted: string, c: { readonly dataType: string; readonly columnType: string }): string {
  return exactFloatRead(c.dataType, c.columnType) ? `CAST(${quoted} AS DOUBLE)` : quoted;
}
