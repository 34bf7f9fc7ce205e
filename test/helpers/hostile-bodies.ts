// Small request bodies that claim or inflate to far more than a receiver
// accepts, in every content coding a spokesync parent takes. Each is a few
// hundred bytes to a few KiB on the wire.
import zlib from 'node:zlib';
import type { Encoding } from '../../agent/exchange/compression.js';

const brotli = (b: Buffer): Buffer => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } });

/** A ubr text of `n` references to the one UUID before them (18x on unpacking). */
function uuidRefs(n: number): Buffer {
  const text = Buffer.alloc(2 + 2 * n);
  text[0] = 0x01;
  text[1] = 0x02;
  for (let i = 2; i < text.length; i += 2) {
    text[i] = 0x01;
    text[i + 1] = 0x20;
  }
  const word = Buffer.alloc(4);
  word.writeUInt32BE(text.length);
  return Buffer.concat([word, text, Buffer.alloc(16, 0xab)]);
}

/** A vbr text that repeats one 64 KiB column value `n` times (back-references). */
function valueRefs(n: number): Buffer {
  const head = `<c n="x">${'v'.repeat(64 * 1024)}</c>`;
  const ref = '<c n="x">\x02\x03</c>';
  const text = Buffer.from(head + ref.repeat(n), 'latin1');
  const word = Buffer.alloc(4);
  word.writeUInt32BE(text.length);
  return Buffer.concat([word, text]);
}

/** The bodies as one file's content (a heap-limited process reads them instead of building them). */
export function packBodies(bodies: readonly HostileBody[]): string {
  return JSON.stringify(bodies.map((b) => ({ ...b, body: b.body.toString('base64') })));
}

export function unpackBodies(text: string): HostileBody[] {
  return (JSON.parse(text) as Array<HostileBody & { body: string }>).map((b) => ({ ...b, body: Buffer.from(b.body, 'base64') }));
}

export interface HostileBody {
  readonly name: string;
  readonly encoding: Encoding;
  readonly body: Buffer;
}

/** Bodies that each come to 64 MiB or more once inflated (or claim to). */
export function hostileBodies(): HostileBody[] {
  const zeros = Buffer.alloc(64 * 1024 * 1024);
  const xmlish = Buffer.from(`<batch xmlns="urn:spokesync:batch:1" v="1" from="a" to="b" seq="1" ack="0" more="0">${' '.repeat(64 * 1024 * 1024)}`);
  const claims = Buffer.alloc(20);
  claims.writeUInt32BE(0xfffffff0);
  return [
    { name: 'gzip of 64 MiB of zeros', encoding: 'gzip', body: zlib.gzipSync(zeros, { level: 9 }) },
    { name: 'br of 64 MiB of spaces', encoding: 'br', body: brotli(xmlish) },
    { name: 'ubr of 64 MiB of zeros', encoding: 'spokesync-ubr', body: brotli(zeros) },
    { name: 'ubr: 8M references to one UUID', encoding: 'spokesync-ubr', body: brotli(uuidRefs(8 * 1024 * 1024)) },
    { name: 'ubr that claims a 4 GiB text', encoding: 'spokesync-ubr', body: brotli(claims) },
    { name: 'vbr of 64 MiB of zeros', encoding: 'spokesync-vbr', body: brotli(zeros) },
    { name: 'vbr: 4,000 back-references to a 64 KiB value', encoding: 'spokesync-vbr', body: brotli(valueRefs(4000)) },
    { name: 'vbr: 8M references to one UUID', encoding: 'spokesync-vbr', body: brotli(uuidRefs(8 * 1024 * 1024)) },
  ];
}
