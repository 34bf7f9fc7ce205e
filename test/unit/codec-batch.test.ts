// Batches: streaming writer and reader, split chunks, limits.
import t from 'tap';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { batchChunks, encodeBatch } from '../../apply/codec/batch-writer.js';
import { decodeBatch, readBatch, type BatchItem } from '../../apply/codec/batch-reader.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import type { BatchEntry, BatchHeader } from '../../apply/core/model.js';
import { prng, registration } from './codec-fixtures.js';

const header: BatchHeader = { version: 1, from: 'rwinkwavu', to: 'kigali', seq: '7', ack: '12', more: true };

function entries(n: number, seed = 1): BatchEntry[] {
  const rnd = prng(seed);
  return Array.from({ length: n }, (_, i) => ({ seq: String(100 + i * 3), cs: registration(i, rnd) }));
}

async function collect(source: Iterable<Buffer | string> | AsyncIterable<Buffer | string>): Promise<BatchItem[]> {
  const out: BatchItem[] = [];
  for await (const item of readBatch(source)) out.push(item);
  return out;
}

function expected(es: BatchEntry[]): BatchItem[] {
  return [{ type: 'header', header }, ...es.map((entry): BatchItem => ({ type: 'entry', entry }))];
}

void t.test('a batch round-trips: header first, then entries in order', async (t) => {
  const es = entries(5);
  const xml = await encodeBatch(header, es);
  t.match(xml.toString(), /^<\?xml version="1\.0" encoding="UTF-8"\?><batch xmlns="urn:spokesync:batch:1" v="1" from="rwinkwavu" to="kigali" seq="7" ack="12" more="1"><e seq="100"><cs /);
  t.same(await collect([xml]), expected(es));
  const d = await decodeBatch(xml);
  t.same(d.header, header);
  t.same(d.entries, es);
});

void t.test('an empty batch carries just the header and acks', async (t) => {
  const h = { ...header, more: false };
  const d = await decodeBatch(await encodeBatch(h, []));
  t.same(d, { header: h, entries: [] });
});

void t.test('incarnations ride in the header when given, and a malformed one is refused', async (t) => {
  const h = { ...header, inc: '00112233445566778899aabbccddeeff', rinc: '0123456789abcdef' };
  const xml = await encodeBatch(h, []);
  t.match(xml.toString(), / inc="00112233445566778899aabbccddeeff" rinc="0123456789abcdef">/);
  t.same((await decodeBatch(xml)).header, h);
  t.same((await decodeBatch(await encodeBatch(header, []))).header, header, 'absent when not given');
  await t.rejects(decodeBatch(xml.toString().replace('inc="00112233', 'inc="XY112233')), { code: 'SPOKESYNC_E_XML' });
  await t.rejects(encodeBatch({ ...header, rinc: 'short' }, []), { code: 'SPOKESYNC_E_XML' });
});

void t.test('the writer copies stored bodies (string or Buffer, sync or async) byte for byte', async (t) => {
  const es = entries(40);
  const bodies = es.map((e, i) => ({ seq: e.seq, body: i % 2 ? Buffer.from(encodeChangeSet(e.cs)) : encodeChangeSet(e.cs) }));
  async function* slow(): AsyncGenerator<{ seq: string; body: string | Buffer }> {
    for (const b of bodies) {
      await new Promise((r) => setImmediate(r));
      yield b;
    }
  }
  const chunks: Buffer[] = [];
  for await (const c of batchChunks(header, slow())) chunks.push(c);
  t.ok(chunks.length > 2, 'streams in several chunks');
  t.ok(chunks.every((c) => c.length < 32 * 1024), 'chunks stay small');
  const whole = Buffer.concat(chunks);
  t.ok(whole.equals(await encodeBatch(header, es)), 'same bytes as encodeBatch');
  t.same(await collect(chunks), expected(es));
});

void t.test('feeding one byte at a time and in random splits gives the same result', async (t) => {
  const es = entries(3);
  // awkward values: multi-byte UTF-8, entities and base64 straddle chunk boundaries
  es.push({
    seq: '1000',
    cs: {
      id: 'x:1', origin: 'x', hlc: '1', time: '2026-01-01T00:00:00Z',
      ops: [{ kind: 'insert', table: 'tä', id: '😀', row: { a: 'é😀&<>\r\n]]>', b: Buffer.from([0, 255, 128]), c: '\u0001', d: null } }],
    },
  });
  const xml = await encodeBatch(header, es);
  const want = expected(es);
  const bytes = Array.from(xml, (b) => Buffer.from([b]));
  t.same(await collect(bytes), want, 'one byte at a time');
  t.same(await collect(Array.from(xml.toString(), (c) => c)), want, 'one UTF-16 unit at a time, as strings');
  const rnd = prng(99);
  for (let round = 0; round < 50; round++) {
    const parts: Buffer[] = [];
    for (let i = 0; i < xml.length; ) {
      const n = 1 + Math.floor(rnd() * 64);
      parts.push(xml.subarray(i, i + n));
      i += n;
    }
    t.same(await collect(parts), want, `random split ${round}`);
  }
});

