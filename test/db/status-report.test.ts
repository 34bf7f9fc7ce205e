// Every node reports up: on a three-level tree (root ← mid ← leaf-a, leaf-b)
// the root's /status.json lists the grandchildren with their last success and
// recent exchanges, and raises a silent alert for a leaf that stops. A child may
// report only on its own subtree: a forged entry about a sibling, the parent or
// the parent's parent is dropped and logged, the rest kept. History is bounded.
import t from 'tap';
import { createLogger } from '../../apply/core/log.js';
import { batchBuffer } from '../../agent/exchange/wire.js';
import { EXCHANGE_PATH, REPORT_HEADER } from '../../agent/exchange/protocol.js';
import { encodeReport } from '../../agent/admin/report-wire.js';
import { recordRound, roundsWith } from '../../agent/admin/history.js';
import type { StatusDoc, StatusNode } from '../../agent/admin/status-doc.js';
import { ExchangeServer } from '../../agent/exchange/http-server.js';
import { ExchangeClient } from '../../agent/exchange/client.js';
import { routeTo } from '../../agent/routing/filters.js';
import { settle, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

const ADMIN = 'root-admin-token-0123456789';

async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function statusJson(n: NetNode): Promise<StatusDoc> {
  const res = await fetch(`${n.adminUrl!}/status.json`, { headers: { authorization: `Bearer ${ADMIN}` } });
  if (res.status !== 200) throw new Error(`status.json: ${res.status} ${await res.text()}`);
  return (await res.json()) as StatusDoc;
}

const byId = (d: StatusDoc): Map<string, StatusNode> => new Map(d.nodes.map((n) => [n.id, n]));

void t.test('the root sees every node of a three-level tree, and a leaf that stops', async (t) => {
  const lines: string[] = [];
  const root = await startNode({
    id: 'root', listen: true, admin: { token: ADMIN, silentAfter: 8000 }, log: createLogger({ write: (l) => lines.push(l) }),
    // 'aunt' is mid's sibling, configured and never seen
    children: [{ id: 'mid', token: 'mid-token-report' }, { id: 'aunt', token: 'aunt-token-report' }],
  });
  t.teardown(() => stopNode(root));
  const rootUrl = `http://127.0.0.1:${root.config.listen!.port}`;
  const mid = await startNode({
    id: 'mid', listen: true, parent: { url: rootUrl, token: 'mid-token-report' },
    children: [{ id: 'leaf-a', token: 'leaf-a-token-report' }, { id: 'leaf-b', token: 'leaf-b-token-report' }],
  });
  t.teardown(() => stopNode(mid));
  const midUrl = `http://127.0.0.1:${mid.config.listen!.port}`;
  const leafA = await startNode({ id: 'leaf-a', parent: { url: midUrl, token: 'leaf-a-token-report' } });
  t.teardown(() => stopNode(leafA));
  const leafB = await startNode({ id: 'leaf-b', parent: { url: midUrl, token: 'leaf-b-token-report' } });
  t.teardown(() => stopNode(leafB));
  const all = [root, mid, leafA, leafB];

  await leafA.sql(`INSERT INTO person (uuid, name) VALUES (?, 'at leaf-a')`, [uuid('a', 1)]);
  await leafB.sql(`INSERT INTO person (uuid, name) VALUES (?, 'at leaf-b')`, [uuid('b', 1)]);
  await settle(all, [leafA, leafB, mid]);

  const doc = await statusJson(root);
  const nodes = byId(doc);
  t.same(doc.nodes.map((n) => [n.id, n.parent, n.depth]), [['root', null, 0], ['aunt', 'root', 1], ['mid', 'root', 1], ['leaf-a', 'mid', 2], ['leaf-b', 'mid', 2]],
    'the whole tree, each node under its parent');
  for (const id of ['mid', 'leaf-a', 'leaf-b']) {
    const n = nodes.get(id)!;
    t.match(n.lastSuccess, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `${id}: its last success, an ISO time with its zone`);
    t.ok(n.report, `${id}: its report arrived`);
    t.same(n.alerts.filter((a) => a.kind !== 'version'), [], `${id}: no alert`);
    t.ok(n.history.length > 0 && n.history.every((h) => h.result === 'ok'), `${id}: its exchanges (${n.history.length})`);
  }
  t.match(nodes.get('leaf-a')!.report, { node: 'leaf-a', parent: 'mid', pending: { up: 0 }, quarantined: 0, capture: { running: true, behindBytes: 0 } });
  t.match(nodes.get('leaf-a')!.history[0], { setsUp: Number, bytesUp: Number, bytesDown: Number, durationMs: Number });
  t.ok(nodes.get('leaf-a')!.history.some((h) => h.setsUp === 1), 'the round that carried leaf-a\'s change up');
  t.match(nodes.get('aunt'), { report: null, lastSuccess: null, alerts: [{ kind: 'silent', severity: 'error' }] }, 'a child never seen is silent');
  t.equal(nodes.get('root')!.alerts.length, 0, 'the root itself is fine');
  t.match(nodes.get('mid')!.report?.schema, { hash: nodes.get('root')!.report?.schema.hash, tables: 4 }, 'the same synced tables everywhere');

  // both sides keep the rounds: mid toward root, root from mid
  t.ok((await roundsWith(mid.node.db, 'spokesync', 'root', 5)).length > 0, 'mid recorded its rounds with root');
  t.ok((await roundsWith(root.node.db, 'spokesync', 'mid', 5)).length > 0, 'root recorded its rounds with mid');

  // leaf-b stops; the others go on exchanging
  await leafB.pause();
  const silent = await until('leaf-b silent at the root', async () => {
    await leafA.node.syncWithParent();
    await mid.node.syncWithParent();
    const d = byId(await statusJson(root));
    return d.get('leaf-b')?.alerts.some((a) => a.kind === 'silent') ? d : null;
  });
  t.match(silent.get('leaf-b')!.alerts.find((a) => a.kind === 'silent'), { severity: 'error', message: /^silent for \d+ s: no successful exchange with mid since / });
  t.notOk(silent.get('leaf-a')!.alerts.some((a) => a.kind === 'silent'), 'leaf-a, still exchanging, is not silent');
  t.notOk(silent.get('mid')!.alerts.some((a) => a.kind === 'silent'), 'nor is mid');
  await leafB.resume();

  // a forged report from mid: about its sibling, about root, about root's own children list; and one true node below it
  const forged = encodeReport([
    { report: silent.get('mid')!.report! },
    { report: { ...silent.get('leaf-a')!.report!, node: 'aunt', parent: 'mid' } },
    { report: { ...silent.get('leaf-a')!.report!, node: 'root', parent: 'mid' } },
    { report: { ...silent.get('leaf-a')!.report!, node: 'leaf-c', parent: 'mid' } },
  ]).value;
  const body = await batchBuffer({ version: 1, from: 'mid', to: 'root', seq: '900', ack: '0', more: false }, []);
  const res = await fetch(`${rootUrl}${EXCHANGE_PATH}`, {
    method: 'POST', body, headers: { authorization: 'Bearer mid-token-report', 'content-type': 'application/xml', [REPORT_HEADER]: forged },
  });
  t.equal(res.status, 200, 'the exchange itself goes on');
  await res.arrayBuffer();
  const refusedLine = await until('the refusal in root\'s log', async () => lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'status report entries refused: a child reports only on itself and the nodes below it'));
  t.match(refusedLine, { level: 'warn', child: 'mid', count: 2 });
  t.same((refusedLine.refused as Array<{ node: string }>).map((r) => r.node).sort(), ['aunt', 'root']);
  const after = byId(await statusJson(root));
  t.equal(after.get('aunt')!.report, null, 'nothing stored about the sibling');
  t.equal(after.get('root')!.parent, null, 'root is still the root');
  t.equal(after.get('leaf-c')?.parent, 'mid', 'a node below mid is taken');
  const [owner] = await root.node.db.query<{ peer: string }>("SELECT peer FROM spokesync.origins WHERE origin = 'leaf-c'");
  t.equal(owner?.peer, 'mid', 'and belongs to mid from now on, as its change sets would');
});

