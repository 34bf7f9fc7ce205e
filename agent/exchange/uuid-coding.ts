// The `spokesync-ubr` content coding: brotli over a batch whose UUIDs are
// packed. Random UUIDs are most of what does not compress in a batch, and each
// one recurs (the row's identity, its uuid column, every reference to it), which
// breaks the compressor's matches. Here each canonical lower-case UUID in the
// text becomes a two-byte marker: a reference to one of the 64 most recently
// seen UUIDs, or "next literal"; the literals (16 bytes each) follow the text,
// so the text is regular and the random bytes sit apart. Lossless for any input.
// Pure; measured in test/bench/exchange.ts.
//
//   u32:textLength  text  literal[16]*
//   text: bytes; 0x01 0x01 = a 0x01 byte; 0x01 0x02 = the next literal;
//         0x01 (0x20 + i) = the UUID at index i of the recency list (0 ≤ i < 64)
import { SpokesyncError } from '../../apply/core/errors.js';
import { BoundedOutput } from './out-buffer.js';

const ESC = 0x01;
const LITERAL = 0x02;
const REF = 0x20;
const RECENT = 64;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

function badCoding(what: string): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_XML', `the body is not valid spokesync-ubr (${what})`);
}

/** Moves `i` to the front of the list. */
function touch(list: string[], i: number): void {
  const u = list[i]!;
  list.splice(i, 1);
  list.unshift(u);
}

export function packUuids(input: Buffer): Buffer {
  const text = input.toString('latin1'); // byte-preserving; UUIDs are ASCII
  const out: Buffer[] = [Buffer.alloc(4)];
  const literals: Buffer[] = [];
  const recent: string[] = [];
  let last = 0;
  const plain = (s: string): void => {
    if (s.length > 0) out.push(Buffer.from(s.split('\x01').join('\x01\x01'), 'latin1'));
  };
  for (const m of text.matchAll(UUID)) {
    const u = m[0];
    plain(text.slice(last, m.index));
    last = m.index + u.length;
    const i = recent.indexOf(u);
    if (i >= 0) {
      touch(recent, i);
      out.push(Buffer.from([ESC, REF + i]));
    } else {
      recent.unshift(u);
      if (recent.length > RECENT) recent.pop();
      out.push(Buffer.from([ESC, LITERAL]));
      literals.push(Buffer.from(u.replace(/-/g, ''), 'hex'));
    }
  }
  plain(text.slice(last));
  const body = Buffer.concat(out);
  body.writeUInt32BE(body.length - 4, 0);
  return Buffer.concat([body, ...literals]);
}

/** The original bytes; fails on malformed input or when the result would exceed maxBytes (nothing past it is allocated). */
export function unpackUuids(packed: Buffer, maxBytes: number): Buffer {
  if (packed.length < 4) throw badCoding('too short');
  const textEnd = 4 + packed.readUInt32BE(0);
  if (textEnd > packed.length || (packed.length - textEnd) % 16 !== 0) throw badCoding('bad lengths');
  const out = new BoundedOutput(maxBytes);
  const recent: string[] = [];
  let lit = textEnd;
  let from = 4;
  for (let i = packed.indexOf(ESC, 4); i !== -1 && i < textEnd; i = packed.indexOf(ESC, i + 1)) {
    if (i + 1 >= textEnd) throw badCoding('a marker is cut short');
    out.bytes(packed, from, i);
    const op = packed[i + 1];
    i++;
    from = i + 1;
    if (op === ESC) {
      out.byte(ESC);
    } else if (op === LITERAL) {
      if (lit + 16 > packed.length) throw badCoding('a literal is missing');
      const h = packed.toString('hex', lit, lit + 16);
      lit += 16;
      const u = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
      recent.unshift(u);
      if (recent.length > RECENT) recent.pop();
      out.latin1(u);
    } else if (op !== undefined && op >= REF && op < REF + RECENT && op - REF < recent.length) {
      const u = recent[op - REF]!;
      touch(recent, op - REF);
      out.latin1(u);
    } else {
      throw badCoding('bad marker');
    }
  }
  out.bytes(packed, from, textEnd);
  if (lit !== packed.length) throw badCoding('unused literals');
  return out.done();
}