void t.test('entries are yielded while the document is still arriving', async (t) => {
  const es = entries(3);
  const xml = await encodeBatch(header, es);
  const cut = xml.indexOf('</e>') + 4;
  let released = false;
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  async function* source(): AsyncGenerator<Buffer> {
    yield xml.subarray(0, cut);
    await gate;
    released = true;
    yield xml.subarray(cut);
  }
  const it = readBatch(source());
  t.equal((await it.next()).value?.type, 'header');
  const first = await it.next();
  t.equal(first.value?.type, 'entry');
  t.notOk(released, 'first entry came before the rest of the batch was read');
  release();
  let n = 1;
  for await (const item of it) if (item.type === 'entry') n++;
  t.equal(n, 3);
});

void t.test('limits: records and bytes', async (t) => {
  const xml = await encodeBatch(header, entries(5));
  await t.resolves(decodeBatch(xml, { maxRecords: 5, maxBytes: xml.length }));
  await t.rejects(decodeBatch(xml, { maxRecords: 4 }), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' });
  await t.rejects(decodeBatch(xml, { maxBytes: xml.length - 1 }), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' });
  // bytes are counted as they arrive: an endless source stops at the limit
  let sent = 0;
  async function* endless(): AsyncGenerator<string> {
    yield '<batch xmlns="urn:spokesync:batch:1" v="1" from="a" to="b" seq="1" ack="0" more="0"><!--';
    for (;;) {
      sent += 1024;
      yield 'x'.repeat(1024);
    }
  }
  await t.rejects(collect2(endless(), { maxBytes: 64 * 1024 }), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' });
  t.ok(sent <= 65 * 1024, 'stopped reading at the limit');
});

async function collect2(source: AsyncIterable<string>, limits: { maxBytes: number }): Promise<number> {
  let n = 0;
  for await (const _ of readBatch(source, limits)) n++;
  return n;
}

void t.test('the writer refuses bodies and headers it cannot vouch for', async (t) => {
  const body = encodeChangeSet(entries(1)[0]!.cs);
  const run = async (h: BatchHeader, bodies: Array<{ seq: string; body: string | Buffer }>): Promise<void> => {
    for await (const _ of batchChunks(h, bodies));
  };
  await t.rejects(run({ ...header, from: 'Bad Node' }, []), { code: 'SPOKESYNC_E_XML' });
  await t.rejects(run({ ...header, ack: '-1' }, []), { code: 'SPOKESYNC_E_XML' });
  await t.rejects(run(header, [{ seq: '01', body }]), { code: 'SPOKESYNC_E_XML' });
  await t.rejects(run(header, [{ seq: '2', body }, { seq: '2', body }]), { code: 'SPOKESYNC_E_XML' });
  await t.rejects(run(header, [{ seq: '2', body: `<x/>` }]), { code: 'SPOKESYNC_E_XML' });
  await t.rejects(run(header, [{ seq: '2', body: Buffer.from('<batch>') }]), { code: 'SPOKESYNC_E_XML' });
});

void t.test('journal bodies decode on their own and inside a batch identically', async (t) => {
  const es = entries(2);
  const d = await decodeBatch(await encodeBatch(header, es));
  for (let i = 0; i < es.length; i++) {
    const body = encodeChangeSet(es[i]!.cs);
    t.same(decodeChangeSet(body), d.entries[i]!.cs);
    t.same(decodeChangeSet(Buffer.from(body)), d.entries[i]!.cs, 'from a Buffer too');
  }
});

void t.test('bytes on the wire: an OpenMRS registration in a full batch', async (t) => {
  // 200 six-row registrations with random uuids. The values alone (uuids,
  // names, dates, newline-separated) gzip to about 187 B per registration;
  // the format adds about 50 B. Pinned so the encoding cannot quietly grow.
  const xml = await encodeBatch(header, entries(200, 7));
  const gz = gzipSync(xml, { level: 9 }).length / 200;
  const br = brotliCompressSync(xml).length / 200;
  t.ok(gz <= 245, `gzip -9: ${gz.toFixed(1)} B per registration`);
  t.ok(br <= 190, `brotli: ${br.toFixed(1)} B per registration`);
});
