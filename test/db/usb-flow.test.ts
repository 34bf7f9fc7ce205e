// USB transfer with real capture and apply: the three-step flow (child exports,
// parent imports and replies, child imports the reply), replayed files, damaged
// and foreign files refused with nothing applied (the whole file is checked
// before anything applies), and USB mixed with the network applying each change once.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportFile, importFile } from '../../agent/usb/transfer.js';
import { getCursor } from '../../agent/routing/cursors.js';
import { dumpCounts } from '../../deploy/sandbox/identity-dump.js';
import { allCaughtUp, settle, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

async function people(n: NetNode, tag: string, from: number, count: number, photoBytes = 0): Promise<void> {
  for (let i = from; i < from + count; i++) {
    await n.sql(`INSERT INTO person (uuid, name, photo) VALUES (?, ?, ?)`, [uuid(tag, i), `${tag}${i}`, photoBytes ? randomBytes(photoBytes) : null]);
  }
}

void t.test('USB', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-usb-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const f = (name: string) => join(dir, name);
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'leaf', token: 'leaf-usb-token' }] });
  t.teardown(() => stopNode(hub));
  const leaf = await startNode({
    id: 'leaf', parent: { url: `http://127.0.0.1:${hub.config.listen!.port}`, token: 'leaf-usb-token' },
  });
  t.teardown(() => stopNode(leaf));
  const both = [hub, leaf];
  const usb = (n: NetNode) => n.node.usb();

  await t.test('three steps: export, import with reply, import the reply', async (t) => {
    await Promise.all([people(hub, 'h', 1, 10), people(leaf, 'l', 1, 12)]);
    await allCaughtUp(both);
    await t.rejects(exportFile(usb(leaf), { out: f('x') }), { code: 'SPOKESYNC_E_USAGE' }, 'the parent id must be named before first contact');
    const out = await exportFile(usb(leaf), { peer: 'hub', out: f('leaf-1.usb') });
    t.same([out.peer, out.entries], ['hub', 12]);
    // (texts long enough that random bytes never hold them by chance: a name like 'l1' could)
    const file = await readFile(f('leaf-1.usb'));
    for (const text of [uuid('l', 1), '<cs ', 'person']) t.notOk(file.includes(Buffer.from(text)), `nothing readable in the file: ${text}`);

    const imp = await importFile(usb(hub), { in: f('leaf-1.usb'), reply: f('hub-1.usb') });
    t.same([imp.sender, imp.applied, imp.reply?.entries], ['leaf', 12, 10]);
    await allCaughtUp(both);
    const back = await importFile(usb(leaf), { in: f('hub-1.usb') });
    t.same([back.sender, back.applied], ['hub', 10]);
    t.equal(await leaf.node.parentId(), 'hub', 'the parent id is learned from its authenticated file');
    await allCaughtUp(both);
    t.same(await leaf.dump(), await hub.dump(), 'converged');
    t.same(dumpCounts(await hub.dump()).person, 22);
    t.equal((await getCursor(leaf.node.db, 'spokesync', 'hub')).ackedSeq, '12', 'the reply acked all leaf changes');
  });

  await t.test('replayed files are no-ops', async (t) => {
    const before = [await hub.ledger(), await leaf.ledger()];
    const again = await importFile(usb(hub), { in: f('leaf-1.usb') });
    t.same([again.applied, again.replayed + again.duplicates], [0, 12]);
    const again2 = await importFile(usb(leaf), { in: f('hub-1.usb') });
    t.same([again2.applied, again2.replayed + again2.duplicates], [0, 10]);
    await allCaughtUp(both);
    t.same([await hub.ledger(), await leaf.ledger()], before);
    t.same(await leaf.dump(), await hub.dump());
  });

  await t.test('damaged and foreign files: SPOKESYNC_E_USB_FILE, nothing applied', async (t) => {
    // big enough for many chunks: random photos do not compress
    await people(leaf, 'big', 1, 60, 4000);
    await allCaughtUp(both);
    await exportFile(usb(leaf), { out: f('leaf-2.usb') });
    const good = await readFile(f('leaf-2.usb'));
    t.ok(good.length > 3 * 64 * 1024, `${good.length} bytes, several chunks`);
    const ledger = await hub.ledger();
    const dump = await hub.dump();
    const tamperedLast = Buffer.from(good);
    tamperedLast[good.length - 20] = tamperedLast[good.length - 20]! ^ 0x40;
    const tamperedFirst = Buffer.from(good);
    tamperedFirst[200] = tamperedFirst[200]! ^ 0x01;
    const cases: [string, Buffer][] = [
      ['a byte changed in the last chunk', tamperedLast],
      ['a byte changed in the first chunk', tamperedFirst],
      ['truncated', good.subarray(0, good.length - 1000)],
      ['trailing bytes', Buffer.concat([good, Buffer.from('x')])],
      ['not a spokesync file', Buffer.from('hello')],
    ];
    for (const [what, bytes] of cases) {
      await writeFile(f('bad.usb'), bytes);
      await t.rejects(importFile(usb(hub), { in: f('bad.usb') }), { code: 'SPOKESYNC_E_USB_FILE' }, what);
    }
    // the right file at the wrong node: leaf's own file imported at leaf
    await t.rejects(importFile(usb(leaf), { in: f('leaf-2.usb') }), { code: 'SPOKESYNC_E_USB_FILE' }, 'meant for another node');
    // a hub that holds another token for leaf cannot open it (wrong key)
    const wrongKey = { ...usb(hub), config: { ...hub.config, children: [{ id: 'leaf', token: 'not-the-token' }] } };
    await t.rejects(importFile(wrongKey, { in: f('leaf-2.usb') }), { code: 'SPOKESYNC_E_USB_FILE' }, 'wrong key');
    const noChild = { ...usb(hub), config: { ...hub.config, children: [{ id: 'other', token: 'leaf-usb-token' }] } };
    await t.rejects(importFile(noChild, { in: f('leaf-2.usb') }), { code: 'SPOKESYNC_E_USB_FILE' }, 'sender not a child');
    await allCaughtUp([hub]);
    t.same(await hub.ledger(), ledger, 'ledger unchanged');
    t.same(await hub.dump(), dump, 'nothing applied');
    const ok = await importFile(usb(hub), { in: f('leaf-2.usb') });
    t.equal(ok.applied, 60, 'the intact file still imports');
  });

  await t.test('USB mixed with the network applies each change once', async (t) => {
    await Promise.all([people(hub, 'h', 100, 8), people(leaf, 'l', 100, 9)]);
    await allCaughtUp(both);
    await exportFile(usb(leaf), { out: f('leaf-3.usb') });
    await exportFile(usb(hub), { peer: 'leaf', out: f('hub-3.usb') });
    // the network goes first, then the files arrive late
    const r = await leaf.node.syncWithParent();
    t.ok(r.drained);
    const lateUp = await importFile(usb(hub), { in: f('leaf-3.usb') });
    const lateDown = await importFile(usb(leaf), { in: f('hub-3.usb') });
    t.equal(lateUp.applied + lateDown.applied, 0, 'late files apply nothing');
    // and the other way round: a file first, the network after
    await people(leaf, 'l', 200, 5);
    await allCaughtUp(both);
    await exportFile(usb(leaf), { out: f('leaf-4.usb') });
    t.equal((await importFile(usb(hub), { in: f('leaf-4.usb') })).applied, 5);
    await settle(both, [leaf]);
    await allCaughtUp(both);
    t.same(await leaf.dump(), await hub.dump(), 'converged');
    t.same(await hub.ledger(), await leaf.own(), 'hub applied each leaf change once');
    t.same(await leaf.ledger(), await hub.own(), 'leaf applied each hub change once');
    t.equal(dumpCounts(await hub.dump()).person, 22 + 60 + 17 + 5);
  });
});
