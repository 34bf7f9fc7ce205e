// The snapshot file format without a database: the line splitter on every
// chunking, values round-trip through a row line, and the reader refuses every
// kind of damage before it reports the end.
import t from 'tap';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import {
  decodeLine, decodeRow, encodeHeader, encodeRow, encodeTableStart, encodeTrailer, type SnapshotHeader,
} from '../../agent/provision/snapshot-format.js';
import { splitLines } from '../../agent/provision/lines.js';
import { renderBar } from '../../agent/provision/progress.js';
import { readSnapshot, type SnapshotEvent } from '../../agent/provision/snapshot-reader.js';

const header: SnapshotHeader = {
  format: 'spokesync-snapshot', version: 1, node: 'hub', peer: 'leaf', schema: 'app', charset: 'utf8mb4', collation: 'utf8mb4_general_ci',
  createdAt: '2026-01-01T00:00:00.000Z', server: '10.11.0-MariaDB', binlog: { file: 'mysql-bin.000003', pos: 1234 },
  tables: [
    { name: 'a', ddl: 'CREATE TABLE `a` (id int)', columns: [{ name: 'id', binary: false }, { name: 'b', binary: true }], estimatedRows: 2 },
    { name: 'b', ddl: 'CREATE TABLE `b` (x text)', columns: [{ name: 'x', binary: false }], estimatedRows: 0 },
  ],
};

async function collect(src: AsyncIterable<Buffer>): Promise<string[]> {
  const out: string[] = [];
  for await (const l of src) out.push(l.toString('utf8'));
  return out;
}

void t.test('lines split the same way whatever the chunks', async (t) => {
  await fc.assert(fc.asyncProperty(
    fc.array(fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/\n/g, ' ')), { maxLength: 12 }),
    fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1, maxLength: 8 }),
    async (lines, cuts) => {
      const bytes = Buffer.from(lines.map((l) => l + '\n').join(''), 'utf8');
      const chunks: Buffer[] = [];
      for (let i = 0, k = 0; i < bytes.length; k++) {
        const n = cuts[k % cuts.length]!;
        chunks.push(bytes.subarray(i, i + n));
        i += n;
      }
      t.same(await collect(splitLines(Readable.from(chunks))), lines);
    },
  ), { numRuns: 200 });
  await t.rejects(collect(splitLines(Readable.from([Buffer.alloc(64, 'x'), Buffer.alloc(64, 'y')]), 100)), { code: 'SPOKESYNC_E_SNAPSHOT' });
  t.same(await collect(splitLines(Readable.from([Buffer.from('no newline at the end')]))), ['no newline at the end'], 'a last line without newline is kept');
});

void t.test('values round-trip through a row line', async (t) => {
  const cols = [{ name: 't', binary: false }, { name: 'b', binary: true }];
  fc.assert(fc.property(
    fc.option(fc.string({ unit: 'grapheme' }), { nil: null }), fc.option(fc.uint8Array(), { nil: null }),
    (text, bytes) => {
      const raw = [text === null ? null : Buffer.from(text, 'utf8'), bytes === null ? null : Buffer.from(bytes)];
      const line = encodeRow(raw, cols);
      t.equal(line.indexOf('\n'), line.length - 1, 'one line');
      const d = decodeLine(line.slice(0, -1), 1);
      if (d.kind !== 'row') throw new Error('not a row');
      const v = decodeRow(d.values, cols, 'x');
      t.same(v, [text, bytes === null ? null : Buffer.from(bytes)]);
    },
  ), { numRuns: 300 });
  t.same(decodeRow([null, ''], cols, 'x'), [null, Buffer.alloc(0)], "NULL and '' stay apart");
  t.throws(() => decodeRow(['a'], cols, 'x'), { code: 'SPOKESYNC_E_SNAPSHOT' }, 'wrong arity');
  t.throws(() => decodeRow([1, null], cols, 'x'), { code: 'SPOKESYNC_E_SNAPSHOT' }, 'numbers are not values');
});

