// The child's client against a real parent server over loopback, through the
// link proxy: drains both ways in capped batches, survives connections cut
// mid-request and mid-response (each change is taken once), backs off through
// p-retry (doubling, jittered), and gives up at once on permanent failures.
import t from 'tap';
import { openDb, type Db } from '../../apply/core/db.js';
import { createLogger, silentLogger } from '../../apply/core/log.js';
import { ExchangeClient } from '../../agent/exchange/client.js';
import { ExchangeServer } from '../../agent/exchange/http-server.js';
import { PARENT_ID_KEY, getCursor, getMeta } from '../../agent/routing/cursors.js';
import { routeTo } from '../../agent/routing/filters.js';
import type { ParentConfig } from '../../agent/config/types.js';
import { startServer } from '../../deploy/sandbox/mariadb.js';
import { batchBuffer } from '../../agent/exchange/wire.js';
import { uploadId } from '../../agent/exchange/resume.js';
import { startProxy } from '../helpers/net-proxy.js';
import { createServer, request } from 'node:http';
import { changeSet, journal, nodeConfig, rigNode, type RigNode } from '../helpers/exchange-rig.js';

const TOKEN = 'leaf-token-a1';

interface Retry { readonly time: string; readonly attempt: number; readonly delayUpToMs: number }

/** A logger keeping the client's retry warnings. */
const retryLog = (into: Retry[]) => createLogger({
  level: 'warn',
  write: (l) => {
    const j = JSON.parse(l) as Retry & { msg: string };
    if (j.msg === 'exchange attempt failed, retrying') into.push(j);
  },
});

async function setup(
  t: { teardown(fn: () => unknown): void }, db: Db, name: string, compression: ParentConfig['compression'] = 'gzip',
  batch: ParentConfig['batch'] = { records: 3, bytes: 64 * 1024 },
) {
  const hubConfig = nodeConfig(`hub-${name}`, { children: [{ id: `leaf-${name}`, token: TOKEN }] });
  const hub = await rigNode(db, hubConfig);
  const refused: string[] = [];
  const server = new ExchangeServer({
    listen: { host: '127.0.0.1', port: 0, maxBodyBytes: 1 << 20, maxInflatedBytes: 8 << 20 },
    children: hubConfig.children,
    core: hub.core,
    routeFor: (c) => routeTo(hubConfig, c, 'child'),
    log: createLogger({ level: 'info', write: (l) => refused.push(l) }),
  });
  await server.start();
  t.teardown(() => server.stop());
  const proxy = await startProxy({ target: { host: '127.0.0.1', port: server.port } });
  t.teardown(() => proxy.close());
  const parent: ParentConfig = {
    url: proxy.url, token: TOKEN, interval: 1000, timeout: 5000, maxTries: 6, compression, batch,
  };
  const leafConfig = nodeConfig(`leaf-${name}`, { parent });
  const leaf = await rigNode(db, leafConfig);
  const retries: Retry[] = [];
  const client = new ExchangeClient({
    parent, node: leaf.id, core: leaf.core, db, stateSchema: leaf.stateSchema,
    routeFor: (p) => routeTo(leafConfig, p, 'parent'), log: retryLog(retries), backoffBaseMs: 40,
  });
  return { hub, leaf, server, proxy, client, retries, refused };
}

async function fill(db: Db, n: RigNode, origin: string, count: number, from = 1): Promise<void> {
  for (let i = from; i < from + count; i++) await journal(db, n.stateSchema, changeSet(origin, i));
}

const ids = (n: RigNode) => n.applier.taken.map((x) => x.entry.cs.id);

