// Produced batches validate against apply/spokesync-batch.xsd (the schema other
// consumers rely on), and the schema does reject what it should.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { validateXML } from 'xmllint-wasm';
import { encodeBatch } from '../../apply/codec/batch-writer.js';
import { decodeBatch } from '../../apply/codec/batch-reader.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import { rowDigest } from '../../apply/codec/digest.js';
import type { BatchEntry, ChangeSet } from '../../apply/core/model.js';
import { WIRE_NAMESPACE } from '../../apply/core/model.js';
import { prng, registration } from './codec-fixtures.js';

// dist/test/unit → repository root
const xsdPath = fileURLToPath(new URL('../../../apply/spokesync-batch.xsd', import.meta.url));
const schema = { fileName: 'spokesync-batch.xsd', contents: readFileSync(xsdPath, 'utf8') };

async function validate(xml: string | Buffer): Promise<{ valid: boolean; errors: string[] }> {
  const r = await validateXML({ xml: { fileName: 'batch.xml', contents: xml.toString() }, schema });
  return { valid: r.valid, errors: r.errors.map((e) => e.message) };
}

const header = { version: 1, from: 'rwinkwavu', to: 'kigali', seq: '18446744073709551615', ack: '0', more: false } as const;

const awkward: ChangeSet = {
  id: 'elsewhere:\u0001', origin: 'rwinkwavu', hlc: '1', time: '2026-01-01T00:00:00Z',
  ops: [
    {
      kind: 'insert', table: 'weird\u0000table', id: '["a\u0001","b"]',
      row: {
        text: 'a\r\nb\tc ]]> & < > "', nul: '\u0000', nonchar: '\uFFFF', lone: '\uD800', empty: '', none: null,
        bytes: Buffer.from([0, 255]), nobytes: Buffer.alloc(0), ref: { ref: 'users', id: 'u1' }, oddref: { ref: 't\u0002', id: '\u0003' },
        'col\u0007': 'x', emoji: '😀',
      },
    },
    { kind: 'update', table: 'person', id: 'p1', set: { dead: '1', death_date: '2026-01-01 00:00:00' }, old: { dead: '0', death_date: null } },
    { kind: 'update', table: 'person', id: 'p2', set: {}, old: {} },
    { kind: 'delete', table: 'person_name', id: 'n1', digest: rowDigest({ a: '1' }) },
    { kind: 'insert', table: 'empty', id: '', row: {} },
    { kind: 'insert', table: 'person', id: 'p9', row: { gender: 'F', death_date: null, uuid: 'p9', dead: null } },
  ],
};

void t.test('produced batches validate against the XSD', async (t) => {
  const rnd = prng(5);
  const entries: BatchEntry[] = [
    ...Array.from({ length: 20 }, (_, i) => ({ seq: String(i + 1), cs: registration(i, rnd) })),
    { seq: '100', cs: awkward },
  ];
  const r = await validate(await encodeBatch(header, entries));
  t.same(r.errors, []);
  t.ok(r.valid, 'batch with registrations and awkward values is valid');
  const empty = await validate(await encodeBatch({ ...header, more: true }, []));
  t.ok(empty.valid, 'empty batch is valid');
  const restored = await validate(await encodeBatch({ ...header, inc: '0123456789abcdef0123456789abcdef', rinc: 'fedcba9876543210' }, []));
  t.same(restored.errors, []);
  t.ok(restored.valid, 'a batch with incarnations is valid');
});

void t.test('a journal fragment with the namespace added validates as a <cs>', async (t) => {
  const body = encodeChangeSet(awkward).replace('<cs ', `<cs xmlns="${WIRE_NAMESPACE}" `);
  const r = await validate(body);
  t.same(r.errors, []);
  t.ok(r.valid);
});

void t.test('the XSD rejects non-conforming batches', async (t) => {
  const good = (await encodeBatch(header, [{ seq: '1', cs: awkward }])).toString();
  const broken: Array<[string, string]> = [
    ['unknown element', good.replace('<e seq="1">', '<x/><e seq="1">')],
    ['missing attribute', good.replace(' ack="0"', '')],
    ['bad seq', good.replace('<e seq="1">', '<e seq="01">')],
    ['wrong namespace', good.replace(WIRE_NAMESPACE, 'urn:spokesync:batch:2')],
    ['unknown encoding', good.replace(' e="b"', ' e="x"')],
    ['bad node id', good.replace('from="rwinkwavu"', 'from="Rwinkwavu"')],
    ['old values before new', good.replace('<u t="person" k="p1"><c n="dead">', '<u t="person" k="p1"><o n="x">0</o><c n="dead">')],
    ['delete without digest', good.replace(/ g="[^"]*"/, '')],
    ['bad base64 name', good.replace(/ T="[^"]*"/, ' T="!!"')],
    ['u naming an odd column', good.replace(' u="uuid"', ' u="uu id"')],
    ['z with two spaces', good.replace(' z="death_date dead"', ' z="death_date  dead"')],
    ['z with a leading space', good.replace(' z="death_date dead"', ' z=" death_date dead"')],
    ['empty z', good.replace(' z="death_date dead"', ' z=""')],
    ['z on an update', good.replace('<u t="person" k="p1">', '<u t="person" k="p1" z="dead">')],
    ['u on a delete', good.replace('<d t="person_name"', '<d u="uuid" t="person_name"')],
  ];
  // one xmllint run for all of them (each run costs about half a second); every file must fail
  const files = broken.map(([, xml], i) => ({ fileName: `broken${i}.xml`, contents: xml }));
  const r = await validateXML({ xml: files, schema });
  const failed = new Set(r.errors.map((e) => e.loc?.fileName));
  broken.forEach(([name, xml], i) => {
    t.not(xml, good, `${name}: the mutation applies`);
    t.ok(failed.has(`broken${i}.xml`), `${name}: rejected by the XSD`);
  });
  t.notOk(r.valid);
});

void t.test('the example in apply/FORMAT.md is valid and decodes', async (t) => {
  const md = readFileSync(fileURLToPath(new URL('../../../apply/FORMAT.md', import.meta.url)), 'utf8');
  const example = /```xml\n([\s\S]*?)```/.exec(md)?.[1];
  if (example === undefined) throw new Error('no xml example in FORMAT.md');
  const r = await validate(example);
  t.same(r.errors, []);
  const d = await decodeBatch(example);
  t.equal(d.entries.length, 2);
  t.same(d.entries[0]!.cs.ops[0], {
    kind: 'insert', table: 'person', id: 'a08ff49b-6f77-4632-a16c-43069c43a8c3',
    row: {
      gender: 'F', birthdate: '1972-07-18', creator: { ref: 'users', id: '1010d442-e134-11de-babe-001e378eb67e' },
      date_created: '2026-03-01 08:00:00', death_date: null, void_reason: null, uuid: 'a08ff49b-6f77-4632-a16c-43069c43a8c3',
    },
  }, 'the short forms of the insert decode to the whole row');
  const upd = d.entries[1]!.cs;
  t.equal(upd.id, 'kigali:116129792000065536');
  t.same(upd.ops[0], {
    kind: 'update', table: 'obs', id: '0b1e7c26-46f1-4b59-9a5e-1c1d0e6b8a11',
    set: { value_text: 'line one\r\nline two', value_complex: Buffer.from('iVBORw0KGgo=', 'base64') },
    old: { value_text: null, value_complex: Buffer.alloc(0) },
  });
  t.same(upd.ops[1], { kind: 'delete', table: 'role_privilege', id: '["Clinician","View Patients"]', digest: 'mKX4WzWlAVoS1kI6j8U6J_' });
});
