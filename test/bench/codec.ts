// Wire codec throughput: encode and decode of 20,000 records of 12 columns,
// batch assembly from stored bodies, streaming batch decode, bytes per OpenMRS
// registration, and a one-off comparison with xmlbuilder2 on the same records.
//
// Why the codec is hand-written: xmlbuilder2 (4.0.3) builds a DOM, which costs
// seconds per 20,000 records to build and as much again to parse, and holds the
// whole document in memory; its callback builder streams but was slower still
// (19 s when first measured). A string-concatenation writer and saxes-driven
// state machine do the same work in a fraction of a second with flat memory.
// This benchmark prints both, from the same run.

import { gzipSync, brotliCompressSync } from 'node:zlib';
import { SaxesParser } from 'saxes';
import { create } from 'xmlbuilder2';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { batchChunks } from '../../apply/codec/batch-writer.js';
import { readBatch } from '../../apply/codec/batch-reader.js';
import { WIRE_NAMESPACE, type ChangeSet, type Value } from '../../apply/core/model.js';
import { prng, registration, uuid } from '../unit/codec-fixtures.js';
import { encodeShapes, tablesOfBody, type TableShape } from '../../apply/codec/shape.js';
import { checkShape, shapeMap } from '../../apply/replay/shape-check.js';
import type { Catalog, ColumnInfo, TableInfo } from '../../apply/core/catalog.js';

const N = 20_000;
const header = { version: 1, from: 'rwinkwavu', to: 'kigali', seq: '1', ack: '0', more: false } as const;

function records(): ChangeSet[] {
  const rnd = prng(42);
  const users: Value = { ref: 'users', id: '1010d442-e134-11de-babe-001e378eb67e' };
  return Array.from({ length: N }, (_, i) => {
    const hlc = String((1772000000000n + BigInt(i)) << 16n);
    const id = uuid(rnd);
    return {
      id: `rwinkwavu:${hlc}`, origin: 'rwinkwavu', hlc, time: '2026-03-01T08:00:00Z',
      ops: [{
        kind: 'insert', table: 'obs', id,
        row: {
          person_id: { ref: 'person', id: uuid(rnd) }, concept_id: { ref: 'concept', id: '5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
          obs_datetime: '2026-03-01 08:12:13.123456', value_numeric: (rnd() * 100).toFixed(2),
          value_text: i % 3 === 0 ? 'Patient reports <mild> pain & fever\r\nsince Monday' : 'none',
          value_complex: i % 10 === 0 ? Buffer.from(id) : null, comments: '', creator: users,
          date_created: '2026-03-01 08:12:13', voided: '0', void_reason: null, uuid: id,
        },
      }],
    };
  });
}

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;
const rate = (n: number, s: number): string => `${Math.round(n / s).toLocaleString('en-US')} records/s`;
const mbs = (bytes: number, s: number): string => `${(bytes / s / 1e6).toFixed(1)} MB/s`;

/** Best of `rounds` runs (the first warms the JIT; other processes add noise). */
async function best(rounds: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  let min = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    await fn();
    min = Math.min(min, seconds(t0));
  }
  return min;
}

