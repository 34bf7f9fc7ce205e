// The USB file: a batch, gzipped, then encrypted and authenticated in chunks
// of AES-256-GCM. The key comes from HKDF-SHA256 over the secret the two peers
// share (the child's token), a random salt per file, and the direction
// sender→receiver. The header (magic, version, sender, receiver, salt, chunk
// size) is authenticated with every chunk; each chunk's nonce is its index and
// the last chunk is marked final, so reordering, truncation and trailing bytes
// all fail. Pure over byte streams; files are opened in transfer.ts.
//
//   "SPOKESYNC-USB" u8:version u8:len sender u8:len receiver salt[32] u32:chunkSize
//   repeated: u32:(final<<31 | length) ciphertext[length] tag[16]   (length ≤ chunkSize)
//
// Snapshot files (provisioning) use the same layout with the magic
// "SPOKESYNC-SNAPSHOT" and "snapshot" in place of "usb" in the HKDF info: the
// kind of payload is bound into the key and into every chunk's AAD, so a USB
// batch file never opens as a snapshot file, nor the other way round, even
// between the same two peers.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { SpokesyncError } from '../../apply/core/errors.js';

export const MAGIC = Buffer.from('SPOKESYNC-USB', 'ascii');
export const VERSION = 1;
export const SALT_BYTES = 32;
const TAG_BYTES = 16;
export const DEFAULT_CHUNK = 64 * 1024;
const MAX_CHUNK = 4 * 1024 * 1024;
const NODE_ID = /^[a-z0-9-]{1,64}$/;

/** What a sealed file carries: its magic, its HKDF label, and how its errors read. */
export interface FileKind {
  readonly magic: Buffer;
  /** word in the HKDF info: `spokesync <label> v1 sender>receiver` */
  readonly label: string;
  /** for messages: "a spokesync <name>" */
  readonly name: string;
  /** what to do with a file of this kind, for a file of another kind given by mistake */
  readonly use: string;
  error(message: string, cause?: unknown): SpokesyncError;
}

export function usbError(message: string, cause?: unknown): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_USB_FILE', message, cause === undefined ? undefined : { cause });
}

/** A batch of change sets for `spokesync import` (the default kind). */
export const USB_FILE: FileKind = {
  magic: MAGIC, label: 'usb', name: 'USB file', use: 'import it with `spokesync import --in FILE`', error: usbError,
};

/** A snapshot of the application schema for `spokesync clone --from`. */
export const SNAPSHOT_FILE: FileKind = {
  magic: Buffer.from('SPOKESYNC-SNAPSHOT', 'ascii'),
  label: 'snapshot',
  name: 'snapshot file',
  use: 'load it on the new child with `spokesync clone --from FILE`',
  error: (message, cause) => new SpokesyncError('SPOKESYNC_E_SNAPSHOT', message, {
    ...(cause === undefined ? {} : { cause }),
    fix: 'Check that parent.token on this node is the token the parent lists for it under children: a snapshot file ' +
      'opens only with that token. Otherwise the file was damaged, cut short or changed: make a new one on the parent ' +
      'with `spokesync snapshot --peer <this node> --out FILE`.',
  }),
};

const KINDS: readonly FileKind[] = [USB_FILE, SNAPSHOT_FILE];

export interface UsbHeader {
  readonly sender: string;
  readonly receiver: string;
  readonly salt: Buffer;
  readonly chunkSize: number;
}

export function encodeHeader(h: UsbHeader, kind: FileKind = USB_FILE): Buffer {
  if (!NODE_ID.test(h.sender) || !NODE_ID.test(h.receiver)) throw kind.error('sender and receiver must be node ids');
  if (h.salt.length !== SALT_BYTES) throw kind.error('the salt must be 32 bytes');
  const size = Buffer.alloc(4);
  size.writeUInt32BE(h.chunkSize);
  return Buffer.concat([
    kind.magic, Buffer.from([VERSION, h.sender.length]), Buffer.from(h.sender, 'ascii'),
    Buffer.from([h.receiver.length]), Buffer.from(h.receiver, 'ascii'), h.salt, size,
  ]);
}

/** The file key for one direction between two peers. */
export function deriveKey(secret: string, h: Pick<UsbHeader, 'sender' | 'receiver' | 'salt'>, kind: FileKind = USB_FILE): Buffer {
  const info = Buffer.from(`spokesync ${kind.label} v${VERSION} ${h.sender}>${h.receiver}`, 'ascii');
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), h.salt, info, 32));
}

function nonce(index: bigint): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(index, 4);
  return n;
}

function chunkAad(header: Buffer, index: bigint, final: boolean): Buffer {
  const tail = Buffer.alloc(9);
  tail.writeBigUInt64BE(index, 0);
  tail[8] = final ? 1 : 0;
  return Buffer.concat([header, tail]);
}

function sealChunk(key: Buffer, header: Buffer, index: bigint, final: boolean, plain: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonce(index), { authTagLength: TAG_BYTES });
  c.setAAD(chunkAad(header, index, final));
  const body = Buffer.concat([c.update(plain), c.final()]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE((final ? 0x80000000 : 0) + body.length);
  return Buffer.concat([len, body, c.getAuthTag()]);
}

