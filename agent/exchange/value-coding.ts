// The value layer of the `spokesync-vbr` content coding: runs before the UUIDs
// are packed (uuid-coding.ts) and brotli. Inside a batch a column's value is
// very often the one the same column had just before (date_created in every row
// of a registration, creator, country, voided), and entry numbers and HLC
// stamps grow by small steps. Here a repeated column value becomes a two-byte
// marker, and a number that grows becomes its step from the previous one.
// Lossless for any input, XML or not. Pure; tested and timed in
// test/unit/value-coding.test.ts. On 200 OpenMRS registrations, packed UUIDs
// and brotli 11 take 124.7 B per registration, 104.5 B with this layer first.
//
//   text: bytes; 0x02 0x02 = a 0x02 byte (0x01 is left to uuid-coding);
//         0x02 0x03 = a whole VALUE: the previous value of the column NAME;
//         0x02 0x04 D = whole DIGITS: the previous number of that kind plus D
//                       (decimal, no leading zero, > 0, at most 20 digits)
//
// Spans, found left to right by one regular expression over the bytes:
//   <c n="NAME"ATTRS>VALUE</c>   NAME = [^"<]+, ATTRS = [^<>]*, VALUE = [^<]*
//   <e seq="DIGITS"              an entry number   (DIGITS = [0-9]+)
//    h="DIGITS"                  an HLC stamp
// Every span updates state with its original text: a <c> span sets the
// previous value of NAME (whatever its ATTRS); a canonical number (no leading
// zero, at most 20 digits) sets the previous number of its kind. The encoder
// replaces a VALUE of 3 bytes or more equal to the previous value of NAME
// (shorter ones gain nothing), and a canonical number greater than the
// previous one of its kind.
//
// The decoder finds the same spans in the packed text: what the transform
// changes (a 0x02 byte; a VALUE, between `>` and `</c>`; DIGITS, between `="`
// and `"`) never holds a `<`, `>` or `"` in packed form, and no literal of a
// pattern holds 0x02. A match attempt cannot cross a `<` but through its own
// `</c>`, so an attempt that starts before a span and reaches into it can only
// cross an ` h=` span, through a class that accepts its DIGITS in both forms,
// up to the same `"`. Every class excludes `<`, so a scan is linear in the
// input, hostile or not.
import { SpokesyncError } from '../../apply/core/errors.js';
import { BoundedOutput } from './out-buffer.js';

const ESC = '\x02';
const SAME = '\x03';
const PLUS = '\x04';
const MIN_REPLACED = 3;
const MAX_DIGITS = 20;
const SPAN = /<c n="([^"<]+)"([^<>]*)>([^<]*)<\/c>|<e seq="(\d+)"| h="(\d+)"/g;
const STEP = `(?:${ESC}${PLUS})?`; // the packed form of DIGITS may start with a step marker
const PACKED_SPAN = new RegExp(`<c n="([^"<]+)"([^<>]*)>([^<]*)</c>|<e seq="(${STEP}\\d+)"| h="(${STEP}\\d+)"`, 'g');
const CANONICAL = /^(?:0|[1-9]\d*)$/;
const DELTA = /^[1-9]\d*$/;

function badCoding(what: string): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_XML', `the body is not valid spokesync-vbr (${what})`);
}

function escape(s: string): string {
  return s.includes(ESC) ? s.replaceAll(ESC, ESC + ESC) : s;
}

function unescape(s: string): string {
  let i = s.indexOf(ESC);
  if (i === -1) return s;
  const parts: string[] = [];
  let from = 0;
  for (; i !== -1; i = s.indexOf(ESC, from)) {
    if (i + 1 === s.length) throw badCoding('a marker is cut short');
    if (s[i + 1] !== ESC) throw badCoding('bad marker');
    parts.push(s.slice(from, i + 1));
    from = i + 2;
  }
  parts.push(s.slice(from));
  return parts.join('');
}