export async function bench(log: (line: string) => void): Promise<void> {
  const css = records();
  let bodies: Array<{ seq: string; body: string }> = [];
  const enc = await best(3, () => {
    bodies = css.map((cs, i) => ({ seq: String(i + 1), body: encodeChangeSet(cs) }));
  });
  const encBytes = bodies.reduce((n, b) => n + Buffer.byteLength(b.body), 0);
  log(`encodeChangeSet: ${N} records of 12 columns in ${enc.toFixed(3)} s: ${rate(N, enc)}, ${mbs(encBytes, enc)} (best of 3)`);

  let batch = Buffer.alloc(0);
  const asm = await best(3, async () => {
    const chunks: Buffer[] = [];
    for await (const c of batchChunks(header, bodies)) chunks.push(c);
    batch = Buffer.concat(chunks);
  });
  log(`batchChunks (stored bodies → batch): ${asm.toFixed(3)} s: ${rate(N, asm)}, ${mbs(batch.length, asm)}`);

  const dec = await best(3, () => {
    for (const b of bodies) decodeChangeSet(b.body);
  });
  log(`decodeChangeSet: ${dec.toFixed(3)} s: ${rate(N, dec)}, ${mbs(encBytes, dec)}`);

  const pieces: Buffer[] = [];
  for (let i = 0; i < batch.length; i += 64 * 1024) pieces.push(batch.subarray(i, i + 64 * 1024));
  const rd = await best(3, async () => {
    let n = 0;
    for await (const item of readBatch(pieces)) if (item.type === 'entry') n++;
    if (n !== N) throw new Error(`readBatch gave ${n} records`);
  });
  log(`readBatch (64 KiB chunks, ${(batch.length / 1e6).toFixed(1)} MB): ${rd.toFixed(3)} s: ${rate(N, rd)}, ${mbs(batch.length, rd)}`);

  const text = batch.toString();
  const raw = await best(3, () => {
    const p = new SaxesParser({ position: true });
    p.on('opentag', () => {});
    p.on('text', () => {});
    p.on('closetag', () => {});
    for (let i = 0; i < text.length; i += 64 * 1024) p.write(text.slice(i, i + 64 * 1024));
    p.close();
  });
  log(`saxes alone on the same batch (empty handlers, the floor for readBatch): ${raw.toFixed(3)} s, ${mbs(batch.length, raw)}; readBatch = ${(rd / raw).toFixed(2)}× that`);

  const rnd = prng(7);
  const reg = bodies.slice(0, 200).map((_, i) => ({ seq: String(i + 1), body: encodeChangeSet(registration(i, rnd)) }));
  const regChunks: Buffer[] = [];
  for await (const c of batchChunks(header, reg)) regChunks.push(c);
  const regBatch = Buffer.concat(regChunks);
  log(`OpenMRS registration (6 rows) in a 200-record batch: ${(regBatch.length / 200).toFixed(0)} B raw, ` +
    `${(gzipSync(regBatch, { level: 9 }).length / 200).toFixed(0)} B gzip -9, ${(brotliCompressSync(regBatch).length / 200).toFixed(0)} B brotli`);

  await shapeCost(log, reg, regBatch);

  // --- one-off comparison: xmlbuilder2 on the same records ---
  let t0 = process.hrtime.bigint();
  const doc = create({ version: '1.0', encoding: 'UTF-8' }).ele(WIRE_NAMESPACE, 'batch', {
    v: '1', from: header.from, to: header.to, seq: header.seq, ack: header.ack, more: '0',
  });
  css.forEach((cs, i) => {
    const c = doc.ele('e', { seq: String(i + 1) }).ele('cs', { o: cs.origin, h: cs.hlc, t: cs.time });
    for (const op of cs.ops) {
      if (op.kind !== 'insert') continue;
      const el = c.ele('i', { t: op.table, k: op.id });
      for (const [col, v] of Object.entries(op.row)) {
        if (v === null) el.ele('c', { n: col, z: '1' });
        else if (typeof v === 'string') el.ele('c', { n: col }).txt(v);
        else if (Buffer.isBuffer(v)) el.ele('c', { n: col, e: 'b' }).txt(v.toString('base64'));
        else el.ele('c', { n: col, r: v.ref }).txt(v.id);
      }
    }
  });
  const xb = doc.end();
  const xbBuild = seconds(t0);
  t0 = process.hrtime.bigint();
  create(xb);
  const xbParse = seconds(t0);
  log(`xmlbuilder2 DOM build + serialise: ${xbBuild.toFixed(2)} s (${rate(N, xbBuild)}), ` +
    `${(xbBuild / (enc + asm)).toFixed(0)}× encodeChangeSet + batchChunks`);
  log(`xmlbuilder2 parse to DOM: ${xbParse.toFixed(2)} s (${rate(N, xbParse)}), ${(xbParse / rd).toFixed(0)}× readBatch`);
}

