// The kinds of sealed file (agent/usb/usb-file.ts): USB batch files are read as
// before (a file written by hand from the documented format opens), snapshot
// files carry their own magic and key label, and neither opens as the other,
// even between the same two peers with the same token.
import t from 'tap';
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { SNAPSHOT_FILE, USB_FILE, open, seal, type FileKind, type UsbHeader } from '../../agent/usb/usb-file.js';
import { unsealed } from '../../agent/provision/sealed.js';
import { chunks, collect } from '../helpers/streams.js';


const secret = 'tok-leaf-0123456789';
const peers = { sender: 'hub', receiver: 'leaf', secret };

async function unseal(file: Buffer, kind?: FileKind, secretFor: (h: UsbHeader) => string = () => secret): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const item of open(chunks(file, 53), secretFor, kind)) if (item.type === 'data') parts.push(item.data);
  return Buffer.concat(parts);
}

/** A USB file written from the format description alone (not with seal), as files in the field were. */
function handMadeUsbFile(plain: Buffer, salt: Buffer, chunkSize: number): Buffer {
  const size = Buffer.alloc(4);
  size.writeUInt32BE(chunkSize);
  const header = Buffer.concat([
    Buffer.from('SPOKESYNC-USB'), Buffer.from([1, 3]), Buffer.from('hub'), Buffer.from([4]), Buffer.from('leaf'), salt, size,
  ]);
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(secret), salt, Buffer.from('spokesync usb v1 hub>leaf'), 32));
  const out = [header];
  const count = Math.max(1, Math.ceil(plain.length / chunkSize));
  for (let i = 0; i < count; i++) {
    const final = i === count - 1;
    const body = plain.subarray(i * chunkSize, (i + 1) * chunkSize);
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64BE(BigInt(i), 4);
    const aad = Buffer.alloc(9);
    aad.writeBigUInt64BE(BigInt(i), 0);
    aad[8] = final ? 1 : 0;
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(Buffer.concat([header, aad]));
    const enc = Buffer.concat([c.update(body), c.final()]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE((final ? 0x80000000 : 0) + enc.length);
    out.push(len, enc, c.getAuthTag());
  }
  return Buffer.concat(out);
}

void t.test('USB files written to the documented format still open, and seal still writes exactly that format', async (t) => {
  const plain = randomBytes(1000);
  const salt = randomBytes(32);
  const file = handMadeUsbFile(plain, salt, 300);
  t.ok((await unseal(file)).equals(plain), 'opens with the default kind');
  t.ok((await unseal(file, USB_FILE)).equals(plain), 'opens as a USB file');
  const sealed = await collect(seal(chunks(plain, 77), { ...peers, salt, chunkSize: 300 }));
  t.ok(sealed.equals(file), 'seal without a kind writes the same bytes as before');
});

void t.test('snapshot files: own magic, round trip, plaintext hidden', async (t) => {
  const plain = Buffer.from('{"format":"spokesync-snapshot"} patient data '.repeat(200));
  const file = await collect(seal(chunks(plain, 77), { ...peers, kind: SNAPSHOT_FILE, chunkSize: 512 }));
  t.equal(file.subarray(0, 18).toString('ascii'), 'SPOKESYNC-SNAPSHOT');
  t.notOk(file.includes(Buffer.from('patient')), 'plaintext does not show');
  t.ok((await unseal(file, SNAPSHOT_FILE)).equals(plain));
  const viaStream = await collect(unsealed(Readable.from(chunks(file, 101)), { node: 'leaf', token: secret }));
  t.ok(viaStream.equals(plain), 'unsealed() gives the same bytes as a stream');
});

void t.test('a USB file is not a snapshot file and a snapshot file is not a USB file, with the same peers and token', async (t) => {
  const plain = randomBytes(700);
  const salt = randomBytes(32);
  const usb = await collect(seal(chunks(plain), { ...peers, salt, chunkSize: 256 }));
  const snap = await collect(seal(chunks(plain), { ...peers, salt, chunkSize: 256, kind: SNAPSHOT_FILE }));
  await t.rejects(unseal(usb, SNAPSHOT_FILE), { code: 'SPOKESYNC_E_SNAPSHOT', message: /this is a spokesync USB file, not a snapshot file: import it/ });
  await t.rejects(unseal(snap, USB_FILE), { code: 'SPOKESYNC_E_USB_FILE', message: /this is a spokesync snapshot file, not a USB file: load it .*clone --from/ });
  await t.rejects(unseal(snap), { code: 'SPOKESYNC_E_USB_FILE' }, 'the default kind is USB');
  // Same header fields, magic swapped: the key and every chunk's AAD bind the kind.
  const relabelled = Buffer.concat([SNAPSHOT_FILE.magic, usb.subarray(USB_FILE.magic.length)]);
  await t.rejects(unseal(relabelled, SNAPSHOT_FILE), { code: 'SPOKESYNC_E_SNAPSHOT', message: /does not authenticate/ });
  const back = Buffer.concat([USB_FILE.magic, snap.subarray(SNAPSHOT_FILE.magic.length)]);
  await t.rejects(unseal(back, USB_FILE), { code: 'SPOKESYNC_E_USB_FILE', message: /does not authenticate/ });
});

void t.test('snapshot files: wrong token, wrong receiver, truncated, tampered, trailing bytes, plain gzip', async (t) => {
  const plain = randomBytes(5000);
  const file = await collect(seal(chunks(plain), { ...peers, kind: SNAPSHOT_FILE, chunkSize: 1000 }));
  const as = { node: 'leaf', token: secret };
  const read = (f: Buffer, a = as): Promise<Buffer> => collect(unsealed(Readable.from(chunks(f, 333)), a));
  t.ok((await read(file)).equals(plain));
  await t.rejects(read(file, { node: 'leaf', token: 'another-token' }), { code: 'SPOKESYNC_E_SNAPSHOT', message: /another key/, fix: /parent\.token/ });
  await t.rejects(read(file, { node: 'other', token: secret }), { code: 'SPOKESYNC_E_SNAPSHOT', message: /made for node leaf, not for other/, fix: /--peer other/ });
  for (const cut of [0, 10, 40, 70, 500, file.length - 17, file.length - 1]) {
    await t.rejects(read(file.subarray(0, cut)), { code: 'SPOKESYNC_E_SNAPSHOT' }, `cut at ${cut}`);
  }
  const last = Buffer.from(file);
  last[last.length - 20] = last[last.length - 20]! ^ 0x40;
  await t.rejects(read(last), { code: 'SPOKESYNC_E_SNAPSHOT', message: /chunk 4 of the file does not authenticate/ }, 'the last chunk is checked too');
  await t.rejects(read(Buffer.concat([file, Buffer.from([0])])), { code: 'SPOKESYNC_E_SNAPSHOT', message: /bytes after its final chunk/ });
  await t.rejects(read(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, ...randomBytes(40)])), {
    code: 'SPOKESYNC_E_SNAPSHOT', message: /plain gzip file, not a sealed spokesync snapshot file/,
  }, 'an unsealed snapshot (older spokesync) is refused');
});
