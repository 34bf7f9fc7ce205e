// Pure parts of the exchange (encodings, routing decisions, per-peer
// serialisation) and the loopback link proxy the network tests rely on.
import t from 'tap';
import { createServer, connect, type Socket } from 'node:net';
import { compress, decompress, negotiate, parseContentEncoding } from '../../agent/exchange/compression.js';
import { KeyedMutex } from '../../agent/exchange/protocol.js';
import { routeTo } from '../../agent/routing/filters.js';
import { decide } from '../../agent/journal/reader.js';
import { seqOf } from '../../agent/routing/cursors.js';
import { packUuids, unpackUuids } from '../../agent/exchange/uuid-coding.js';
import { kbps, startProxy } from '../helpers/net-proxy.js';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';

void t.test('content encodings: parse, negotiate, size limits', async (t) => {
  t.equal(parseContentEncoding(undefined), 'identity');
  t.equal(parseContentEncoding('GZIP'), 'gzip');
  t.equal(parseContentEncoding('br'), 'br');
  t.equal(parseContentEncoding('deflate'), null);
  t.equal(negotiate('br, gzip', 'br'), 'br');
  t.equal(negotiate('gzip', 'br'), 'gzip');
  t.equal(negotiate('gzip, br', 'gzip'), 'gzip', 'the request encoding wins when accepted');
  t.equal(negotiate('br;q=0, gzip', 'identity'), 'gzip');
  t.equal(negotiate(undefined, 'identity'), 'identity');
  t.equal(negotiate(undefined, 'gzip'), 'gzip', 'no Accept-Encoding: any coding, so the request\'s');
  t.equal(negotiate('identity', 'br'), 'identity');
  const text = Buffer.from('<cs o="a" h="1"/>'.repeat(1000));
  for (const enc of ['gzip', 'br', 'identity'] as const) {
    t.ok(decompress(compress(text, enc), enc, 1e6).equals(text), `${enc} round trip`);
    t.throws(() => decompress(compress(text, enc), enc, 1000), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' }, `${enc} bomb`);
  }
  t.throws(() => decompress(Buffer.from('not gzip'), 'gzip', 1000), { code: 'SPOKESYNC_E_XML' });
});

void t.test('spokesync-ubr: lossless for any bytes, smaller for UUID-heavy batches, refuses bad input', async (t) => {
  const uuids = Array.from({ length: 100 }, () => randomUUID());
  const xml = Buffer.from(Array.from({ length: 300 }, (_, i) =>
    `<i t="person" k="${uuids[i % 100]!}"><c n="uuid">${uuids[i % 100]!}</c><c n="creator" r="users">${uuids[0]!}</c></i>`).join(''));
  t.ok(unpackUuids(packUuids(xml), 1e7).equals(xml), 'batch round trip (more than 64 distinct UUIDs)');
  t.ok(decompress(compress(xml, 'spokesync-ubr'), 'spokesync-ubr', 1e7).equals(xml));
  t.ok(compress(xml, 'spokesync-ubr').length < compress(xml, 'br').length * 0.9, 'smaller than brotli alone');
  const tricky = Buffer.concat([
    Buffer.from([1, 1, 2, 0x20, 1]), Buffer.from(uuids[1]!.toUpperCase()), Buffer.from(uuids[2]!), Buffer.from([1]),
    Buffer.from(uuids[2]!.slice(0, 35)), Buffer.from(`${uuids[3]!}${uuids[3]!}`), Buffer.from([0xff, 0xfe, 1]),
  ]);
  t.ok(unpackUuids(packUuids(tricky), 1e6).equals(tricky), 'escape bytes, upper case, partial and adjacent UUIDs');
  fc.assert(fc.property(
    fc.array(fc.oneof(fc.uint8Array({ maxLength: 20 }), fc.constantFrom(...uuids.slice(0, 5)).map((u) => Buffer.from(u)), fc.constant(new Uint8Array([1])))),
    (parts) => {
      const b = Buffer.concat(parts.map((p) => Buffer.from(p)));
      return unpackUuids(packUuids(b), 1e6).equals(b);
    },
  ), { numRuns: 500 });
  const bad: [string, Buffer][] = [
    ['too short', Buffer.from([0, 0])],
    ['length beyond the end', Buffer.from([0, 0, 0, 9, 65])],
    ['a stray marker', Buffer.from([0, 0, 0, 2, 1, 0x7f])],
    ['a reference to nothing', Buffer.from([0, 0, 0, 2, 1, 0x20])],
    ['a missing literal', Buffer.from([0, 0, 0, 2, 1, 2])],
    ['an unused literal', Buffer.concat([Buffer.from([0, 0, 0, 1, 65]), Buffer.alloc(16)])],
    ['a marker cut short', Buffer.from([0, 0, 0, 1, 1])],
  ];
  for (const [what, b] of bad) t.throws(() => unpackUuids(b, 1000), { code: 'SPOKESYNC_E_XML' }, what);
  // a bomb of references: 2 bytes each expand to 36
  const bomb = Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.alloc(16)]);
  bomb.writeUInt32BE(2 + 2 * 5000, 0);
  const text = Buffer.concat([Buffer.from([1, 2]), Buffer.from(Array.from({ length: 5000 }, () => [1, 0x20]).flat())]);
  const packedBomb = Buffer.concat([bomb.subarray(0, 4), text, Buffer.alloc(16)]);
  t.throws(() => unpackUuids(packedBomb, 100_000), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' });
  t.equal(unpackUuids(packedBomb, 1e6).length, 36 * 5001, 'within the limit it expands');
});