/** A catalogue and shapes with every column the registrations write (VARCHAR(255) everywhere: the check's cost does not depend on the types). */
function shapesFor(css: readonly ChangeSet[]): { catalog: Catalog; shapes: TableShape[] } {
  const cols = new Map<string, Set<string>>();
  for (const cs of css) for (const op of cs.ops) {
    const set = cols.get(op.table) ?? new Set<string>();
    cols.set(op.table, set);
    if (op.kind === 'insert') for (const c of Object.keys(op.row)) set.add(c);
    if (op.kind === 'update') for (const c of Object.keys(op.set)) set.add(c);
  }
  const tables = new Map<string, TableInfo>();
  const shapes: TableShape[] = [];
  for (const [name, set] of cols) {
    const columns: ColumnInfo[] = [...set].map((c, i) => ({
      name: c, ordinal: i + 1, dataType: 'varchar', columnType: 'varchar(255)', nullable: true, autoIncrement: false,
      generated: false, binary: false, charset: 'utf8mb4', default: null,
    }));
    tables.set(name, {
      name, engine: 'InnoDB', columns, column: new Map(columns.map((c) => [c.name, c])), primaryKey: [], uniqueKeys: [],
      foreignKeys: [], refs: new Map(), identity: null, identityProblem: null, localColumns: new Set(),
    });
    shapes.push({ table: name, columns: columns.map((c) => ({ name: c.name, type: c.columnType, charset: c.charset, nullable: true, default: null })) });
  }
  return { catalog: { schema: 'openmrs', tables, table: (n) => tables.get(n)! }, shapes };
}

/** What table shapes add to one 200-record batch: finding the tables, writing and reading the <s> elements, checking each change set. */
async function shapeCost(log: (line: string) => void, reg: Array<{ seq: string; body: string }>, regBatch: Buffer): Promise<void> {
  const css = reg.map((r) => decodeChangeSet(r.body));
  const { catalog, shapes } = shapesFor(css);
  const synced = new Set(catalog.tables.keys());
  const xml = encodeShapes(shapes);
  const withShapes: Buffer[] = [];
  for await (const c of batchChunks(header, reg, shapes)) withShapes.push(c);
  const shaped = Buffer.concat(withShapes);
  const rounds = 200;
  const send = await best(3, () => {
    for (let r = 0; r < rounds; r++) {
      const tables = new Set<string>();
      for (const b of reg) tablesOfBody(b.body, tables);
      encodeShapes(shapes.filter((s) => tables.has(s.table)));
    }
  });
  const check = await best(3, () => {
    for (let r = 0; r < rounds; r++) {
      const map = shapeMap(shapes);
      for (const cs of css) if (checkShape(catalog, synced, cs, map).kind !== 'ok') throw new Error('held');
    }
  });
  const plain = await best(3, async () => {
    for (let r = 0; r < 20; r++) for await (const item of readBatch([regBatch])) void item;
  });
  const read = await best(3, async () => {
    for (let r = 0; r < 20; r++) for await (const item of readBatch([shaped])) void item;
  });
  const us = (s: number, n: number): string => `${((s / n) * 1e6).toFixed(0)} µs`;
  log(`table shapes per 200-registration batch (${shapes.length} tables): ${xml.length} B raw, ` +
    `${brotliCompressSync(shaped).length - brotliCompressSync(regBatch).length} B more brotli; sender (find tables, write <s>) ${us(send, rounds)}, ` +
    `receiver reads them ${us(Math.max(0, read - plain), 20)} and checks ${us(check, rounds)}; readBatch of the batch alone ${us(plain, 20)}`);
}
