// Property tests: random change sets (random names, identities and values of
// every kind, awkward characters favoured) survive encode → decode unchanged,
// alone and inside batches cut into random chunks.
import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import { rowDigest } from '../../apply/codec/digest.js';
import { encodeBatch } from '../../apply/codec/batch-writer.js';
import { readBatch } from '../../apply/codec/batch-reader.js';
import type { BatchEntry, ChangeSet, Op, Row, Value } from '../../apply/core/model.js';

/** plain objects, as decode builds them (fast-check may otherwise give null prototypes) */
const NP = { noNullPrototype: true } as const;

const awkward = fc.constantFrom('\r', '\n', '\r\n', '\t', '&', '<', '>', ']]>', '"', "'", '\u0000', '\u001f', '\uFFFE', '\uFFFF', '😀', 'é', ' ', '&amp;', '\u0085', '\u2028');
const wellFormed = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 2, arbitrary: fc.array(awkward, { maxLength: 6 }).map((a) => a.join('')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
/** any UTF-16 sequence, lone surrogates included (values only) */
const anyUnits = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 8 }).map((a) => String.fromCharCode(...a));
const name = wellFormed.filter((s) => s.length > 0);

const value: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  wellFormed,
  anyUnits,
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  fc.record({ ref: name, id: wellFormed }, NP),
);

const row: fc.Arbitrary<Row> = fc
  .uniqueArray(fc.tuple(name, value), { selector: (e) => e[0], maxLength: 6 })
  .map((entries) => Object.fromEntries(entries) as Row);

const digest = fc.string({ unit: fc.constantFrom(...'ABCXYZabcxyz0189-_'), minLength: 1, maxLength: 22 });

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), table: name, id: wellFormed, row }, NP),
  fc.record({ kind: fc.constant('update' as const), table: name, id: wellFormed, set: row, old: row }, NP),
  fc.record({ kind: fc.constant('delete' as const), table: name, id: wellFormed, digest }, NP),
);

const uint64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String);
const time = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
  .map((d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z'));

const changeSet: fc.Arbitrary<ChangeSet> = fc
  .record({
    origin: fc.stringMatching(/^[a-z0-9-]{1,12}$/),
    hlc: uint64,
    time,
    ops: fc.array(op, { maxLength: 5 }),
    customId: fc.option(wellFormed, { freq: 4 }),
  })
  .map(({ customId, ...r }) => ({ id: customId ?? `${r.origin}:${r.hlc}`, ...r }));

void t.test('random change sets round-trip exactly and re-encode to the same bytes', async (t) => {
  fc.assert(
    fc.property(changeSet, (cs) => {
      const xml = encodeChangeSet(cs);
      const back = decodeChangeSet(xml);
      return isDeepStrictEqual(back, cs) && encodeChangeSet(back) === xml;
    }),
    { numRuns: 400 },
  );
  t.pass('400 random change sets');
});

void t.test('the digest of a decoded row equals the digest of the original', async (t) => {
  fc.assert(
    fc.property(row, (r) => {
      const cs: ChangeSet = { id: 'a:1', origin: 'a', hlc: '1', time: '2026-01-01T00:00:00Z', ops: [{ kind: 'insert', table: 't', id: 'k', row: r }] };
      const back = (decodeChangeSet(encodeChangeSet(cs)).ops[0] as { row: Row }).row;
      return rowDigest(back) === rowDigest(r);
    }),
    { numRuns: 300 },
  );
  t.pass('300 random rows');
});

void t.test('different rows have different digests', async (t) => {
  fc.assert(
    fc.property(row, row, (a, b) => isDeepStrictEqual(a, b) === (rowDigest(a) === rowDigest(b))),
    { numRuns: 300 },
  );
  t.pass('300 random pairs');
});

void t.test('random batches cut into random chunks decode to what was sent', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(changeSet, { maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
      async (css, cuts) => {
        const entries: BatchEntry[] = css.map((cs, i) => ({ seq: String(i * 2 + 1), cs }));
        const header = { version: 1, from: 'a', to: 'b', seq: '3', ack: '9', more: css.length % 2 === 0 } as const;
        const xml = await encodeBatch(header, entries);
        const chunks: Buffer[] = [];
        for (let i = 0, c = 0; i < xml.length; c++) {
          const n = cuts[c % cuts.length]!;
          chunks.push(xml.subarray(i, i + n));
          i += n;
        }
        const got: BatchEntry[] = [];
        let first: unknown;
        for await (const item of readBatch(chunks)) {
          first ??= item.type;
          if (item.type === 'entry') got.push(item.entry);
          else if (item.type === 'header' && !isDeepStrictEqual(item.header, header)) return false;
        }
        return first === 'header' && isDeepStrictEqual(got, entries);
      },
    ),
    { numRuns: 150 },
  );
  t.pass('150 random batches');
});