void t.test('exchange history keeps the newest rounds of each peer', async (t) => {
  const n = await startNode({ id: 'keeper' });
  t.teardown(() => stopNode(n));
  for (let i = 0; i < 12; i++) {
    await recordRound(n.node.db, 'spokesync', {
      peer: 'kid', role: 'child', startedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)), durationMs: i, bytesUp: i, bytesDown: 0, setsUp: 0, setsDown: 0, result: 'ok',
    }, 5);
    await recordRound(n.node.db, 'spokesync', {
      peer: 'other', role: 'child', startedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)), durationMs: i, bytesUp: 0, bytesDown: 0, setsUp: 0, setsDown: 0, result: 'ok',
    }, 8);
  }
  const kid = await roundsWith(n.node.db, 'spokesync', 'kid', 100);
  t.same(kid.map((r) => r.durationMs), [11, 10, 9, 8, 7], 'the newest five of kid, newest first');
  t.equal(kid[0]!.at, '2026-01-01T00:00:11.000Z');
  t.equal((await roundsWith(n.node.db, 'spokesync', 'other', 100)).length, 8, 'each peer its own bound');
});

void t.test('older peers: a parent that keeps no reports is sent none; a child that sends none still exchanges', async (t) => {
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'kid', token: 'kid-token-mixed' }] });
  t.teardown(() => stopNode(hub));
  // an older parent: the same node served by a server that asks for no reports
  let reports = 0;
  const old = new ExchangeServer({
    listen: { host: '127.0.0.1', port: 0, maxBodyBytes: 1 << 20, maxInflatedBytes: 8 << 20 },
    children: hub.config.children, core: hub.node.core, routeFor: (c) => routeTo(hub.config, c, 'child'), log: hub.node.log,
    front: async (req) => {
      if (req.headers[REPORT_HEADER] !== undefined) reports++;
      return false;
    },
  });
  await old.start();
  t.teardown(() => old.stop());
  const kid = await startNode({ id: 'kid', parent: { url: old.url, token: 'kid-token-mixed' } });
  t.teardown(() => stopNode(kid));
  await kid.sql(`INSERT INTO person (uuid, name) VALUES (?, 'to an older parent')`, [uuid('k', 1)]);
  await kid.node.capture.caughtUp(30_000);
  t.match(await kid.node.syncWithParent(), { sent: 1, drained: true });
  t.equal(reports, 0, 'no report header went to it');

  // an older child (no reports) against a parent that keeps them
  await kid.sql(`INSERT INTO person (uuid, name) VALUES (?, 'from an older child')`, [uuid('k', 2)]);
  await kid.node.capture.caughtUp(30_000);
  const older = new ExchangeClient({
    parent: { ...kid.config.parent!, url: `http://127.0.0.1:${hub.config.listen!.port}` }, node: 'kid', core: kid.node.core,
    db: kid.node.db, stateSchema: 'spokesync', routeFor: (p) => routeTo(kid.config, p, 'parent'), log: kid.node.log,
  });
  t.match(await older.sync(), { sent: 1, drained: true });
  t.same(await hub.node.db.query('SELECT node FROM spokesync.node_reports'), [], 'no report kept: none came');
  t.ok((await roundsWith(hub.node.db, 'spokesync', 'kid', 5)).length > 0, 'its rounds are recorded all the same');
});
