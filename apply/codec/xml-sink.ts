// The one writer of the wire format's bytes (see apply/FORMAT.md): a sink the
// change set is written into as UTF-8, and the writers of its pieces (the
// change set's opening, an insert's opening, one column element) with the
// decisions how each value goes (as it is, escaped, or base64). Both the
// general encoder (encode.ts) and capture's short way for inserts write
// through here, so the two cannot differ.
import type { Value } from '../core/model.js';
import { COMMIT_TIME, NODE_ID, escapeText, hasLoneSurrogate, isUint64, isXmlSafe, nameAttr, xmlError } from './xml-text.js';

/** Bytes of the first chunk of a sink unless told. */
const CHUNK = 1 << 20;

/**
 * Change sets written as bytes, one after the other into a chunk of memory;
 * each one taken is a view of the chunk, not a copy. Strings go in as UTF-8,
 * by a plain loop while they are ASCII (most pieces are short: a loop beats a
 * call into the runtime). Building bytes, not one string of many pieces,
 * leaves nothing to join and nothing to convert.
 */
export class XmlSink {
  /** the chunk being written: change sets taken so far, then [base, n), the one being written */
  private buf: Buffer;
  private base = 0;
  private n = 0;

  constructor(private readonly chunk = CHUNK) {
    this.buf = Buffer.allocUnsafe(chunk);
  }

  /** bytes of the change set being written */
  get length(): number {
    return this.n - this.base;
  }

  /** Adds up to five strings (fixed arguments: a rest parameter would allocate an array per call). */
  push(a: string, b?: string, c?: string, d?: string, e?: string): void {
    this.str(a);
    if (b === undefined) return;
    this.str(b);
    if (c === undefined) return;
    this.str(c);
    if (d === undefined) return;
    this.str(d);
    if (e !== undefined) this.str(e);
  }

  /** Adds `s` as UTF-8. */
  str(s: string): void {
    const len = s.length;
    if (this.n + 3 * len > this.buf.length) this.grow(3 * len);
    const buf = this.buf;
    let n = this.n;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        // (from the start of s again: what the loop wrote is overwritten)
        this.n += buf.write(s, this.n, 'utf8');
        return;
      }
      buf[n++] = c;
    }
    this.n = n;
  }

  /** Adds the decimal text of an integer of at most 32 bits, as String() writes it. */
  int(v: number): void {
    if (this.n + 11 > this.buf.length) this.grow(11);
    if (v < 0) {
      this.buf[this.n++] = 0x2d;
      v = -v;
    }
    // (digits counted by a loop: a chain of comparisons would send optimized code back to the interpreter each time a longer number first comes)
    let len = 1;
    for (let m = v; m >= 10; m = (m / 10) >>> 0) len++;
    const buf = this.buf;
    const start = this.n;
    let end = start + len;
    this.n = end;
    while (end > start) {
      // (v < 2^32: the division truncated by >>> 0 is its floor)
      const q = (v / 10) >>> 0;
      buf[--end] = 0x30 + v - 10 * q;
      v = q;
    }
  }

  /** Adds `b`, bytes of a piece that is written often (a column's opening tag). */
  piece(b: Uint8Array): void {
    const len = b.length;
    if (this.n + len > this.buf.length) this.grow(len);
    const buf = this.buf;
    let n = this.n;
    if (len > 8) {
      // (TypedArray set: one call, however long; a loop costs a few ns a byte)
      buf.set(b, n);
      this.n = n + len;
      return;
    }
    for (let i = 0; i < len; i++) buf[n++] = b[i]!;
    this.n = n;
  }

  /** Adds src[start, end) as it is. */
  bytes(src: Buffer, start: number, end: number): void {
    const len = end - start;
    if (this.n + len > this.buf.length) this.grow(len);
    if (len > 24) {
      src.copy(this.buf, this.n, start, end);
      this.n += len;
      return;
    }
    const buf = this.buf;
    let n = this.n;
    for (let i = start; i < end; i++) buf[n++] = src[i]!;
    this.n = n;
  }

  /** A copy of the change set's bytes from `from` on (its own memory: what is written here later does not change it). */
  copy(from: number): Uint8Array {
    // (a Uint8Array made from a view copies it; Buffer's slice() would be a view)
    return new Uint8Array(this.buf.subarray(this.base + from, this.n));
  }

  /** Back to `len` bytes of the change set being written (what was added since is dropped). */
  truncate(len: number): void {
    this.n = this.base + len;
  }

  /**
   * The change set written, and the next one begins. Its bytes stay where
   * they were written (a view of the chunk, not a copy): the chunk is never
   * written there again, and lives as long as a change set taken from it.
   */
  take(): Buffer {
    const out = this.buf.subarray(this.base, this.n);
    this.base = this.n;
    return out;
  }

  /** A new chunk, the change set being written moved to its start. */
  private grow(extra: number): void {
    const len = this.n - this.base;
    const next = Buffer.allocUnsafe(Math.max(this.chunk, 2 * (len + extra)));
    this.buf.copy(next, 0, this.base, this.n);
    this.buf = next;
    this.base = 0;
    this.n = len;
  }
}