/** The number `digits` stands for, when it updates the previous number of its kind. */
function canonical(digits: string): bigint | undefined {
  return digits.length <= MAX_DIGITS && CANONICAL.test(digits) ? BigInt(digits) : undefined;
}

/** Previous numbers, by kind: 0 = entry seq, 1 = HLC stamp. */
type Numbers = [bigint | undefined, bigint | undefined];

// Both directions copy the text between changes in one piece (escaped or
// unescaped as a whole: no 0x02 pair ends next to a span's value or digits,
// which follow `>` or `"`), and rebuild only what is replaced.

export function packValues(input: Buffer): Buffer {
  const text = input.toString('latin1'); // byte-preserving; the delimiters are ASCII
  const out: string[] = [];
  const columns = new Map<string, string>();
  const numbers: Numbers = [undefined, undefined];
  const re = new RegExp(SPAN.source, 'g');
  let copied = 0;
  const replace = (from: number, to: number, marker: string): void => {
    out.push(escape(text.slice(copied, from)), marker);
    copied = to;
  };
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const [, name, , value, seq, h] = m;
    if (name !== undefined && value !== undefined) {
      if (value.length >= MIN_REPLACED && columns.get(name) === value) {
        const end = re.lastIndex - 4; // before </c>
        replace(end - value.length, end, ESC + SAME);
      } else {
        columns.set(name, value);
      }
    } else {
      const kind = seq !== undefined ? 0 : 1;
      const digits = (seq ?? h)!;
      const n = canonical(digits);
      if (n === undefined) continue;
      const prev = numbers[kind];
      numbers[kind] = n;
      if (prev !== undefined && n > prev) {
        const end = re.lastIndex - 1; // before the closing quote
        replace(end - digits.length, end, ESC + PLUS + String(n - prev));
      }
    }
  }
  out.push(escape(text.slice(copied)));
  return Buffer.from(out.join(''), 'latin1');
}

/** The original bytes; fails on malformed input or when the result would exceed maxBytes (nothing past it is allocated). */
export function unpackValues(packed: Buffer, maxBytes: number): Buffer {
  const text = packed.toString('latin1');
  const out = new BoundedOutput(maxBytes);
  const columns = new Map<string, string>();
  const numbers: Numbers = [undefined, undefined];
  const re = new RegExp(PACKED_SPAN.source, 'g');
  let copied = 0;
  const replace = (from: number, to: number, original: string): void => {
    out.latin1(unescape(text.slice(copied, from)));
    out.latin1(original);
    copied = to;
  };
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const [, pname, , pvalue, seq, h] = m;
    if (pname !== undefined && pvalue !== undefined) {
      const name = unescape(pname);
      if (pvalue === ESC + SAME) {
        const prev = columns.get(name);
        if (prev === undefined) throw badCoding('a repeated value has no previous value');
        const end = re.lastIndex - 4; // before </c>
        replace(end - 2, end, prev);
      } else {
        columns.set(name, unescape(pvalue));
      }
    } else {
      const kind = seq !== undefined ? 0 : 1;
      const coded = (seq ?? h)!;
      if (coded.startsWith(ESC)) {
        const delta = coded.slice(2);
        const prev = numbers[kind];
        if (prev === undefined) throw badCoding('a number step has no previous number');
        if (delta.length > MAX_DIGITS || !DELTA.test(delta)) throw badCoding('bad number step');
        const n = prev + BigInt(delta);
        const digits = String(n);
        if (digits.length > MAX_DIGITS) throw badCoding('a number step is too large');
        numbers[kind] = n;
        const end = re.lastIndex - 1; // before the closing quote
        replace(end - coded.length, end, digits);
      } else {
        const n = canonical(coded);
        if (n !== undefined) numbers[kind] = n;
      }
    }
  }
  out.latin1(unescape(text.slice(copied)));
  return out.done();
}
