// Status reports over USB files: on root ← mid ← leaf, where mid reaches root
// only by USB files and leaf reaches mid over the network, mid's file carries
// its report and leaf's; root's import keeps them as an exchange would and
// records the round, so root's status.json shows mid and leaf. A forged or
// unreadable report in a file is dropped and logged; the file's change sets
// apply all the same.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, silentLogger } from '../../apply/core/log.js';
import { SpokesyncNode } from '../../agent/node.js';
import { roundsWith } from '../../agent/admin/history.js';
import { encodeReport } from '../../agent/admin/report-wire.js';
import type { StatusDoc, StatusNode } from '../../agent/admin/status-doc.js';
import { exportFile, importFile, type UsbDeps } from '../../agent/usb/transfer.js';
import { allCaughtUp, settle, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

const ADMIN = 'root-admin-token-usb-report';

async function statusJson(n: NetNode): Promise<StatusDoc> {
  const res = await fetch(`${n.adminUrl!}/status.json`, { headers: { authorization: `Bearer ${ADMIN}` } });
  if (res.status !== 200) throw new Error(`status.json: ${res.status} ${await res.text()}`);
  return (await res.json()) as StatusDoc;
}

const byId = (d: StatusDoc): Map<string, StatusNode> => new Map(d.nodes.map((n) => [n.id, n]));

/** mid's USB deps with a report of its own making: a child holding its token may write any. */
const forging = (n: NetNode, value: string): UsbDeps => ({
  ...n.node.usb(), reporting: { fileReport: async () => ({ value, nodes: 1 }), round: async () => undefined },
});

void t.test('a child\'s USB file carries its status report and its subtree\'s', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-usb-report-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const f = (name: string): string => join(dir, name);
  const lines: string[] = [];
  const logged = (msg: string): Array<Record<string, unknown>> => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);
  const root = await startNode({
    id: 'root', listen: true, admin: { token: ADMIN }, log: createLogger({ write: (l) => lines.push(l) }),
    children: [{ id: 'mid', token: 'mid-token-usb-report' }, { id: 'aunt', token: 'aunt-token-usb-report' }],
  });
  t.teardown(() => stopNode(root));
  // mid's parent is never reached over the network: files only
  const mid = await startNode({
    id: 'mid', listen: true, parent: { url: 'http://127.0.0.1:9', token: 'mid-token-usb-report' }, children: [{ id: 'leaf', token: 'leaf-token-usb-report' }],
  });
  t.teardown(() => stopNode(mid));
  const leaf = await startNode({ id: 'leaf', parent: { url: `http://127.0.0.1:${mid.config.listen!.port}`, token: 'leaf-token-usb-report' } });
  t.teardown(() => stopNode(leaf));

  for (let i = 1; i <= 3; i++) await leaf.sql(`INSERT INTO person (uuid, name) VALUES (?, 'at leaf')`, [uuid('l', i)]);
  await mid.sql(`INSERT INTO person (uuid, name) VALUES (?, 'at mid')`, [uuid('m', 1)]);
  await settle([mid, leaf], [leaf]);

  const before = byId(await statusJson(root));
  t.match(before.get('mid'), { report: null, lastSuccess: null, alerts: [{ kind: 'silent' }] }, 'nothing known of mid before its file');

  const out = await exportFile(mid.node.usb(), { peer: 'root', out: f('mid-1.usb') });
  t.match(out, { peer: 'root', entries: 4, reported: 2 }, 'mid\'s file: its four change sets, and the report of mid and leaf');
  const imp = await importFile(root.node.usb(), { in: f('mid-1.usb'), reply: f('root-1.usb') });
  t.match(imp, { sender: 'mid', applied: 4 });

  const doc = byId(await statusJson(root));
  t.same([...doc.values()].map((n) => [n.id, n.parent, n.depth]), [['root', null, 0], ['aunt', 'root', 1], ['mid', 'root', 1], ['leaf', 'mid', 2]],
    'root sees mid and, through mid\'s file, leaf');
  const m = doc.get('mid')!;
  // (mid learns its parent's id from root's first file: until then it cannot count what waits for it)
  t.match(m.report, { node: 'mid', parent: 'root', pending: { up: null, down: 0 }, conflicts: 0, conflictsUnreviewed: 0, capture: { running: true } }, 'mid\'s own report');
  t.match(m, { lastResult: 'ok', clockOffsetMs: null }, 'a successful exchange; the report\'s time says nothing of mid\'s clock');
  t.match(m.lastSuccess, /^\d{4}-\d\d-\d\dT/, 'mid\'s last success: the import');
  t.same(m.alerts.filter((a) => a.kind !== 'version'), [], 'no alert: not silent, no clock alert');
  t.equal(m.history.length, 1);
  t.match(m.history[0], { result: 'ok', setsUp: 4, setsDown: 0 }, 'the import is an exchange round with mid');
  t.ok(m.history[0]!.bytesUp > 0 && m.history[0]!.bytesDown > 0, 'with the bytes of the file and of the reply');
  const l = doc.get('leaf')!;
  t.match(l.report, { node: 'leaf', parent: 'mid', pending: { up: 0 } }, 'leaf\'s report, relayed');
  t.ok(l.lastSuccess !== null && l.history.length > 0, 'with what mid saw of leaf');

  // mid takes root's reply: its own round with root is recorded, and it carries no report down
  const back = await importFile(mid.node.usb(), { in: f('root-1.usb') });
  t.equal(back.sender, 'root');
  const midRounds = await roundsWith(mid.node.db, 'spokesync', 'root', 5);
  t.equal(midRounds.length, 1);
  t.match(midRounds[0], { result: 'ok', setsUp: 0, setsDown: 0 }, 'mid recorded the round with root');
  t.ok(midRounds[0]!.bytesDown > 0, 'the bytes of root\'s file');

  // a forged report: about root itself and mid's sibling, besides mid's own; the change sets still apply
  await mid.sql(`INSERT INTO person (uuid, name) VALUES (?, 'beside a forged report')`, [uuid('m', 2)]);
  await allCaughtUp([mid]);
  const own = doc.get('mid')!.report!;
  const forged = encodeReport([
    { report: { ...own, at: new Date().toISOString() } },
    { report: { ...l.report!, node: 'aunt', parent: 'mid' } },
    { report: { ...l.report!, node: 'root', parent: 'mid' } },
  ]).value;
  await exportFile(forging(mid, forged), { peer: 'root', out: f('mid-2.usb') });
  t.match(await importFile(root.node.usb(), { in: f('mid-2.usb') }), { applied: 1 }, 'the file\'s change set applied');
  t.match(logged('status report entries refused: a child reports only on itself and the nodes below it'), [{ level: 'warn', child: 'mid', count: 2 }]);
  const after = byId(await statusJson(root));
  t.equal(after.get('aunt')!.report, null, 'nothing stored about the sibling');
  t.equal(after.get('root')!.parent, null, 'root is still the root');
  t.ok(after.get('mid')!.report, 'mid\'s own entry kept');

  // a report that cannot be read at all: dropped, logged; the change sets apply
  await mid.sql(`INSERT INTO person (uuid, name) VALUES (?, 'beside an unreadable report')`, [uuid('m', 3)]);
  await allCaughtUp([mid]);
  await exportFile(forging(mid, 'bm90IGEgcmVwb3J0'), { peer: 'root', out: f('mid-3.usb') });
  t.match(await importFile(root.node.usb(), { in: f('mid-3.usb') }), { applied: 1 }, 'applied');
  t.match(logged('status report dropped: it cannot be read'), [{ level: 'warn', child: 'mid' }]);
  // and one whose first node is not mid
  await mid.sql(`INSERT INTO person (uuid, name) VALUES (?, 'beside another node\\'s report')`, [uuid('m', 4)]);
  await allCaughtUp([mid]);
  await exportFile(forging(mid, encodeReport([{ report: { ...l.report!, node: 'aunt', parent: 'root' } }]).value), { peer: 'root', out: f('mid-4.usb') });
  t.match(await importFile(root.node.usb(), { in: f('mid-4.usb') }), { applied: 1 }, 'applied');
  t.match(logged('status report refused: its first node is not the child that sent it'), [{ child: 'mid', node: 'aunt' }]);
  t.equal(byId(await statusJson(root)).get('aunt')!.report, null, 'still nothing about aunt');
  const [{ n } = { n: 0 }] = await root.node.db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM app.person WHERE uuid LIKE 'm-%'`);
  t.equal(Number(n), 4, 'every change set of mid\'s files reached root');
  t.equal((await roundsWith(root.node.db, 'spokesync', 'mid', 10)).length, 4, 'each import a round');

  // an export beside the process that holds mid (as `spokesync export` beside the daemon): that process's capture is reported
  const beside = await SpokesyncNode.open(mid.config, silentLogger, { lock: false });
  t.teardown(() => beside.close());
  await exportFile(beside.usb(), { out: f('mid-5.usb') });
  await importFile(root.node.usb(), { in: f('mid-5.usb') });
  const [cp] = await mid.node.db.query<{ binlog_file: string; binlog_pos: number }>('SELECT binlog_file, binlog_pos FROM spokesync.checkpoint WHERE id = 1');
  t.match(byId(await statusJson(root)).get('mid')!.report, {
    pending: { up: 0 }, capture: { running: true, position: `${cp!.binlog_file}:${cp!.binlog_pos}`, lagSeconds: null },
  }, 'running, at its checkpoint; and now mid knows its parent: nothing waits for it');
});