/** Encrypts a byte stream into the file format (header first). */
export async function* seal(
  source: AsyncIterable<Buffer>,
  opts: { sender: string; receiver: string; secret: string; chunkSize?: number; salt?: Buffer; kind?: FileKind },
): AsyncGenerator<Buffer> {
  const kind = opts.kind ?? USB_FILE;
  const h: UsbHeader = {
    sender: opts.sender,
    receiver: opts.receiver,
    salt: opts.salt ?? randomBytes(SALT_BYTES),
    chunkSize: opts.chunkSize ?? DEFAULT_CHUNK,
  };
  const header = encodeHeader(h, kind);
  const key = deriveKey(opts.secret, h, kind);
  yield header;
  let index = 0n;
  let held: Buffer = Buffer.alloc(0);
  for await (const chunk of source) {
    held = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
    // keep at least one byte back so the final chunk is never empty when data exists
    while (held.length > h.chunkSize) {
      yield sealChunk(key, header, index++, false, held.subarray(0, h.chunkSize));
      held = held.subarray(h.chunkSize);
    }
  }
  yield sealChunk(key, header, index, true, held);
}

/** Reads exact byte counts from a chunked stream. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}
  async read(n: number): Promise<Buffer | null> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    }
    if (this.buf.length < n) return null;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  async atEnd(): Promise<boolean> {
    return (await this.read(1)) === null;
  }
}

async function need(r: ByteReader, n: number, what: string, kind: FileKind): Promise<Buffer> {
  const b = await r.read(n);
  if (b === null) throw kind.error(`the file ends inside the ${what}: it is truncated`);
  return b;
}

/** The error for a file that does not start with `kind`'s magic, naming what it is when that is known. */
function notThisKind(start: Buffer, kind: FileKind): SpokesyncError {
  const other = KINDS.find((k) => k !== kind && start.length > 0 && k.magic.subarray(0, start.length).equals(start.subarray(0, k.magic.length)));
  if (other) return kind.error(`this is a spokesync ${other.name}, not a ${kind.name}: ${other.use}`);
  if (start[0] === 0x1f && start[1] === 0x8b) return kind.error(`this is a plain gzip file, not a sealed spokesync ${kind.name}`);
  return kind.error(`this is not a spokesync ${kind.name}`);
}

async function readHeader(r: ByteReader, kind: FileKind): Promise<{ header: UsbHeader; raw: Buffer }> {
  const magic = await r.read(kind.magic.length);
  if (magic === null || !magic.equals(kind.magic)) throw notThisKind(magic ?? Buffer.alloc(0), kind);
  const [version, senderLen] = await need(r, 2, 'header', kind);
  if (version !== VERSION) throw kind.error(`unsupported ${kind.name} version ${String(version)}`);
  const sender = (await need(r, senderLen ?? 0, 'header', kind)).toString('ascii');
  const receiverLen = (await need(r, 1, 'header', kind))[0] ?? 0;
  const receiver = (await need(r, receiverLen, 'header', kind)).toString('ascii');
  const salt = Buffer.from(await need(r, SALT_BYTES, 'header', kind));
  const chunkSize = (await need(r, 4, 'header', kind)).readUInt32BE(0);
  if (!NODE_ID.test(sender) || !NODE_ID.test(receiver)) throw kind.error('the file header is damaged');
  if (chunkSize < 1 || chunkSize > MAX_CHUNK) throw kind.error('the file header is damaged');
  const header = { sender, receiver, salt, chunkSize };
  return { header, raw: encodeHeader(header, kind) };
}

/**
 * Decrypts a file stream. `secretFor` sees the (not yet authenticated) header
 * and returns the shared secret, or throws when the sender or receiver is not
 * a peer of this node. Yields the header, then plaintext chunks, each only after
 * its tag verified; a missing final chunk or trailing bytes fail at the end.
 */
export async function* open(
  source: AsyncIterable<Buffer>,
  secretFor: (h: UsbHeader) => string,
  kind: FileKind = USB_FILE,
): AsyncGenerator<{ type: 'header'; header: UsbHeader } | { type: 'data'; data: Buffer }> {
  const r = new ByteReader(source[Symbol.asyncIterator]());
  const { header, raw } = await readHeader(r, kind);
  const key = deriveKey(secretFor(header), header, kind);
  yield { type: 'header', header };
  for (let index = 0n; ; index++) {
    const len = await r.read(4);
    if (len === null) throw kind.error('the file ends before its final chunk: it is truncated');
    const word = len.readUInt32BE(0);
    const final = word >= 0x80000000;
    const n = word & 0x7fffffff;
    if (n > header.chunkSize || (!final && n !== header.chunkSize)) throw kind.error('a chunk has the wrong size: the file is damaged');
    const body = await need(r, n + TAG_BYTES, 'chunk', kind);
    const d = createDecipheriv('aes-256-gcm', key, nonce(index), { authTagLength: TAG_BYTES });
    d.setAAD(chunkAad(raw, index, final));
    d.setAuthTag(body.subarray(n));
    let plain: Buffer;
    try {
      plain = Buffer.concat([d.update(body.subarray(0, n)), d.final()]);
    } catch (e) {
      throw kind.error(index === 0n
        ? 'the file does not authenticate: it was sealed with another key (token), or changed or damaged'
        : `chunk ${index} of the file does not authenticate: the file was changed or damaged after it was written`, e);
    }
    if (plain.length > 0) yield { type: 'data', data: plain };
    if (final) {
      if (!(await r.atEnd())) throw kind.error('the file has bytes after its final chunk: it was changed');
      return;
    }
  }
}
