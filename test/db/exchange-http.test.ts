// The parent's HTTP server: a real exchange, replays, and every kind of hostile
// request (bad token, wrong sender, malformed XML, DTD/entity bombs, XXE, bad
// gzip, oversize and decompression bombs, tables not synced): each gets a 4xx
// with a short `CODE: message` body, nothing is applied, and the server keeps serving.
import t from 'tap';
import { gzipSync, brotliDecompressSync, gunzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { encodeBatch, decodeBatch } from '../../apply/codec/batch.js';
import type { BatchHeader } from '../../apply/core/model.js';
import { openDb } from '../../apply/core/db.js';
import { createLogger } from '../../apply/core/log.js';
import { ExchangeServer } from '../../agent/exchange/http-server.js';
import { getCursor } from '../../agent/routing/cursors.js';
import { routeTo } from '../../agent/routing/filters.js';
import { startServer } from '../../deploy/sandbox/mariadb.js';
import { changeSet, journal, nodeConfig, raw, rigNode } from '../helpers/exchange-rig.js';

const TOKEN = 'leaf-token-5f2b9c';

void t.test('exchange server', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const logs: string[] = [];
  const log = createLogger({ level: 'debug', write: (l) => logs.push(l) });
  const config = nodeConfig('hub', {
    children: [
      { id: 'leaf', token: TOKEN },
      { id: 'other', token: 'other-token-77', tables: { include: ['person'], exclude: [] } },
    ],
  });
  const hub = await rigNode(db, config, log);
  const server = new ExchangeServer({
    listen: { host: '127.0.0.1', port: 0, maxBodyBytes: 16 * 1024, maxInflatedBytes: 256 * 1024 },
    children: config.children,
    core: hub.core,
    routeFor: (c) => routeTo(config, c, 'child'),
    log,
  });
  server.addRoute('GET', '/v1/echo-child', async (_req, res, child) => { res.end(child.id); });
  await server.start();
  t.teardown(() => server.stop());
  const url = `${server.url}/v1/exchange`;
  const auth = (token = TOKEN) => ({ authorization: `Bearer ${token}` });
  const header = (over: Partial<BatchHeader> = {}): BatchHeader =>
    ({ version: 1, from: 'leaf', to: 'hub', seq: '1', ack: '0', more: false, ...over });
  const gz = { 'content-encoding': 'gzip', 'accept-encoding': 'gzip' };
  const nothingApplied = (what: string) => t.equal(hub.applier.taken.length, 0, `${what}: nothing applied`);

  // the hub has two of its own changes and one that came from leaf (never sent back)
  await journal(db, hub.stateSchema, changeSet('hub', 10));
  await journal(db, hub.stateSchema, changeSet('leaf', 5), 'leaf');
  await journal(db, hub.stateSchema, changeSet('hub', 11, ['person', 'obs']));

  t.equal((await raw(`${server.url}/v1/health`, { method: 'GET' })).status, 200, 'health without a token');

  await t.test('hostile requests: 4xx, short body, nothing applied', async (t) => {
    const good = await encodeBatch(header(), [{ seq: '1', cs: changeSet('leaf', 1) }]);
    const cases: [string, Record<string, string>, Buffer | Buffer[], number, string][] = [
      ['no token', {}, gzipSync(good), 401, 'SPOKESYNC_E_AUTH'],
      ['wrong token', auth('leaf-token-5f2b9d'), gzipSync(good), 401, 'SPOKESYNC_E_AUTH'],
      ['token of another child', auth('other-token-77'), gzipSync(good), 403, 'SPOKESYNC_E_PEER'],
      ['batch for another node', auth(), gzipSync(await encodeBatch(header({ to: 'elsewhere' }), [])), 403, 'SPOKESYNC_E_PEER'],
      ['malformed XML', auth(), gzipSync(Buffer.from('<batch xmlns="urn:spokesync:batch:1" v="1"><e')), 400, 'SPOKESYNC_E_XML'],
      ['not XML', auth(), gzipSync(Buffer.from('{"json": true}')), 400, 'SPOKESYNC_E_XML'],
      ['entity bomb', auth(), gzipSync(Buffer.from(
        '<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">' +
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><batch>&c;</batch>')), 400, 'SPOKESYNC_E_XML_DTD'],
      ['XXE', auth(), gzipSync(Buffer.from(
        '<?xml version="1.0"?><!DOCTYPE batch [<!ENTITY x SYSTEM "file:///etc/passwd">]><batch>&x;</batch>')), 400, 'SPOKESYNC_E_XML_DTD'],
      ['bad gzip', auth(), Buffer.from('this is not gzip at all'), 400, 'SPOKESYNC_E_XML'],
      ['oversize body (declared)', auth(), randomBytes(20 * 1024), 413, 'SPOKESYNC_E_BATCH_TOO_LARGE'],
      ['oversize body (chunked)', auth(), Array.from({ length: 20 }, () => randomBytes(1024)), 413, 'SPOKESYNC_E_BATCH_TOO_LARGE'],
      ['decompression bomb', auth(), gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20)), 413, 'SPOKESYNC_E_BATCH_TOO_LARGE'],
      ['table not synced', auth(), gzipSync(await encodeBatch(header(), [{ seq: '1', cs: changeSet('leaf', 1, ['no_such_table']) }])), 422, 'SPOKESYNC_E_UNKNOWN_TABLE'],
      ['valid batch, then garbage', auth(), gzipSync(Buffer.concat([good.subarray(0, good.length - 8), Buffer.from('<e seq="')])), 400, 'SPOKESYNC_E_XML'],
    ];
    for (const [what, headers, body, status, code] of cases) {
      const r = await raw(url, { headers: { ...gz, ...headers }, body });
      t.equal(r.status, status, `${what}: ${status}`);
      t.match(r.body.toString(), new RegExp(`^${code}: .{1,300}\\n$`), `${what}: ${code}`);
      t.ok(r.body.length < 400, `${what}: short body`);
      nothingApplied(what);
    }
    const enc = await raw(url, { headers: { ...auth(), 'content-encoding': 'deflate' }, body: good });
    t.equal(enc.status, 415, 'unsupported encoding');
    const get = await raw(url, { method: 'GET', headers: auth() });
    t.equal(get.status, 405);
    t.equal((await raw(`${server.url}/nope`, { method: 'GET' })).status, 404);
    const c = await getCursor(db, hub.stateSchema, 'leaf');
    t.same([c.ackedSeq, c.receivedSeq], ['0', '0'], 'cursors untouched');
    t.notOk(logs.some((l) => l.includes(TOKEN) || l.includes('leaf-token-5f2b9d')), 'tokens never logged');
  });

  await t.test('a real exchange, then its replay', async (t) => {
    const body = gzipSync(await encodeBatch(header({ ack: '0' }), [
      { seq: '1', cs: changeSet('leaf', 1) },
      { seq: '2', cs: changeSet('leaf', 2, ['person', 'obs']) },
    ]));
    const r = await raw(url, { headers: { ...gz, ...auth() }, body });
    t.equal(r.status, 200, r.body.toString().slice(0, 200));
    t.equal(r.headers['content-encoding'], 'gzip');
    const answer = await decodeBatch(gunzipSync(r.body));
    t.same(answer.header, { version: 1, from: 'hub', to: 'leaf', seq: '1', ack: '2', more: false });
    t.same(answer.entries.map((e) => e.cs.id), ['hub:10', 'hub:11'], 'not sent back: leaf:5');
    t.same(hub.applier.taken.map((x) => x.entry.cs.id), ['leaf:1', 'leaf:2']);
    t.same(hub.applier.taken.map((x) => x.peer), ['leaf', 'leaf']);
    let c = await getCursor(db, hub.stateSchema, 'leaf');
    t.same([c.ackedSeq, c.receivedSeq], ['0', '2']);

    const again = await raw(url, { headers: { ...gz, ...auth() }, body });
    t.equal(again.status, 200, 'a replayed batch is a no-op');
    t.equal(hub.applier.taken.length, 2, 'not applied twice');
    t.same((await decodeBatch(gunzipSync(again.body))).entries.length, 2, 'unacked entries go again');

    // the leaf acks the hub's entries (seq 3 is the last one) in brotli
    const ack = await encodeBatch(header({ seq: '2', ack: '3' }), []);
    const br = await raw(url, { headers: { ...auth(), 'accept-encoding': 'br, gzip' }, body: ack });
    t.equal(br.status, 200);
    t.equal(br.headers['content-encoding'], 'br', 'answers in an accepted encoding');
    const last = await decodeBatch(brotliDecompressSync(br.body));
    t.same(last.entries, [], 'nothing more for leaf');
    c = await getCursor(db, hub.stateSchema, 'leaf');
    t.same([c.ackedSeq, c.receivedSeq], ['3', '2']);

    // an old ack does not move the cursor back; an ack beyond what was ever sent to leaf is refused
    await raw(url, { headers: auth(), body: await encodeBatch(header({ seq: '3', ack: '1' }), []) });
    t.equal((await getCursor(db, hub.stateSchema, 'leaf')).ackedSeq, '3', 'monotonic');
    for (const ack of ['4', '999999']) {
      const bad = await raw(url, { headers: auth(), body: await encodeBatch(header({ seq: '4', ack }), [{ seq: '3', cs: changeSet('leaf', 3) }]) });
      t.equal(bad.status, 409, `ack ${ack}: 409`);
      t.match(bad.body.toString(), /^SPOKESYNC_E_ACK: 'leaf' acknowledges our journal up to \d+, but at most 3 was sent to it/);
      t.equal(hub.applier.taken.length, 2, `ack ${ack}: nothing of its batch applied`);
      const now = await getCursor(db, hub.stateSchema, 'leaf');
      t.same([now.ackedSeq, now.receivedSeq], ['3', '2'], `ack ${ack}: no cursor moved`);
    }
    t.match((await getCursor(db, hub.stateSchema, 'leaf')).lastResult, /^SPOKESYNC_E_ACK: /, 'the refusal is the last result');
  });

  await t.test('a child filter trims change sets; batch caps from the request', async (t) => {
    const other = { authorization: 'Bearer other-token-77' };
    const hdr = header({ from: 'other' });
    const r = await raw(url, { headers: { ...other, 'x-spokesync-batch-records': '1' }, body: await encodeBatch(hdr, []) });
    t.equal(r.status, 200);
    const first = await decodeBatch(r.body);
    t.same(first.entries.map((e) => e.cs.id), ['hub:10']);
    t.equal(first.header.more, true, 'capped at one record');
    const r2 = await raw(url, { headers: other, body: await encodeBatch({ ...hdr, ack: first.entries[0]!.seq }, []) });
    const second = await decodeBatch(r2.body);
    t.same(second.entries.map((e) => e.cs.id), ['leaf:5', 'hub:11'], 'leaf:5 goes to the sibling');
    t.same(second.entries[1]!.cs.ops.map((o) => o.table), ['person'], 'obs op dropped for this child');
  });

  await t.test('peer and added routes', async (t) => {
    const who = await raw(`${server.url}/v1/peer`, { method: 'GET', headers: auth() });
    t.same(JSON.parse(who.body.toString()), { node: 'hub', child: 'leaf' });
    t.equal((await raw(`${server.url}/v1/echo-child`, { method: 'GET', headers: auth() })).body.toString(), 'leaf');
    t.equal((await raw(`${server.url}/v1/echo-child`, { method: 'GET' })).status, 401);
  });

  await t.test('a port already in use is a config error', async (t) => {
    const second = new ExchangeServer({
      listen: { host: '127.0.0.1', port: server.port, maxBodyBytes: 1024, maxInflatedBytes: 1024 },
      children: [], core: hub.core, routeFor: (c) => routeTo(config, c, 'child'), log,
    });
    await t.rejects(second.start(), { code: 'SPOKESYNC_E_CONFIG' });
  });
});