void t.test('spokesync-vbr: round trip through compress/decompress, smaller than spokesync-ubr, limits hold', async (t) => {
  const uuids = Array.from({ length: 50 }, () => randomUUID());
  const xml = Buffer.from(Array.from({ length: 200 }, (_, i) =>
    `<e seq="${100 + i}"><cs o="a" h="${117682050105344000 + i}" t="2026-03-01T08:00:00Z"><i t="person" k="${uuids[i % 50]!}">` +
    `<c n="date_created">2026-03-0${1 + (i % 9)} 08:00:00</c><c n="creator" r="users">${uuids[0]!}</c></i>` +
    `<i t="person_name" k="${uuids[(i + 1) % 50]!}"><c n="date_created">2026-03-0${1 + (i % 9)} 08:00:00</c></i></cs></e>`).join(''));
  t.ok(decompress(compress(xml, 'spokesync-vbr'), 'spokesync-vbr', 1e7).equals(xml), 'lossless');
  t.ok(compress(xml, 'spokesync-vbr').length < compress(xml, 'spokesync-ubr').length, 'smaller than spokesync-ubr');
  t.throws(() => decompress(compress(xml, 'spokesync-vbr'), 'spokesync-vbr', xml.length - 1), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' });
  t.throws(() => decompress(compress(Buffer.from([2, 9]), 'spokesync-ubr'), 'spokesync-vbr', 1000), { code: 'SPOKESYNC_E_XML' }, 'a bad marker');
  t.equal(parseContentEncoding('spokesync-vbr'), 'spokesync-vbr');
  t.equal(negotiate('gzip, spokesync-vbr', 'br'), 'spokesync-vbr', 'offered first when accepted');
});

void t.test('routing: never back to the sender, one-way tables, child filters', async (t) => {
  const config = {
    tables: { include: [], exclude: [], keys: {}, direction: { audit: 'up', drug: 'down' } as const },
    children: [
      { id: 'c1', token: 'x', tables: { include: ['person*', 'patient', 'drug', 'audit'], exclude: ['person_attribute'] } },
      { id: 'c2', token: 'y' },
    ],
  };
  const up = routeTo(config, 'hub', 'parent');
  const c1 = routeTo(config, 'c1', 'child');
  const c2 = routeTo(config, 'c2', 'child');
  t.ok(up.accepts('audit') && !up.accepts('drug') && up.accepts('obs'));
  t.ok(!c2.accepts('audit') && c2.accepts('drug') && c2.accepts('obs'));
  t.ok(c1.accepts('person') && c1.accepts('person_name') && !c1.accepts('person_attribute') && !c1.accepts('obs'));
  t.ok(!c1.accepts('audit'), 'one-way rule applies on top of the child filter');
  t.notOk(c2.acceptsAll);
  t.ok(routeTo({ ...config, tables: { ...config.tables, direction: {} } }, 'c2', 'child').acceptsAll);

  t.equal(decide({ from_peer: 'c2', tables: 'obs' }, c2), 'skip', 'not back to where it came from');
  t.equal(decide({ from_peer: 'c1', tables: 'obs' }, c2), 'send');
  t.equal(decide({ from_peer: null, tables: 'person,person_name' }, c1), 'send');
  t.equal(decide({ from_peer: null, tables: 'person,obs' }, c1), 'trim');
  t.equal(decide({ from_peer: null, tables: 'obs,person_attribute' }, c1), 'skip');
  t.equal(decide({ from_peer: null, tables: 'drug' }, up), 'skip');
  // a peer restored from a backup gets back its own change sets after `from`, stamped up to `hlc`
  const resend = { from: '10', hlc: '500' };
  const own = { from_peer: 'c2', tables: 'obs', origin: 'c2', seq: 11, hlc: 500 };
  t.equal(decide(own, c2, resend), 'send', 'its own change set goes back to a restored peer');
  t.equal(decide(own, c2), 'skip', 'but not to a peer never restored');
  t.equal(decide({ ...own, seq: 10 }, c2, resend), 'skip', 'not one it had acknowledged before its backup');
  t.equal(decide({ ...own, hlc: 501 }, c2, resend), 'skip', 'not one stamped after the restore was seen');
  t.equal(decide({ ...own, origin: 'c9' }, c2, resend), 'skip', 'not another origin it brought (that comes back from its own side)');

  t.equal(seqOf('42'), '42');
  t.equal(seqOf('007'), '7');
  t.equal(seqOf('1; DROP TABLE x'), '0');
  t.equal(seqOf('99999999999999999999'), '0', 'beyond uint64');
});

void t.test('KeyedMutex: one at a time per key, keys independent, errors do not block', async (t) => {
  const m = new KeyedMutex();
  const log: string[] = [];
  const task = (k: string, n: number, ms: number, fail = false) => m.run(k, async () => {
    log.push(`${k}${n}+`);
    await new Promise((r) => setTimeout(r, ms));
    log.push(`${k}${n}-`);
    if (fail) throw new Error('boom');
    return n;
  });
  const results = await Promise.allSettled([task('a', 1, 30, true), task('a', 2, 1), task('b', 1, 5)]);
  t.equal(results[0]?.status, 'rejected');
  t.same(results[1], { status: 'fulfilled', value: 2 });
  t.ok(log.indexOf('a1-') < log.indexOf('a2+'), 'a2 waited for a1');
  t.ok(log.indexOf('b1+') < log.indexOf('a1-'), 'b ran beside a');
});

async function echoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const socks = new Set<Socket>();
  const s = createServer((c) => { socks.add(c); c.pipe(c); c.on('error', () => undefined); });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  return { port, close: () => new Promise((r) => { for (const c of socks) c.destroy(); s.close(() => r()); }) };
}

