// Trust between nodes on a tree of real nodes: root p with children m and l3,
// and l1 below m. A child's token speaks only for that child and the nodes
// below it; a stamp far ahead of the receiver's clock is held, merged into no
// clock; ids are bound to origin and stamp and to their content; a forged high
// entry seq hides no later change; an ack above what was sent is refused. None
// of it stops a node, and the real changes of every node still reach every node.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBatch } from '../../apply/codec/batch.js';
import { packHlc, unpackHlc } from '../../apply/core/hlc.js';
import type { BatchEntry, ChangeSet } from '../../apply/core/model.js';
import { Applier } from '../../apply/replay/applier.js';
import { createLogger, silentLogger } from '../../apply/core/log.js';
import { getCursor } from '../../agent/routing/cursors.js';
import { nodeStatus } from '../../agent/routing/node-status.js';
import { exportFile, importFile } from '../../agent/usb/transfer.js';
import { journal, raw } from '../helpers/exchange-rig.js';
import { allCaughtUp, settle, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

const TOKENS = { m: 'm-token-4c1d8e', l3: 'l3-token-9a7f20', l1: 'l1-token-5e2b33' };
const TOP = '18446744073709551615';
const DAY = 86_400_000;

function person(origin: string, hlc: bigint | string, id: string, name = `forged ${id}`): ChangeSet {
  return {
    id: `${origin}:${hlc}`, origin, hlc: String(hlc), time: '2026-12-07T12:00:00Z',
    ops: [{ kind: 'insert', table: 'person', id, row: { uuid: id, name, gender: null, born: null, photo: null, changed_at: null } }],
  };
}

async function names(n: NetNode): Promise<string[]> {
  const rows = await n.node.db.query<{ uuid: string }>('SELECT uuid FROM app.person ORDER BY uuid');
  return rows.map((r) => r.uuid);
}

void t.test('trust follows the tree', async (t) => {
  const logs: string[] = [];
  const pLog = createLogger({ level: 'info', write: (l) => logs.push(l) });
  const p = await startNode({ id: 'p', listen: true, children: [{ id: 'm', token: TOKENS.m }, { id: 'l3', token: TOKENS.l3 }], log: pLog });
  t.teardown(() => stopNode(p));
  const pUrl = `http://127.0.0.1:${p.config.listen!.port}`;
  const m = await startNode({ id: 'm', listen: true, parent: { url: pUrl, token: TOKENS.m }, children: [{ id: 'l1', token: TOKENS.l1 }] });
  t.teardown(() => stopNode(m));
  const mUrl = `http://127.0.0.1:${m.config.listen!.port}`;
  const l3 = await startNode({ id: 'l3', parent: { url: pUrl, token: TOKENS.l3 } });
  t.teardown(() => stopNode(l3));
  const l1 = await startNode({ id: 'l1', parent: { url: mUrl, token: TOKENS.l1 } });
  t.teardown(() => stopNode(l1));
  const all = [p, m, l3, l1];
  const children = [l1, m, l3];
  let n = 0;
  const edit = async (node: NetNode): Promise<string> => {
    const id = uuid(node.id, ++n);
    await node.sql('INSERT INTO person (uuid, name) VALUES (?, ?)', [id, `real ${node.id} ${n}`]);
    return id;
  };
  const everywhere = async (ids: string[], what: string): Promise<void> => {
    await settle(all, children);
    for (const node of all) {
      const have = await names(node);
      t.same(ids.filter((id) => !have.includes(id)), [], `${what}: every real change reached ${node.id}`);
    }
  };
  const post = async (url: string, token: string, from: string, to: string, entries: BatchEntry[], ack = '0') =>
    raw(`${url}/v1/exchange`, {
      headers: { authorization: `Bearer ${token}` },
      body: await encodeBatch({ version: 1, from, to, seq: '1', ack, more: false }, entries),
    });
  const ledgerOf = async (node: NetNode): Promise<string[]> => node.ledger();

  // every node writes once, so p knows l1 as a node below m
  const real = [await edit(p), await edit(m), await edit(l3), await edit(l1)];
  await everywhere(real, 'at first');

  await t.test('a stamp at the top of the encoding or in the year 9999 is held; capture on p goes on', async (t) => {
    const before = await ledgerOf(p);
    const year9999 = packHlc(Date.UTC(9999, 11, 31), 0);
    const r = await post(pUrl, TOKENS.l3, 'l3', 'p', [
      { seq: '1', cs: person('l3', TOP, uuid('top', 1)) },
      { seq: '2', cs: person('l3', year9999, uuid('y9999', 1)) },
    ]);
    t.equal(r.status, 200, `taken, to be held: ${r.body.toString().slice(0, 200)}`);
    t.same(await ledgerOf(p), before, 'nothing applied');
    t.same((await names(p)).filter((id) => id.startsWith('top') || id.startsWith('y9999')), [], 'no row of theirs');
    const status = await nodeStatus(p.node.db, p.config, p.node.reader);
    const held = status.quarantine.entries.filter((e) => e.origin === 'l3');
    t.same(held.map((e) => e.changeId).sort(), [`l3:${TOP}`, `l3:${year9999}`].sort(), 'both in quarantine, shown by status');
    t.ok(held.every((e) => /stamp of origin 'l3' is at \+?\d{4,6}-.*ahead of this node's clock/.test(e.reason)), held.map((e) => e.reason).join(' | '));
    t.ok(held.some((e) => e.reason.includes('9999-12-31')), 'the reason names the stamp\'s time');

    // p's own changes are still captured, stamped by p's clock, not by the held stamps
    const local = await edit(p);
    await allCaughtUp(all);
    t.notOk(p.node.capture.status().error, 'capture has no error');
    const [row] = await p.node.db.query<{ hlc: string }>("SELECT hlc FROM spokesync.journal WHERE from_peer IS NULL ORDER BY seq DESC LIMIT 1");
    t.ok(row && unpackHlc(BigInt(row.hlc)).ms < Date.now() + 60_000, `p's clock was not moved ahead (${row?.hlc})`);
    real.push(local, await edit(l3));
    await everywhere(real, 'with stamps held at p');
    await p.node.applier.retryQuarantine();
    t.equal((await nodeStatus(p.node.db, p.config, p.node.reader)).quarantine.entries.filter((e) => e.origin === 'l3').length, 2, 'still held after a retry');
  });

  await t.test('a child speaks only for itself and the nodes below it', async (t) => {
    const cases: [string, NetNode, string, string, string, ChangeSet, RegExp][] = [
      ['a sibling (m) at p', p, pUrl, TOKENS.l3, 'l3', person('m', packHlc(Date.now(), 1), uuid('sib', 1)), /origin "m", which belongs to 'm'/],
      ['the node itself (p) at p', p, pUrl, TOKENS.l3, 'l3', person('p', packHlc(Date.now(), 1), uuid('own', 1)), /origin "p", which is this node/],
      ['a grandchild of another child (l1) at p', p, pUrl, TOKENS.l3, 'l3', person('l1', packHlc(Date.now(), 1), uuid('gc', 1)), /origin "l1", which belongs to 'm'/],
      ['the parent (p) at m', m, mUrl, TOKENS.l1, 'l1', person('p', packHlc(Date.now(), 2), uuid('par', 1)), /origin "p", which belongs to 'p'/],
      ['a node beside the parent (l3) at m', m, mUrl, TOKENS.l1, 'l1', person('l3', packHlc(Date.now(), 2), uuid('uncle', 1)), /origin "l3", which belongs to 'p'/],
    ];
    for (const [what, node, url, token, from, cs, pattern] of cases) {
      const before = await ledgerOf(node);
      const own = person(from, packHlc(Date.now(), 7), uuid(`ok${from}`, ++n));
      const r = await post(url, token, from, node.id, [{ seq: '1', cs: own }, { seq: '2', cs }]);
      t.equal(r.status, 409, `${what}: 409`);
      t.match(r.body.toString(), /^SPOKESYNC_E_ORIGIN: /, `${what}: SPOKESYNC_E_ORIGIN`);
      t.match(r.body.toString(), pattern, `${what}: names the origin and whom it belongs to`);
      t.same(await ledgerOf(node), before, `${what}: nothing of the batch applied`);
      t.notOk((await names(node)).includes(cs.ops[0]!.id), `${what}: not its row`);
      t.match((await getCursor(node.node.db, 'spokesync', from)).lastResult, /^SPOKESYNC_E_ORIGIN: /, `${what}: the last result at ${node.id}`);
    }
    t.ok(logs.some((l) => l.includes('exchange refused') && l.includes('SPOKESYNC_E_ORIGIN')), 'p logs the refusals');

    // a real child that sends a change set it may not: the sync fails with the code, the child keeps it and shows it
    const before = await ledgerOf(p);
    const usbReal = await edit(l3);
    await allCaughtUp(all);
    const seq = await journal(l3.node.db, 'spokesync', person('m', packHlc(Date.now(), 9), uuid('bogus', 1)));
    const dir = await mkdtemp(join(tmpdir(), 'trust-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'l3.usb');
    await exportFile(l3.node.usb(), { peer: 'p', out: file });
    await t.rejects(importFile(p.node.usb(), { in: file }), { code: 'SPOKESYNC_E_ORIGIN' }, 'by USB too');
    t.same(await ledgerOf(p), before, 'nothing of the file applied');
    await t.rejects(l3.node.syncWithParent(), { code: 'SPOKESYNC_E_ORIGIN' }, 'the child is told');
    t.match((await getCursor(l3.node.db, 'spokesync', 'p')).lastResult, /^SPOKESYNC_E_ORIGIN: .*origin "m"/, "and it shows in the child's status");
    t.ok((await l3.node.core.pending(l3.node.routeFor('p', 'parent'))) > 0, 'the child keeps it');
    await l3.node.db.exec('DELETE FROM spokesync.journal WHERE seq = ?', [seq]);

    real.push(usbReal, await edit(m), await edit(l1), await edit(l3), await edit(p));
    await everywhere(real, 'after the refusals');
  });

  await t.test("ids bound to origin and stamp: another child cannot take l1's next ids", async (t) => {
    // l1 stamps with its commit times (whole seconds) and a counter: these are the ids it takes in the next seconds
    const second = Math.floor(Date.now() / 1000) * 1000;
    const ahead = Array.from({ length: 40 }, (_, i) => packHlc(second + Math.floor(i / 8) * 1000, i % 8));
    const empty = (origin: string, h: bigint, id = `${origin}:${h}`): ChangeSet => ({ id, origin, hlc: String(h), time: '2026-12-07T12:00:00Z', ops: [] });
    // l1 may already hold the first of them (an edit of its own earlier in this second)
    const held = new Set(await ledgerOf(p));
    const asL1 = await post(pUrl, TOKENS.l3, 'l3', 'p', ahead.map((h, i) => ({ seq: String(i + 1), cs: empty('l1', h) })));
    t.equal(asL1.status, 409);
    t.match(asL1.body.toString(), /^SPOKESYNC_E_ORIGIN: .*origin "l1"/, 'claiming l1: refused');
    const wrongId = await post(pUrl, TOKENS.l3, 'l3', 'p', ahead.map((h, i) => ({ seq: String(i + 1), cs: empty('l3', h, `l1:${h}`) })));
    t.equal(wrongId.status, 409);
    t.match(wrongId.body.toString(), /^SPOKESYNC_E_CHANGE_ID: .*does not have the id its origin and stamp give/, 'an id that is not origin:stamp: refused');
    const ledger = await ledgerOf(p);
    t.same(ledger.filter((id) => !held.has(id) && id.startsWith('l1:') && ahead.some((h) => id === `l1:${h}`)), [], 'none of the ids taken');
    const edits = [await edit(l1), await edit(l1), await edit(l1)];
    real.push(...edits);
    await everywhere(real, "l1's next edits");
    const ids = await l1.own();
    t.ok(ids.some((id) => ahead.some((h) => id === `l1:${h}`)), 'l1 did take ids that were sent ahead of it');
    for (const node of [p, m, l3]) {
      const theirs = await ledgerOf(node);
      t.same(ids.filter((id) => !theirs.includes(id)), [], `every change of l1 is in ${node.id}'s ledger`);
    }
  });

  await t.test('a forged high entry seq hides no later change; an ack beyond what was sent is refused', async (t) => {
    const forged = person('l3', packHlc(Date.now(), 3), uuid('hiseq', 1), 'sent with a high seq');
    const r = await post(pUrl, TOKENS.l3, 'l3', 'p', [{ seq: '900957003', cs: forged }]);
    t.equal(r.status, 200, 'a well-formed change set of l3: taken');
    // l3 has nothing to send: p's answer acks the forged seq, yet p's changes still reach l3
    const fromP = await edit(p);
    real.push(fromP);
    await allCaughtUp(all);
    t.equal(await l3.node.core.pending(l3.node.routeFor('p', 'parent')), 0, 'l3 has nothing to send');
    await l3.node.syncWithParent();
    t.ok((await names(l3)).includes(fromP), "p's change reached l3 though p acks a seq l3 never sent");
    const later = [await edit(l3), await edit(l3)];
    real.push(...later);
    await everywhere(real, 'after a forged high seq');

    const before = await getCursor(p.node.db, 'spokesync', 'l3');
    const bad = await post(pUrl, TOKENS.l3, 'l3', 'p', [{ seq: '99', cs: person('l3', packHlc(Date.now(), 4), uuid('ack', 1)) }], '999999');
    t.equal(bad.status, 409, 'ack out of range: 409');
    t.match(bad.body.toString(), /^SPOKESYNC_E_ACK: 'l3' acknowledges our journal up to 999999, but at most \d+ was sent to it/);
    const after = await getCursor(p.node.db, 'spokesync', 'l3');
    t.same([after.ackedSeq, after.receivedSeq], [before.ackedSeq, before.receivedSeq], 'no cursor moved');
    t.notOk((await names(p)).includes(uuid('ack', 1)), 'nothing of that batch applied');
  });

  await t.test('an id that comes again with other content is refused and reported, never skipped', async (t) => {
    // l1's next change reaches m; before m passes it on, m's token (which may speak for l1) pre-empts its id at p
    const id = await edit(l1);
    await allCaughtUp(all);
    await l1.node.syncWithParent();
    const [row] = await l1.node.db.query<{ change_id: string }>('SELECT change_id FROM spokesync.journal WHERE from_peer IS NULL ORDER BY seq DESC LIMIT 1');
    const mine = row?.change_id;
    t.ok(mine, "l1's change id");
    const h = mine!.slice('l1:'.length);
    const pre = await post(pUrl, TOKENS.m, 'm', 'p', [{ seq: '1', cs: { id: mine!, origin: 'l1', hlc: h, time: '2026-12-07T12:00:00Z', ops: [] } }]);
    t.equal(pre.status, 200, 'the pre-empting change set applies (m may speak for l1)');
    await allCaughtUp(all);
    await t.rejects(m.node.syncWithParent(), { code: 'SPOKESYNC_E_CHANGE_ID' }, 'the real one is refused, not skipped');
    t.match((await getCursor(m.node.db, 'spokesync', 'p')).lastResult, new RegExp(`^SPOKESYNC_E_CHANGE_ID: .*${mine}.*applied here before with other content`), "in the sender's last result");
    t.ok(logs.some((l) => l.includes('SPOKESYNC_E_CHANGE_ID') && l.includes(mine!)), "in p's log");
    t.notOk((await names(p)).includes(id), 'held: not applied at p');
    t.ok((await m.node.core.pending(m.node.routeFor('p', 'parent'))) > 0, 'm keeps it');
    t.ok((await names(m)).includes(id) && (await names(l1)).includes(id), 'it is at l1 and m');
  });
  await t.test('a child whose clock runs two days fast gets through once the receiver\'s clock has caught up', async (t) => {
    const fast = person('l3', packHlc(Date.now() + 2 * DAY, 0), uuid('fast', 1), 'two days ahead');
    const r = await post(pUrl, TOKENS.l3, 'l3', 'p', [{ seq: '3', cs: fast }]);
    t.equal(r.status, 200);
    t.notOk((await names(p)).includes(uuid('fast', 1)), 'held now');
    const later = new Applier({
      db: p.node.db, catalog: p.node.catalog, schema: 'app', stateSchema: 'spokesync', node: 'p', tables: p.node.tables,
      log: silentLogger, now: () => Date.now() + 2 * DAY,
    });
    const retried = await later.retryQuarantine();
    t.equal(retried.applied, 1, 'applied by a retry two days on');
    t.ok((await names(p)).includes(uuid('fast', 1)));
    t.same((await nodeStatus(p.node.db, p.config, p.node.reader)).quarantine.entries.map((e) => e.changeId).sort(),
      [`l3:${TOP}`, `l3:${packHlc(Date.UTC(9999, 11, 31), 0)}`].sort(), 'the others are still held');
  });
});