void t.test('client', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());

  await t.test('drains both ways in capped batches and learns the parent id', async (t) => {
    const { hub, leaf, client, proxy } = await setup(t, db, 'a', 'br');
    await fill(db, leaf, 'leaf-a', 7);
    await fill(db, hub, 'hub-a', 5);
    const r = await client.sync();
    t.equal(r.parent, 'hub-a');
    t.equal(await getMeta(db, leaf.stateSchema, PARENT_ID_KEY), 'hub-a');
    t.ok(r.drained, 'drained');
    t.equal(r.sent, 7);
    t.equal(r.received, 5);
    t.same(ids(hub), Array.from({ length: 7 }, (_, i) => `leaf-a:${i + 1}`), 'in order, once');
    t.same(ids(leaf), Array.from({ length: 5 }, (_, i) => `hub-a:${i + 1}`));
    t.ok(r.rounds >= 3 && r.rounds <= 5, `${r.rounds} rounds of at most 3 records`);
    const up = await getCursor(db, leaf.stateSchema, 'hub-a');
    const down = await getCursor(db, hub.stateSchema, 'leaf-a');
    t.same([up.ackedSeq, up.receivedSeq, up.lastResult], ['7', '5', 'ok']);
    t.same([down.ackedSeq, down.receivedSeq], ['5', '7'], 'the parent knows the leaf took everything');
    const again = await client.sync();
    t.same([again.rounds, again.sent, again.received, again.drained], [1, 0, 0, true], 'nothing left');
    t.ok(proxy.stats.bytesUp > 0);
  });

  await t.test('connections cut mid-request and mid-response: resumes, each change once', async (t) => {
    const { hub, leaf, client, proxy, retries } = await setup(t, db, 'b');
    await fill(db, leaf, 'leaf-b', 6);
    await fill(db, hub, 'hub-b', 6);
    await client.parentId();
    // connection 1: cut after 300 request bytes; 2: cut 40 bytes into the response (the
    // parent applied the batch, the answer is lost); 3: mid-request again; then clean
    proxy.cutNext(
      { direction: 'up', afterBytes: 300 },
      { direction: 'down', afterBytes: 40 },
      { direction: 'up', afterBytes: 100 },
      { direction: 'down', afterBytes: 200 },
    );
    const r = await client.sync();
    t.ok(r.drained);
    t.ok(proxy.stats.cuts >= 4, `${proxy.stats.cuts} cuts`);
    t.ok(retries.length >= 4, `backed off ${retries.length} times`);
    t.same(ids(hub), Array.from({ length: 6 }, (_, i) => `leaf-b:${i + 1}`), 'each leaf change taken once, in order');
    t.same(ids(leaf), Array.from({ length: 6 }, (_, i) => `hub-b:${i + 1}`));
    t.equal(hub.applier.seen.size, 6);
  });

  await t.test('a lost answer costs a probe, not the batch again', async (t) => {
    const { hub, leaf, client, proxy, refused } = await setup(t, db, 'f');
    await client.parentId();
    await fill(db, leaf, 'leaf-f', 3);
    proxy.cutNext({ direction: 'down', afterBytes: 30 });
    const r = await client.sync();
    t.ok(r.drained);
    const exchanges = refused.filter((l) => l.includes('"msg":"exchange"')).map((l) => JSON.parse(l) as { received: number; replayed: number });
    t.same(exchanges.map((e) => [e.received, e.replayed]), [[3, 0], [0, 0]], 'the batch went once; a probe learned it had arrived');
    t.same(ids(hub), ['leaf-f:1', 'leaf-f:2', 'leaf-f:3']);
  });

  await t.test('an upload cut part way is resumed: only the rest goes up, and each change is taken once', async (t) => {
    const { hub, leaf, client, proxy, refused } = await setup(t, db, 'g', 'none', { records: 100, bytes: 1 << 20 });
    await client.parentId();
    await fill(db, leaf, 'leaf-g', 60);
    const pending = await leaf.core.next(routeTo(leaf.config, 'hub-g', 'parent'), { records: 100, bytes: 1 << 20 });
    const size = (await batchBuffer(pending.header, pending.entries)).length;
    t.ok(size > 7000, `a batch of ${size} B`);
    // cut 5000 bytes into the upload, then again 1000 bytes into the rest
    proxy.cutNext({ direction: 'up', afterBytes: 5000 }, { direction: 'up', afterBytes: 1000 });
    const up0 = proxy.stats.bytesUp;
    const r = await client.sync();
    t.ok(r.drained);
    t.equal(r.sent, 60);
    t.same(ids(hub), Array.from({ length: 60 }, (_, i) => `leaf-g:${i + 1}`), 'each change taken once, in order');
    const up = proxy.stats.bytesUp - up0;
    t.ok(up < size + 3000, `${up} B went up for a ${size} B batch (sent whole again it would be over ${size + 5000})`);
    const exchanges = refused.filter((l) => l.includes('"msg":"exchange"')).map((l) => JSON.parse(l) as { received: number });
    t.same(exchanges.map((e) => e.received), [0, 0, 60], 'two probes, then the joined batch');
  });

  await t.test('a resumed body that does not match its name is refused, and the batch goes whole', async (t) => {
    const { hub, leaf, client, proxy } = await setup(t, db, 'h', 'none', { records: 100, bytes: 1 << 20 });
    await client.parentId();
    await fill(db, leaf, 'leaf-h', 40);
    // a continuation naming an upload the parent does not hold
    const res = await fetch(`${proxy.url}/v1/exchange`, {
      method: 'POST', body: 'x'.repeat(100),
      headers: { authorization: `Bearer ${TOKEN}`, 'x-spokesync-upload': 'A'.repeat(22), 'x-spokesync-offset': '500' },
    });
    t.equal(res.status, 409);
    t.match(await res.text(), /not held here/);
    // a whole body whose name is not its digest
    const bad = await fetch(`${proxy.url}/v1/exchange`, {
      method: 'POST', body: await batchBuffer({ version: 1, from: 'leaf-h', to: 'hub-h', seq: '900', ack: '0', more: false }, []),
      headers: { authorization: `Bearer ${TOKEN}`, 'x-spokesync-upload': 'B'.repeat(22) },
    });
    t.equal(bad.status, 400);
    t.match(await bad.text(), /does not match its upload id/);
    t.ok((await client.sync()).drained, 'the real batch still goes');
    t.same(ids(hub), Array.from({ length: 40 }, (_, i) => `leaf-h:${i + 1}`), 'only the real batch was applied, once');
  });

  await t.test('an answer cut part way is resumed: only the rest comes down, and each change is taken once', async (t) => {
    const { hub, leaf, client, proxy, refused } = await setup(t, db, 'i', 'none', { records: 100, bytes: 1 << 20 });
    await client.parentId();
    await fill(db, hub, 'hub-i', 60);
    const pending = await hub.core.next(routeTo(hub.config, 'leaf-i', 'child'), { records: 100, bytes: 1 << 20 });
    const size = (await batchBuffer(pending.header, pending.entries)).length;
    t.ok(size > 7000, `an answer of ${size} B`);
    // cut 5000 bytes into the answer, then again 1000 bytes into the rest
    proxy.cutNext({ direction: 'down', afterBytes: 5000 }, { direction: 'down', afterBytes: 1000 });
    const down0 = proxy.stats.bytesDown;
    const r = await client.sync();
    t.ok(r.drained);
    t.equal(r.received, 60);
    t.same(ids(leaf), Array.from({ length: 60 }, (_, i) => `hub-i:${i + 1}`), 'each change taken once, in order');
    const down = proxy.stats.bytesDown - down0;
    t.ok(down < size + 3000, `${down} B came down for a ${size} B answer (sent whole again it would be over ${size + 6000})`);
    const exchanges = refused.filter((l) => l.includes('"msg":"exchange"')).map((l) => JSON.parse(l) as { sent?: number; resumedAnswer?: string; bytesOut: number });
    const resumed = exchanges.filter((e) => e.resumedAnswer !== undefined);
    t.equal(resumed.length, 2, 'two probes each got the rest of the answer');
    t.equal(new Set(resumed.map((e) => e.resumedAnswer)).size, 1, 'of the same answer');
    t.equal(exchanges[0]?.sent, 60, 'which was built once');

    // the parent's side, request by request: a probe naming an answer it does not hold, or a
    // request that carries changes, gets a fresh answer; a probe naming its last answer, the rest
    await fill(db, hub, 'hub-i', 30, 61);
    const post = async (headers: Record<string, string>, entries = 0) => {
      const mine = entries > 0 ? (await leaf.core.next(routeTo(leaf.config, 'hub-i', 'parent'), { records: entries, bytes: 1 << 20 })).entries : [];
      const res = await fetch(`${proxy.url}/v1/exchange`, {
        method: 'POST', body: await batchBuffer({ version: 1, from: 'leaf-i', to: 'hub-i', seq: '900', ack: '60', more: true }, mine),
        headers: { authorization: `Bearer ${TOKEN}`, 'accept-encoding': 'identity', ...headers },
      });
      return { status: res.status, name: res.headers.get('x-spokesync-answer'), offset: res.headers.get('x-spokesync-offset'), body: Buffer.from(await res.arrayBuffer()) };
    };
    const fresh = await post({ 'x-spokesync-answer-have': `${'C'.repeat(22)} 100` });
    t.equal(fresh.status, 200);
    t.equal(fresh.offset, null, 'an answer it does not hold: a fresh one');
    t.equal(fresh.name, uploadId(fresh.body), 'named by its digest');
    const rest = await post({ 'x-spokesync-answer-have': `${fresh.name} 100` });
    t.same([rest.status, rest.name, rest.offset], [200, fresh.name, '100'], 'its last answer: the rest');
    t.ok(Buffer.concat([fresh.body.subarray(0, 100), rest.body]).equals(fresh.body), 'which completes it');
    await fill(db, leaf, 'leaf-i', 1);
    const withChanges = await post({ 'x-spokesync-answer-have': `${fresh.name} 100` }, 1);
    t.same([withChanges.status, withChanges.offset], [200, null], 'a request with changes gets a fresh answer');
    t.not(withChanges.name, fresh.name);
  });

  await t.test('a rest that does not complete the answer held is refused, and the answer comes whole', async (t) => {
    const { hub, leaf, server } = await setup(t, db, 'j', 'none', { records: 100, bytes: 1 << 20 });
    await fill(db, hub, 'hub-j', 40);
    // a front that cuts the first named answer part way and spoils the rest it then carries
    const asked: string[] = [];
    let answers = 0;
    const front = createServer((req, res) => {
      const have = req.headers['x-spokesync-answer-have'];
      if (typeof have === 'string') asked.push(have);
      const up = request({ port: server.port, host: '127.0.0.1', path: req.url, method: req.method, headers: req.headers }, (r) => {
        const parts: Buffer[] = [];
        r.on('data', (c: Buffer) => parts.push(c));
        r.on('end', () => {
          const body = Buffer.concat(parts);
          const named = r.headers['x-spokesync-answer'] !== undefined;
          const n = named ? ++answers : 0;
          res.writeHead(r.statusCode ?? 502, r.headers);
          if (n === 1) {
            res.write(body.subarray(0, 3000));
            setTimeout(() => res.socket?.destroy(), 20);
          } else if (n === 2) {
            // still well-formed: one value changed (n37 → m37)
            const at = body.lastIndexOf('>n');
            if (at >= 0) body.write('m', at + 1);
            res.end(body);
          } else {
            res.end(body);
          }
        });
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
    t.teardown(() => new Promise<void>((r) => { front.closeAllConnections(); front.close(() => r()); }));
    const parent: ParentConfig = {
      url: `http://127.0.0.1:${(front.address() as { port: number }).port}`, token: TOKEN, interval: 1000, timeout: 5000, maxTries: 5,
      compression: 'none', batch: { records: 100, bytes: 1 << 20 },
    };
    const client = new ExchangeClient({
      parent, node: leaf.id, core: leaf.core, db, stateSchema: leaf.stateSchema,
      routeFor: (p) => routeTo(leaf.config, p, 'parent'), log: silentLogger, backoffBaseMs: 1,
    });
    const r = await client.sync();
    t.ok(r.drained);
    t.equal(asked.length, 1, 'one probe asked for the rest');
    t.match(asked[0], /^[A-Za-z0-9_-]{22} 3000$/, 'of the 3000 bytes it held');
    t.ok(answers >= 3, `${answers} named answers: cut, spoilt, whole`);
    t.same(ids(leaf), Array.from({ length: 40 }, (_, i) => `hub-j:${i + 1}`), 'the whole answer was taken, once');
    const values = JSON.stringify(leaf.applier.taken.map((x) => x.entry.cs.ops));
    t.ok(values.includes('"name":"n40"') && !values.includes('"name":"m'), 'and not the spoilt one');
  });

  await t.test('random drops on a slow link still converge', async (t) => {
    const { hub, leaf, client, proxy } = await setup(t, db, 'c');
    await fill(db, leaf, 'leaf-c', 9);
    await fill(db, hub, 'hub-c', 4);
    let seed = 7;
    proxy.set({ latencyMs: 5, dropRate: 0.05, rng: () => ((seed = (seed * 48271) % 2147483647) / 2147483647) });
    const started = Date.now();
    let r = await client.sync().catch((e: unknown) => e as Error);
    // a long run of drops may exhaust the tries; the next sync picks up where it stopped
    for (let i = 0; i < 5 && (r instanceof Error || !r.drained); i++) r = await client.sync().catch((e: unknown) => e as Error);
    t.ok(!(r instanceof Error) && r.drained, 'drained');
    t.same(ids(hub).length, 9);
    t.same(ids(leaf).length, 4);
    t.ok(Date.now() - started < 30_000);
  });

  await t.test('brotli children send spokesync-vbr, and fall back coding by coding for an older parent', async (t) => {
    const { hub, leaf, server, proxy } = await setup(t, db, 'e', 'br');
    await fill(db, leaf, 'leaf-e', 4);
    // an HTTP front that records request codings and refuses the ones it is told to, as an older parent would
    const seen: string[] = [];
    const refuse = new Set<string>();
    const front = createServer((req, res) => {
      const enc = String(req.headers['content-encoding'] ?? 'identity');
      seen.push(enc);
      if (refuse.has(enc)) {
        req.resume();
        res.writeHead(415).end('SPOKESYNC_E_HTTP: unsupported\n');
        return;
      }
      const up = request({ port: server.port, host: '127.0.0.1', path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
    t.teardown(() => new Promise<void>((r) => { front.closeAllConnections(); front.close(() => r()); }));
    const port = (front.address() as { port: number }).port;
    const parent: ParentConfig = {
      url: `http://127.0.0.1:${port}`, token: TOKEN, interval: 1000, timeout: 5000, maxTries: 3, compression: 'br',
      batch: { records: 2, bytes: 65536 },
    };
    const mk = () => new ExchangeClient({
      parent, node: leaf.id, core: leaf.core, db, stateSchema: leaf.stateSchema,
      routeFor: (p) => routeTo(leaf.config, p, 'parent'), log: silentLogger, backoffBaseMs: 1,
    });
    t.ok((await mk().sync()).drained);
    t.ok(seen.length >= 3 && seen.every((e) => e === 'spokesync-vbr' || e === 'identity'), `codings: ${seen.join(',')}`);

    // a parent that knows spokesync-ubr but not spokesync-vbr
    await fill(db, leaf, 'leaf-e', 2, 5);
    refuse.add('spokesync-vbr');
    seen.length = 0;
    t.ok((await mk().sync()).drained, 'still drains');
    t.same(seen.slice(0, 2), ['spokesync-vbr', 'spokesync-ubr'], 'fell back at once');
    t.ok(seen.slice(1).every((e) => e === 'spokesync-ubr'), `and stayed there: ${seen.join(',')}`);

    // a parent with neither
    await fill(db, leaf, 'leaf-e', 2, 7);
    refuse.add('spokesync-ubr');
    seen.length = 0;
    t.ok((await mk().sync()).drained, 'still drains');
    t.same(seen.slice(0, 3), ['spokesync-vbr', 'spokesync-ubr', 'br'], 'down to br');
    t.ok(seen.slice(2).every((e) => e === 'br'), `and stayed on br: ${seen.join(',')}`);
    t.same(ids(hub), Array.from({ length: 8 }, (_, i) => `leaf-e:${i + 1}`));
    t.equal(proxy.stats.bytesUp, 0, 'every request went through the front');
  });

  await t.test('permanent failures are not retried; transient ones are, then reported', async (t) => {
    const { client, proxy, retries, leaf, refused } = await setup(t, db, 'd');
    await client.parentId();
    const bad = new ExchangeClient({
      parent: { url: proxy.url, token: 'wrong', interval: 1000, timeout: 2000, maxTries: 5, compression: 'gzip', batch: { records: 10, bytes: 65536 } },
      node: leaf.id, core: leaf.core, db, stateSchema: leaf.stateSchema,
      routeFor: (p) => routeTo(leaf.config, p, 'parent'), log: retryLog(retries),
    });
    await t.rejects(bad.sync(), { code: 'SPOKESYNC_E_AUTH' });
    t.equal(retries.length, 0, 'no backoff for 401');
    t.equal(refused.filter((l) => l.includes('wrong token')).length, 1, 'one attempt');
    t.match((await getCursor(db, leaf.stateSchema, 'hub-d')).lastResult, /^SPOKESYNC_E_AUTH/);

    proxy.set({ dropRate: 1 });
    const started = Date.now();
    await t.rejects(client.sync(), { code: 'SPOKESYNC_E_HTTP' });
    const took = Date.now() - started;
    t.same(retries.map((r) => [r.attempt, r.delayUpToMs]), [[1, 40], [2, 80], [3, 160], [4, 320], [5, 640]], 'maxTries 6: five backoffs, doubling');
    // each wait is within [50%, 100%] of its length: the next attempt comes no sooner than half of it
    const at = retries.map((r) => Date.parse(r.time));
    for (let i = 1; i < at.length; i++) {
      t.ok(at[i]! - at[i - 1]! >= retries[i - 1]!.delayUpToMs / 2 - 2, `wait ${i}: ${at[i]! - at[i - 1]!} ms of at most ${retries[i - 1]!.delayUpToMs}`);
    }
    t.ok(took >= (40 + 80 + 160 + 320 + 640) / 2 - 10 && took < 40 + 80 + 160 + 320 + 640 + 5000, `the five waits took ${took} ms`);
    proxy.set({ dropRate: 0 });
    t.ok((await client.sync()).drained, 'fine again once the link is back');
  });
});
