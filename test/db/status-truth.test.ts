// `spokesync status` tells the truth: an idle node whose account lacks BINLOG
// ADMIN (its own state writes reach the binlog) is not behind; the last success
// and the last attempt are apart, with their zone; a parent that is gone is an
// error naming the URL tried; a refused token says the fix on both sides, and
// the parent names the child and its address, once per window.
import t from 'tap';
import { createLogger } from '../../apply/core/log.js';
import { isSpokesyncError } from '../../apply/core/errors.js';
import { formatStatus, nodeStatus } from '../../agent/routing/node-status.js';
import { ExchangeClient } from '../../agent/exchange/client.js';
import { routeTo } from '../../agent/routing/filters.js';
import { startNode, stopNode, uuid } from '../helpers/sync-net.js';

async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

void t.test('an idle node without BINLOG ADMIN is caught up, not a few hundred bytes behind', async (t) => {
  const n = await startNode({ id: 'idle', lowPrivilege: true });
  t.teardown(() => stopNode(n));
  await n.sql(`INSERT INTO person (uuid, name) VALUES (?, 'one')`, [uuid('i', 1)]);
  await n.node.capture.caughtUp(30_000);
  t.equal(n.node.capture.status().stateBinlogged, true, 'capture\'s own writes go to the binlog (no BINLOG ADMIN)');
  // the journal write that holds the row, and its checkpoint, is itself in the binlog after that checkpoint
  const s = await nodeStatus(n.node.db, n.config, n.node.reader);
  t.ok(s.capture.binlogEnd.pos > (s.capture.pos ?? 0), `the binlog goes on past the checkpoint (${s.capture.pos} of ${s.capture.binlogEnd.pos}): spokesync's own writes`);
  t.equal(s.capture.behindBytes, 0, 'nothing capture has to journal');
  t.equal(s.capture.behindExact, true, 'the account reads the binlog events');
  t.match(formatStatus(s), /caught up/);

  // and it stays idle: capture does not checkpoint past its own checkpoint writes again and again
  const end = async (): Promise<number> => (await n.node.db.query<{ Position: number | string }>('SHOW MASTER STATUS')).map((r) => Number(r.Position))[0]!;
  const before = await end();
  // two of capture's checkpoint delays (5 s each): a node chasing its own writes adds a transaction in each
  await new Promise((r) => setTimeout(r, 11_000));
  t.equal(await end(), before, 'the binlog of an idle node does not grow');

  // a change to a synced table after the checkpoint is behind until capture has it
  await n.node.capture.stop();
  await n.sql(`INSERT INTO person (uuid, name) VALUES (?, 'two')`, [uuid('i', 2)]);
  const behind = await nodeStatus(n.node.db, n.config, n.node.reader);
  t.ok((behind.capture.behindBytes ?? 0) > 0, `a row not yet journaled is behind (${behind.capture.behindBytes} bytes)`);
});

void t.test('last success and last attempt apart; a gone parent is named by its URL', async (t) => {
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'leaf', token: 'leaf-token-truth' }] });
  t.teardown(() => stopNode(hub));
  const hubUrl = `http://127.0.0.1:${hub.config.listen!.port}`;
  const leaf = await startNode({ id: 'leaf', parent: { url: hubUrl, token: 'leaf-token-truth', maxTries: 1 } });
  t.teardown(() => stopNode(leaf));
  await leaf.node.syncWithParent();
  const ok = (await nodeStatus(leaf.node.db, leaf.config, leaf.node.reader)).peers[0]!;
  t.match(ok, { peer: 'hub', lastResult: 'ok' });
  t.match(ok.lastSuccess, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO time with its zone');
  t.equal(ok.lastContact, ok.lastSuccess);

  await hub.pause();
  const err = await leaf.node.syncWithParent().catch((e: unknown) => e);
  t.ok(isSpokesyncError(err, 'SPOKESYNC_E_HTTP'));
  t.match((err as Error).message, new RegExp(`ECONNREFUSED ${hubUrl.replace(/[.]/g, '\\.')}/v1/`), 'the error names the URL it tried');
  const s = await nodeStatus(leaf.node.db, leaf.config, leaf.node.reader);
  const p = s.peers[0]!;
  t.equal(p.lastSuccess, ok.lastSuccess, 'the failure leaves the last success as it was');
  t.ok(Date.parse(p.lastContact!) > Date.parse(ok.lastSuccess!), 'the last attempt is later');
  t.match(p.lastResult, /^SPOKESYNC_E_HTTP: .*ECONNREFUSED http:\/\//);
  const text = formatStatus(s);
  t.match(text, /last success {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d \(/, 'local time with its offset');
  t.match(text, /last attempt {2}.*FAILED SPOKESYNC_E_HTTP/);
  await hub.resume();
});

void t.test('a refused token: the fix on both sides; the parent names the child and its address, once per window', async (t) => {
  const lines: string[] = [];
  const hubLog = createLogger({ write: (l) => lines.push(l) });
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'leaf', token: 'the-right-token' }], log: hubLog });
  t.teardown(() => stopNode(hub));
  const hubUrl = `http://127.0.0.1:${hub.config.listen!.port}`;
  const leaf = await startNode({ id: 'leaf', parent: { url: hubUrl, token: 'the-right-token', maxTries: 1 } });
  t.teardown(() => stopNode(leaf));
  await leaf.node.syncWithParent();
  await leaf.sql(`INSERT INTO person (uuid, name) VALUES (?, 'held back')`, [uuid('w', 1)]);
  await leaf.node.capture.caughtUp(30_000);

  const wrong = new ExchangeClient({
    parent: { ...leaf.config.parent!, token: 'a-stale-token' }, node: 'leaf', core: leaf.node.core, db: leaf.node.db,
    stateSchema: 'spokesync', routeFor: (p) => routeTo(leaf.config, p, 'parent'), log: leaf.node.log, observer: leaf.node.admin.reporter,
  });
  for (let i = 0; i < 3; i++) {
    const e = await wrong.sync().catch((x: unknown) => x);
    t.ok(isSpokesyncError(e, 'SPOKESYNC_E_AUTH'), `attempt ${i + 1}: SPOKESYNC_E_AUTH`);
    t.match((e as Error).message, /the parent refused this node's token: check children\[\]\.token at the parent and parent\.token here/);
  }
  const child = (await nodeStatus(leaf.node.db, leaf.config, leaf.node.reader)).peers[0]!;
  t.match(child.lastResult, /^SPOKESYNC_E_AUTH: the parent refused this node's token/, 'the child\'s status says so');

  const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => String(l.msg).startsWith('refused: wrong token'));
  t.equal(refused.length, 1, 'logged once in the window for three wrong tokens');
  t.match(refused[0], { level: 'warn', child: 'leaf', address: '127.0.0.1', fix: /children\[\]\.token for 'leaf' here and parent\.token at 'leaf'/ });
  const atHub = await until('the refusal in the parent\'s status', async () => {
    const p = (await nodeStatus(hub.node.db, hub.config, hub.node.reader)).peers.find((x) => x.peer === 'leaf');
    return p?.lastResult?.startsWith('SPOKESYNC_E_AUTH') ? p : null;
  });
  t.match(atHub.lastResult, /a wrong token came from 127\.0\.0\.1/, 'the parent\'s status names the address');
  t.ok(atHub.lastSuccess !== null, 'and keeps the last success');

  const r = await leaf.node.syncWithParent();
  t.equal(r.sent, 1, 'with the right token the held change goes');
});
