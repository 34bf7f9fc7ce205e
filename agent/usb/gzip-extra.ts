// The gzip header's optional extra field (RFC 1952 FEXTRA) of USB files: what
// travels beside the batch (discard reports "SD", status reports "SR") rides
// in its subfields, which every gunzip skips, so a reader that does not know a
// subfield reads the batch as before. Inside the sealed file: authenticated.
import { usbError } from './usb-file.js';

/** XLEN is 16 bits: all subfields, with their 4-byte headers, fit in this. */
export const MAX_EXTRA = 65535;
/** the id (2 bytes) and length (2 bytes) before each subfield's data */
export const SUBFIELD_HEAD = 4;
const GZIP_HEAD = 10;
const FEXTRA = 0x04;

/** One subfield: its two-letter id and its data. */
export type Subfield = readonly [id: string, data: Buffer];

/** Passes a gzip stream through with `subs` in the first member's header (unchanged when there are none). */
export async function* withExtra(gzip: AsyncIterable<Buffer>, subs: readonly Subfield[]): AsyncGenerator<Buffer> {
  if (subs.length === 0) {
    yield* gzip;
    return;
  }
  const body = Buffer.concat(subs.flatMap(([id, data]) => {
    if (!/^[A-Z]{2}$/.test(id) || data.length > MAX_EXTRA - SUBFIELD_HEAD) throw usbError(`the ${id} field is too large for the gzip header`);
    const head = Buffer.alloc(SUBFIELD_HEAD);
    head.write(id, 0, 'ascii');
    head.writeUInt16LE(data.length, 2);
    return [head, data];
  }));
  if (body.length > MAX_EXTRA) throw usbError('the fields beside the batch are too large for the gzip header');
  let head: Buffer | null = Buffer.alloc(0);
  for await (const chunk of gzip) {
    if (head === null) {
      yield chunk;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    if (head.length < GZIP_HEAD) continue;
    // zlib writes a bare header (no optional fields), so the extra field goes right after its 10 bytes
    if (head[0] !== 0x1f || head[1] !== 0x8b || head[3] !== 0) throw usbError('unexpected gzip header while writing the file');
    const xlen = Buffer.alloc(2);
    xlen.writeUInt16LE(body.length, 0);
    const first = Buffer.from(head.subarray(0, GZIP_HEAD));
    first[3] = FEXTRA;
    yield Buffer.concat([first, xlen, body, head.subarray(GZIP_HEAD)]);
    head = null;
  }
  if (head !== null) throw usbError('the gzip stream ended inside its header while writing the file');
}

/**
 * Reads the subfields from the start of a gzip stream, fed chunk by chunk
 * (push); once the header has gone by, `get(id)` gives a subfield's data.
 */
export class ExtraReader {
  private buf = Buffer.alloc(0);
  private subs: Map<string, Buffer> | null = null;

  push(chunk: Buffer): void {
    if (this.subs) return;
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.buf.length < GZIP_HEAD) return;
    if (((this.buf[3] ?? 0) & FEXTRA) === 0) return this.finish(new Map());
    if (this.buf.length < GZIP_HEAD + 2) return;
    const xlen = this.buf.readUInt16LE(GZIP_HEAD);
    if (this.buf.length < GZIP_HEAD + 2 + xlen) return;
    const extra = this.buf.subarray(GZIP_HEAD + 2, GZIP_HEAD + 2 + xlen);
    const subs = new Map<string, Buffer>();
    for (let at = 0; at + SUBFIELD_HEAD <= extra.length;) {
      const len = extra.readUInt16LE(at + 2);
      if (at + SUBFIELD_HEAD + len > extra.length) break;
      const id = extra.subarray(at, at + 2).toString('latin1');
      // the first of an id counts
      if (!subs.has(id)) subs.set(id, Buffer.from(extra.subarray(at + SUBFIELD_HEAD, at + SUBFIELD_HEAD + len)));
      at += SUBFIELD_HEAD + len;
    }
    this.finish(subs);
  }

  /** a subfield's data; null when the header carried none with that id, or has not been read */
  get(id: string): Buffer | null {
    return this.subs?.get(id) ?? null;
  }

  private finish(subs: Map<string, Buffer>): void {
    this.subs = subs;
    this.buf = Buffer.alloc(0);
  }
}
