// The sealed USB file format, byte level: round trips, and every kind of damage
// (tampering, truncation, trailing bytes, reordering, wrong key, wrong peer) fails
// with SPOKESYNC_E_USB_FILE before any plaintext of a bad chunk is released.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { open, seal, type UsbHeader } from '../../agent/usb/usb-file.js';
import { chunks, collect } from '../helpers/streams.js';


const secret = 'child-token-1';
const sealed = async (plain: Buffer, chunkSize = 100): Promise<Buffer> =>
  collect(seal(chunks(plain, 37), { sender: 'leaf', receiver: 'hub', secret, chunkSize }));

async function unseal(file: Buffer, secretFor: (h: UsbHeader) => string = () => secret): Promise<{ header?: UsbHeader; data: Buffer }> {
  let header: UsbHeader | undefined;
  const parts: Buffer[] = [];
  for await (const item of open(chunks(file, 53), secretFor)) {
    if (item.type === 'header') header = item.header;
    else parts.push(item.data);
  }
  return { ...(header ? { header } : {}), data: Buffer.concat(parts) };
}

void t.test('round trip: empty, exact multiple of the chunk, odd sizes', async (t) => {
  for (const n of [0, 1, 99, 100, 101, 1000, 12345]) {
    const plain = randomBytes(n);
    const file = await sealed(plain);
    const got = await unseal(file);
    t.ok(got.data.equals(plain), `${n} bytes`);
    t.equal(got.header?.sender, 'leaf');
    t.equal(got.header?.receiver, 'hub');
  }
  const a = await sealed(Buffer.from('same'));
  const b = await sealed(Buffer.from('same'));
  t.not(a.toString('hex'), b.toString('hex'), 'a fresh salt per file');
  t.notOk(a.includes(Buffer.from('same')), 'plaintext does not show');
});

void t.test('every flipped byte fails authentication', async (t) => {
  const plain = randomBytes(450);
  const file = await sealed(plain);
  let failures = 0;
  for (let i = 0; i < file.length; i++) {
    const bad = Buffer.from(file);
    bad[i] = bad[i]! ^ 0x01;
    try {
      await unseal(bad);
    } catch (e) {
      if ((e as { code?: string }).code === 'SPOKESYNC_E_USB_FILE') failures++;
    }
  }
  t.equal(failures, file.length, 'each of the file bytes is covered');
});

void t.test('truncation at any point fails; trailing bytes fail', async (t) => {
  const file = await sealed(randomBytes(350));
  for (let cut = 0; cut < file.length; cut += 7) {
    await t.rejects(unseal(file.subarray(0, cut)), { code: 'SPOKESYNC_E_USB_FILE' }, `cut at ${cut}`);
  }
  await t.rejects(unseal(Buffer.concat([file, Buffer.from([0])])), { code: 'SPOKESYNC_E_USB_FILE' });
  await t.rejects(unseal(Buffer.concat([file, file])), { code: 'SPOKESYNC_E_USB_FILE' });
});

void t.test('reordered or dropped chunks fail', async (t) => {
  const file = await sealed(randomBytes(300), 100);
  // header = 13 magic + 1 version + 1+4 "leaf" + 1+3 "hub" + 32 salt + 4 size = 59; chunk = 4 + 100 + 16
  const h = 59;
  const c = 120;
  const header = file.subarray(0, h);
  const c0 = file.subarray(h, h + c);
  const c1 = file.subarray(h + c, h + 2 * c);
  const rest = file.subarray(h + 2 * c);
  t.ok((await unseal(Buffer.concat([header, c0, c1, rest]))).data.length === 300, 'the split is right');
  await t.rejects(unseal(Buffer.concat([header, c1, c0, rest])), { code: 'SPOKESYNC_E_USB_FILE' }, 'swapped');
  await t.rejects(unseal(Buffer.concat([header, c0, rest])), { code: 'SPOKESYNC_E_USB_FILE' }, 'one dropped');
  await t.rejects(unseal(Buffer.concat([header, c0, c1])), { code: 'SPOKESYNC_E_USB_FILE' }, 'final dropped');
});

void t.test('wrong key, a header rewritten to another peer, and a refused peer fail', async (t) => {
  const file = await sealed(randomBytes(200));
  await t.rejects(unseal(file, () => 'another-token'), { code: 'SPOKESYNC_E_USB_FILE' });
  // same lengths: 'leaf' → 'lead' in the header (the key and every chunk's AAD bind the names)
  const renamed = Buffer.from(file);
  renamed.write('lead', 15, 'ascii');
  await t.rejects(unseal(renamed), { code: 'SPOKESYNC_E_USB_FILE' });
  await t.rejects(unseal(Buffer.from('not a file at all')), { code: 'SPOKESYNC_E_USB_FILE' });
  await t.rejects(unseal(file, (h) => {
    throw Object.assign(new Error(`no peer ${h.sender}`), { code: 'SPOKESYNC_E_USB_FILE' });
  }), { code: 'SPOKESYNC_E_USB_FILE' });
});