void t.test('header and trailer records are checked', async (t) => {
  t.match(decodeLine(encodeHeader(header).trim(), 1), { kind: 'header', header: { node: 'hub', binlog: { pos: 1234 } } });
  t.same(decodeLine('', 2), { kind: 'keepalive' });
  t.same(decodeLine(encodeTableStart('a').trim(), 3), { kind: 'table', table: 'a' });
  const bad: Array<[string, unknown]> = [
    ['another format', { ...header, format: 'other' }],
    ['a newer version', { ...header, version: 2 }],
    ['a bad node id', { ...header, peer: 'Leaf!' }],
    ['a bad position', { ...header, binlog: { file: 'x', pos: -1 } }],
    ['DDL that is not CREATE TABLE', { ...header, tables: [{ ...header.tables[0], ddl: 'DROP TABLE a' }] }],
    ['twice the same table', { ...header, tables: [header.tables[0], header.tables[0]] }],
    ['a column without its binary flag', { ...header, tables: [{ ...header.tables[0], columns: [{ name: 'id' }] }] }],
  ];
  for (const [what, h] of bad) t.throws(() => decodeLine(JSON.stringify(h), 1), { code: 'SPOKESYNC_E_SNAPSHOT' }, what);
  t.throws(() => decodeLine('{"trailer":{"journalSeq":"x","rows":{},"sha256":"00"}}', 9), { code: 'SPOKESYNC_E_SNAPSHOT' });
  t.throws(() => decodeLine('{nope', 9), { code: 'SPOKESYNC_E_SNAPSHOT' });
  t.throws(() => decodeLine('"a string"', 9), { code: 'SPOKESYNC_E_SNAPSHOT' });
});

/** A snapshot file from lines, with a correct trailer unless told otherwise. */
function file(body: string[], trailer?: Partial<{ journalSeq: string; rows: Record<string, number>; sha256: string }>): Buffer {
  const text = body.join('');
  const sha = createHash('sha256').update(text).digest('hex');
  return gzipSync(text + encodeTrailer({ journalSeq: '7', rows: { a: 2, b: 0 }, sha256: sha, ...trailer }));
}

async function events(bytes: Buffer): Promise<SnapshotEvent[]> {
  const out: SnapshotEvent[] = [];
  for await (const e of readSnapshot(Readable.from([bytes]))) out.push(e);
  return out;
}

void t.test('the reader ends only on an intact snapshot', async (t) => {
  const rows = [encodeRow([Buffer.from('1'), Buffer.from([0, 255])], header.tables[0]!.columns), encodeRow([Buffer.from('2'), null], header.tables[0]!.columns)];
  const good = [encodeHeader(header), encodeTableStart('a'), ...rows, '\n', encodeTableStart('b')];
  const ev = await events(file(good));
  t.same(ev.map((e) => e.kind), ['header', 'table', 'row', 'row', 'table', 'end']);
  t.same((ev[2] as Extract<SnapshotEvent, { kind: 'row' }>).values, ['1', Buffer.from([0, 255])]);
  t.match(ev[5], { kind: 'end', trailer: { journalSeq: '7' } });

  const cases: Array<[string, Buffer]> = [
    ['a checksum that does not match', file(good, { sha256: 'a'.repeat(64) })],
    ['a wrong row count', file(good, { rows: { a: 3, b: 0 } })],
    ['a trailer naming another table', file(good, { rows: { a: 2, b: 0, c: 0 } })],
    ['no header', file(good.slice(1))],
    ['a row before any table', file([encodeHeader(header), ...rows])],
    ['a table not in the header', file([encodeHeader(header), encodeTableStart('zz')])],
    ['a table twice', file([...good, encodeTableStart('a')])],
    ['no trailer', gzipSync(good.join(''))],
    ['data after the trailer', Buffer.concat([file(good), gzipSync(encodeTableStart('a'))])],
    ['a truncated gzip stream', file(good).subarray(0, 60)],
    ['bytes that are not gzip', Buffer.from('plain text\n')],
  ];
  for (const [what, bytes] of cases) await t.rejects(events(bytes), { code: 'SPOKESYNC_E_SNAPSHOT' }, what);
});

void t.test('the progress bar', async (t) => {
  const base = { label: 'clone', table: 'obs', rows: 0, totalRows: 0, bytes: 0, elapsedMs: 0 };
  t.match(renderBar(base, 100), /^clone \[\.+\] 0% 0 rows 0\.0 MB 0\.0 MB\/s obs$/);
  const half = renderBar({ ...base, rows: 500, totalRows: 1000, bytes: 5e6, elapsedMs: 2000 }, 100);
  t.match(half, /\[#+\.+\] 50% 500\/~1000 rows 5\.0 MB 2\.5 MB\/s ETA 0:02 obs/);
  t.match(renderBar({ ...base, rows: 2000, totalRows: 1000, elapsedMs: 1000 }, 100), / 99% /, 'an estimate that was too low stops at 99%');
  for (const w of [40, 60, 100]) t.ok(renderBar({ ...base, table: 'x'.repeat(80) }, w).length <= w, `fits in ${w} columns`);
});