/** Characters that need neither escaping nor base64 in element text: one test settles most values. */
export const NOT_PLAIN = /[^\t\n\x20-\x25\x27-\x3b\x3d\x3f-\uD7FF\uE000-\uFFFD]/;
/** The same in an attribute value (where '>' needs nothing, '"', tab and LF do). */
export const NOT_PLAIN_ATTR = /[^\x20\x21\x23-\x25\x27-\x3b\x3d-\uD7FF\uE000-\uFFFD]/;

/** `<cs ...>`: the change set's opening, its fields checked (an error names the one that is wrong). */
export function changeSetOpen(id: unknown, origin: unknown, hlc: unknown, time: unknown): string {
  if (typeof origin !== 'string' || !NODE_ID.test(origin)) throw xmlError('cannot encode change set: origin is not a node id ([a-z0-9-]+)');
  if (typeof hlc !== 'string' || !isUint64(hlc)) throw xmlError('cannot encode change set: hlc is not a decimal uint64');
  if (typeof time !== 'string' || !COMMIT_TIME.test(time)) throw xmlError("cannot encode change set: time is not 'YYYY-MM-DDTHH:MM:SSZ'");
  // the id is left out when it is the usual `${origin}:${hlc}` (decode restores it)
  let s = '<cs';
  if (id !== `${origin}:${hlc}`) {
    if (typeof id !== 'string') throw xmlError('cannot encode change set id: not a string');
    s += nameAttr('id', 'I', id, 'change set id');
  }
  return `${s} o="${origin}" h="${hlc}" t="${time}">`;
}

/** An insert's table, as its opening begins: `<i t="table"`, and that with ` k="` as UTF-8. */
export interface InsertHead {
  readonly open: string;
  readonly openK: Uint8Array;
}

export function insertHead(table: string): InsertHead {
  const open = `<i${nameAttr('t', 'T', table, 'table name')}`;
  return { open, openK: utf8(`${open} k="`) };
}

/** ` u="name` and `" u="name` as UTF-8: the column named in u= (a LIST_NAME: nothing to escape). */
export type UAttr = readonly [Uint8Array, Uint8Array];

export function uAttr(name: string): UAttr {
  return [utf8(` u="${name}`), utf8(`" u="${name}`)];
}

/**
 * The opening of an <i> element: table, identity (`idBytes`: its bytes at
 * [from, end), ASCII that needs no escaping in an attribute; null: written
 * from `id`), the column named in u=, the NULL columns listed in z=. Closed at
 * once when `empty` (false: nothing else goes in); else open for the column
 * elements (true).
 */
export function insertOpen(out: XmlSink, head: InsertHead, id: string, idBytes: Buffer | null, from: number, end: number,
  same: UAttr | undefined, nulls: string, empty: boolean): boolean {
  let quote: boolean;
  if (idBytes) {
    out.piece(head.openK);
    out.bytes(idBytes, from, end);
    quote = true;
  } else if (NOT_PLAIN_ATTR.test(id)) {
    out.push(head.open, nameAttr('k', 'K', id, 'identity'));
    quote = false;
  } else {
    out.piece(head.openK);
    out.str(id);
    quote = true;
  }
  if (same) {
    out.piece(same[quote ? 1 : 0]);
    quote = true;
  }
  if (nulls !== '') {
    out.push(quote ? '" z="' : ' z="', nulls);
    quote = true;
  }
  out.push(empty ? (quote ? '"/>' : '/>') : (quote ? '">' : '>'));
  return !empty;
}

/**
 * A column element of text `v` (a value, or a referenced row's identity):
 * `open` is `<c n="name"` (with ` r="table"` for a reference), `openGt` the
 * same with its '>', `close` `</c>`.
 */
export function textElement(out: XmlSink, open: string, openGt: string, close: string, v: string): void {
  if (v === '') out.push(open, '/>');
  else if (!NOT_PLAIN.test(v)) out.push(openGt, v, close);
  else if (isXmlSafe(v)) out.push(openGt, escapeText(v), close);
  else out.push(open, unsafeText(v), close);
}

export function nullElement(out: XmlSink, open: string): void {
  out.push(open, ' z="1"/>');
}

export function binaryElement(out: XmlSink, open: string, close: string, v: Buffer): void {
  if (v.length === 0) out.push(open, ' e="b"/>');
  else out.push(open, ' e="b">', v.toString('base64'), close);
}

/** A column element of any value; false when `v` is not one (a string, bytes, a reference or null). */
export function valueElement(out: XmlSink, tag: string, name: string, v: Value): boolean {
  const open = `<${tag}${name}`;
  if (typeof v === 'string') textElement(out, open, `${open}>`, `</${tag}>`, v);
  else if (v === null) nullElement(out, open);
  else if (Buffer.isBuffer(v)) binaryElement(out, open, `</${tag}>`, v);
  else if (typeof v === 'object' && typeof v.ref === 'string' && typeof v.id === 'string') {
    const withRef = open + nameAttr('r', 'R', v.ref, 'referenced table name');
    textElement(out, withRef, `${withRef}>`, `</${tag}>`, v.id);
  } else return false;
  return true;
}

/** ` e="u">base64` (UTF-8), or ` e="w">base64` (UTF-16LE) when lone surrogates make UTF-8 lossy. */
function unsafeText(s: string): string {
  if (hasLoneSurrogate(s)) return ` e="w">${Buffer.from(s, 'utf16le').toString('base64')}`;
  return ` e="u">${Buffer.from(s, 'utf8').toString('base64')}`;
}

export function utf8(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'utf8'));
}