async function roundTrip(port: number, payload: Buffer): Promise<{ got: Buffer; ms: number; closed: boolean }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      c.destroy();
      resolve({ got: Buffer.concat(parts), ms: Date.now() - started, closed });
    };
    c.on('data', (d: Buffer) => {
      parts.push(d);
      if (Buffer.concat(parts).length >= payload.length) finish(false);
    });
    c.on('close', () => finish(true));
    c.on('error', () => finish(true));
    c.write(payload);
  });
}

void t.test('proxy: bandwidth, latency, cuts mid-stream, random drops, loopback only', async (t) => {
  const echo = await echoServer();
  t.teardown(echo.close);
  const proxy = await startProxy({ target: { host: '127.0.0.1', port: echo.port } });
  t.teardown(proxy.close);
  const payload = Buffer.alloc(2000, 7);

  const plain = await roundTrip(proxy.port, payload);
  t.ok(plain.got.equals(payload), 'bytes pass unchanged');

  proxy.set({ bytesPerSecond: kbps(80), latencyMs: 100 }); // 10 000 B/s
  const slow = await roundTrip(proxy.port, payload);
  t.ok(slow.got.equals(payload));
  // 2000 B up at 10 kB/s (0.2 s) + 2000 B down (overlapping) + 2 × 100 ms latency
  t.ok(slow.ms >= 380 && slow.ms < 2000, `took ${slow.ms} ms at 80 kbps with 200 ms RTT`);

  proxy.set({ bytesPerSecond: 0, latencyMs: 0 });
  proxy.cutNext({ direction: 'up', afterBytes: 500 }, { direction: 'down', afterBytes: 1200 });
  const cutUp = await roundTrip(proxy.port, payload);
  t.ok(cutUp.closed && cutUp.got.length <= 500, `cut mid-request after ${cutUp.got.length} echoed bytes`);
  const cutDown = await roundTrip(proxy.port, payload);
  t.ok(cutDown.closed && cutDown.got.length === 1200, `cut mid-response at ${cutDown.got.length} bytes`);
  t.equal(proxy.stats.cuts, 2);

  proxy.set({ dropRate: 1 });
  const dropped = await roundTrip(proxy.port, payload);
  t.ok(dropped.closed && dropped.got.length === 0, 'dropped');
  t.ok(proxy.stats.drops >= 1);
  proxy.set({ dropRate: 0 });
  t.ok((await roundTrip(proxy.port, payload)).got.equals(payload), 'still serving after faults');

  await t.rejects(startProxy({ target: { host: '10.0.0.1', port: 80 } }), /loopback/);
});
