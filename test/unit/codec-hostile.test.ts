// What a hostile or broken peer can send, and the code each is refused with.
import t from 'tap';
import { decodeBatch, readBatch } from '../../apply/codec/batch-reader.js';
import { DEFAULT_MAX_ELEMENTS } from '../../apply/codec/decode-limits.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { isSpokesyncError, type ErrorCode } from '../../apply/core/errors.js';

const NS = 'urn:spokesync:batch:1';
const HEAD = `<batch xmlns="${NS}" v="1" from="a" to="b" seq="1" ack="0" more="0">`;
const CS = '<cs o="a" h="1" t="2026-01-02T03:04:05Z">';
const batch = (inner: string): string => `<?xml version="1.0" encoding="UTF-8"?>${HEAD}${inner}</batch>`;
const entry = (ops: string, seq = '1'): string => `<e seq="${seq}">${CS}${ops}</cs></e>`;
const SECRET = 'PATIENT-NAME-XYZ';

const cases: Array<[string, string | Buffer, ErrorCode]> = [
  // DTDs and entities
  ['DOCTYPE', `<?xml version="1.0"?><!DOCTYPE batch>${HEAD}</batch>`, 'SPOKESYNC_E_XML_DTD'],
  ['entity bomb', `<?xml version="1.0"?><!DOCTYPE batch [<!ENTITY a "${SECRET}"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>${HEAD}<e seq="1">${CS}<i t="t" k="k"><c n="x">&c;</c></i></cs></e></batch>`, 'SPOKESYNC_E_XML_DTD'],
  ['external entity (XXE)', `<?xml version="1.0"?><!DOCTYPE batch [<!ENTITY x SYSTEM "file:///etc/passwd">]>${HEAD}${entry('<i t="t" k="k"><c n="x">&x;</c></i>')}</batch>`, 'SPOKESYNC_E_XML_DTD'],
  ['external DTD', `<!DOCTYPE batch SYSTEM "http://127.0.0.1:1/evil.dtd">${HEAD}</batch>`, 'SPOKESYNC_E_XML_DTD'],
  ['parameter entity', `<!DOCTYPE batch [<!ENTITY % p SYSTEM "http://127.0.0.1:1/p"> %p;]>${HEAD}</batch>`, 'SPOKESYNC_E_XML_DTD'],
  ['undeclared entity without DOCTYPE', batch(entry('<i t="t" k="k"><c n="x">&nbsp;</c></i>')), 'SPOKESYNC_E_XML_DTD'],
  ['entity in an attribute', batch(entry('<i t="&x;" k="k"/>')), 'SPOKESYNC_E_XML_DTD'],
  ['entity declaration without a DOCTYPE', `<!ENTITY x "y">${HEAD}</batch>`, 'SPOKESYNC_E_XML_DTD'],
  ['entity declaration inside the root', batch('<!ENTITY x SYSTEM "file:///etc/passwd">'), 'SPOKESYNC_E_XML_DTD'],
  ['element declaration', `<?xml version="1.0"?><!ELEMENT batch ANY>${HEAD}</batch>`, 'SPOKESYNC_E_XML_DTD'],
  ['lower-case doctype', `<!doctype batch>${HEAD}</batch>`, 'SPOKESYNC_E_XML_DTD'],
  ['DOCTYPE after the root starts', `${HEAD}<!DOCTYPE batch></batch>`, 'SPOKESYNC_E_XML_DTD'],
  // structure
  ['unknown element', batch('<x/>'), 'SPOKESYNC_E_XML'],
  ['unknown element in cs', batch(entry('<insert t="t" k="k"/>')), 'SPOKESYNC_E_XML'],
  ['unknown element in a column', batch(entry('<i t="t" k="k"><c n="x"><b/></c></i>')), 'SPOKESYNC_E_XML'],
  ['unknown attribute', batch(entry('<i t="t" k="k" q="1"/>')), 'SPOKESYNC_E_XML'],
  ['unknown attribute on batch', `<batch xmlns="${NS}" v="1" from="a" to="b" seq="1" ack="0" more="0" extra="1"></batch>`, 'SPOKESYNC_E_XML'],
  ['wrong namespace', `<batch xmlns="urn:spokesync:batch:2" v="1" from="a" to="b" seq="1" ack="0" more="0"/>`, 'SPOKESYNC_E_XML'],
  ['no namespace', `<batch v="1" from="a" to="b" seq="1" ack="0" more="0"/>`, 'SPOKESYNC_E_XML'],
  ['namespace changed on a child', batch(`<e seq="1"><cs xmlns="urn:other" o="a" h="1" t="2026-01-02T03:04:05Z"/></e>`), 'SPOKESYNC_E_XML'],
  ['prefixed element', `<s:batch xmlns:s="${NS}" v="1" from="a" to="b" seq="1" ack="0" more="0"/>`, 'SPOKESYNC_E_XML'],
  ['unknown version', `<batch xmlns="${NS}" v="2" from="a" to="b" seq="1" ack="0" more="0"/>`, 'SPOKESYNC_E_XML'],
  ['missing attribute', `<batch xmlns="${NS}" v="1" from="a" seq="1" ack="0" more="0"/>`, 'SPOKESYNC_E_XML'],
  ['missing identity', batch(entry('<i t="t"/>')), 'SPOKESYNC_E_XML'],
  ['missing column name', batch(entry('<i t="t" k="k"><c>1</c></i>')), 'SPOKESYNC_E_XML'],
  ['both n and N', batch(entry('<i t="t" k="k"><c n="x" N="eA==">1</c></i>')), 'SPOKESYNC_E_XML'],
  ['column given twice', batch(entry('<i t="t" k="k"><c n="x">1</c><c n="x">2</c></i>')), 'SPOKESYNC_E_XML'],
  ['old value in an insert', batch(entry('<i t="t" k="k"><o n="x">1</o></i>')), 'SPOKESYNC_E_XML'],
  ['new value after old values', batch(entry('<u t="t" k="k"><o n="x">1</o><c n="x">2</c></u>')), 'SPOKESYNC_E_XML'],
  ['delete with columns', batch(entry('<d t="t" k="k" g="abc"><c n="x">1</c></d>')), 'SPOKESYNC_E_XML'],
  ['delete without digest', batch(entry('<d t="t" k="k"/>')), 'SPOKESYNC_E_XML'],
  ['null with content', batch(entry(`<i t="t" k="k"><c n="x" z="1">${SECRET}</c></i>`)), 'SPOKESYNC_E_XML'],
  ['null with a reference', batch(entry('<i t="t" k="k"><c n="x" z="1" r="t"/></i>')), 'SPOKESYNC_E_XML'],
  ['binary reference', batch(entry('<i t="t" k="k"><c n="x" e="b" r="t">AA==</c></i>')), 'SPOKESYNC_E_XML'],
  ['unknown encoding', batch(entry('<i t="t" k="k"><c n="x" e="hex">00</c></i>')), 'SPOKESYNC_E_XML'],
  ['two change sets in one entry', batch(`<e seq="1">${CS}</cs>${CS}</cs></e>`), 'SPOKESYNC_E_XML'],
  ['empty entry', batch('<e seq="1"></e>'), 'SPOKESYNC_E_XML'],
  ['text between entries', batch(`${SECRET}${entry('')}`), 'SPOKESYNC_E_XML'],
  ['processing instruction', batch('<?evil x?>'), 'SPOKESYNC_E_XML'],
  ['CDATA outside a column', batch(`<![CDATA[${SECRET}]]>`), 'SPOKESYNC_E_XML'],
  ['XML 1.1 (would allow control characters)', `<?xml version="1.1"?>${HEAD}</batch>`, 'SPOKESYNC_E_XML'],
  ['a character reference to a control character', batch(entry('<i t="t" k="k"><c n="x">&#1;</c></i>')), 'SPOKESYNC_E_XML'],
  ['declared encoding other than UTF-8', `<?xml version="1.0" encoding="ISO-8859-1"?>${HEAD}</batch>`, 'SPOKESYNC_E_XML'],
  // base64
  ['bad base64', batch(entry(`<i t="t" k="k"><c n="x" e="b">@@@@</c></i>`)), 'SPOKESYNC_E_XML'],
  ['base64 of the wrong length', batch(entry(`<i t="t" k="k"><c n="x" e="b">AAA</c></i>`)), 'SPOKESYNC_E_XML'],
  ['non-canonical base64', batch(entry(`<i t="t" k="k"><c n="x" e="b">AB==</c></i>`)), 'SPOKESYNC_E_XML'],
  ['base64 text that is not UTF-8', batch(entry(`<i t="t" k="k"><c n="x" e="u">/w==</c></i>`)), 'SPOKESYNC_E_XML'],
  ['odd UTF-16 bytes', batch(entry(`<i t="t" k="k"><c n="x" e="w">AA==</c></i>`)), 'SPOKESYNC_E_XML'],
  ['bad base64 table name', batch(entry(`<i T="!!" k="k"/>`)), 'SPOKESYNC_E_XML'],
  // numbers
  ['seq with leading zero', batch(entry('', '01')), 'SPOKESYNC_E_XML'],
  ['seq too big for uint64', batch(entry('', '18446744073709551616')), 'SPOKESYNC_E_XML'],
  ['negative ack', `<batch xmlns="${NS}" v="1" from="a" to="b" seq="1" ack="-1" more="0"/>`, 'SPOKESYNC_E_XML'],
  ['seqs going backwards', batch(entry('', '5') + entry('', '4')), 'SPOKESYNC_E_XML'],
  ['repeated seq', batch(entry('', '5') + entry('', '5')), 'SPOKESYNC_E_XML'],
  ['bad hlc', batch(`<e seq="1"><cs o="a" h="x" t="2026-01-02T03:04:05Z"/></e>`), 'SPOKESYNC_E_XML'],
  ['bad node id', `<batch xmlns="${NS}" v="1" from="A B" to="b" seq="1" ack="0" more="0"/>`, 'SPOKESYNC_E_XML'],
  ['bad more', `<batch xmlns="${NS}" v="1" from="a" to="b" seq="1" ack="0" more="yes"/>`, 'SPOKESYNC_E_XML'],
  // broken documents
  ['truncated document', batch(entry('<i t="t" k="k"/>')).slice(0, -10), 'SPOKESYNC_E_XML'],
  ['truncated inside a tag', `${HEAD}<e seq="1"><cs o="a"`, 'SPOKESYNC_E_XML'],
  ['empty body', '', 'SPOKESYNC_E_XML'],
  ['garbage bytes', Buffer.from([0x00, 0xff, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef]), 'SPOKESYNC_E_XML'],
  ['invalid UTF-8 inside text', Buffer.concat([Buffer.from(batch(entry('<i t="t" k="k"><c n="x">'))).subarray(0, -20), Buffer.from([0xc3, 0x28])]), 'SPOKESYNC_E_XML'],
  ['truncated UTF-8 at the end', Buffer.concat([Buffer.from(batch('')), Buffer.from([0xe2, 0x82])]), 'SPOKESYNC_E_XML'],
  ['JSON instead of XML', '{"batch":1}', 'SPOKESYNC_E_XML'],
  ['two roots', `${HEAD}</batch>${HEAD}</batch>`, 'SPOKESYNC_E_XML'],
  ['a change set where a batch belongs', `${CS}</cs>`, 'SPOKESYNC_E_XML'],
];

void t.test('hostile and broken batches are refused with the right code, without row values in the message', async (t) => {
  for (const [name, input, code] of cases) {
    try {
      await decodeBatch(input);
      t.fail(`${name}: accepted`);
    } catch (e) {
      t.ok(isSpokesyncError(e, code), `${name}: ${code}${isSpokesyncError(e) ? ` (got ${e.code}: ${e.message})` : ` (got ${String(e)})`}`);
      t.notMatch(String((e as Error).message), SECRET, `${name}: message has no row value`);
    }
  }
});

void t.test('the billion-laughs document is refused before anything is expanded', async (t) => {
  let dtd = '<!ENTITY l0 "ha">';
  for (let i = 1; i < 10; i++) dtd += `<!ENTITY l${i} "${`&l${i - 1};`.repeat(10)}">`;
  const doc = `<?xml version="1.0"?><!DOCTYPE batch [${dtd}]>${HEAD}<e seq="1">${CS}<i t="t" k="k"><c n="x">&l9;</c></i></cs></e></batch>`;
  const before = process.memoryUsage().heapUsed;
  await t.rejects(decodeBatch(doc), { code: 'SPOKESYNC_E_XML_DTD' });
  t.ok(process.memoryUsage().heapUsed - before < 50e6, 'no expansion happened');
});

const FRAG_OK = `${CS}<i t="t" k="k"><c n="x">1</c></i></cs>`;
const fragments: Array<[string, string, ErrorCode]> = [
  ['DOCTYPE', `<!DOCTYPE cs>${FRAG_OK}`, 'SPOKESYNC_E_XML_DTD'],
  ['entity', `${CS}<i t="t" k="k"><c n="x">&e;</c></i></cs>`, 'SPOKESYNC_E_XML_DTD'],
  ['entity declaration', `<!ENTITY e "x">${FRAG_OK}`, 'SPOKESYNC_E_XML_DTD'],
  ['two change sets', FRAG_OK + FRAG_OK, 'SPOKESYNC_E_XML'],
  ['trailing text', `${FRAG_OK}${SECRET}`, 'SPOKESYNC_E_XML'],
  ['nothing', '', 'SPOKESYNC_E_XML'],
  ['a batch instead of a change set', `${HEAD}</batch>`, 'SPOKESYNC_E_XML'],
  ['wrong namespace', `<cs xmlns="urn:x" o="a" h="1" t="2026-01-02T03:04:05Z"/>`, 'SPOKESYNC_E_XML'],
  ['truncated', FRAG_OK.slice(0, -3), 'SPOKESYNC_E_XML'],
  ['unknown attribute', `<cs o="a" h="1" t="2026-01-02T03:04:05Z" x="1"/>`, 'SPOKESYNC_E_XML'],
  ['missing time', `<cs o="a" h="1"/>`, 'SPOKESYNC_E_XML'],
];

void t.test('journal fragments are checked as strictly', async (t) => {
  t.equal(decodeChangeSet(FRAG_OK).id, 'a:1', 'the well-formed fragment decodes');
  t.equal(decodeChangeSet(`<cs xmlns="${NS}" o="a" h="1" t="2026-01-02T03:04:05Z"/>`).id, 'a:1', 'a redundant namespace declaration is fine');
  for (const [name, input, code] of fragments) {
    t.throws(() => decodeChangeSet(input), { code }, name);
  }
  t.throws(() => decodeChangeSet(Buffer.from([0xff, 0xfe, 0x00])), { code: 'SPOKESYNC_E_XML' }, 'not UTF-8');
});

void t.test('other producers may pretty-print, use CDATA, comments and base64 line breaks', async (t) => {
  const doc = `<?xml version="1.0" encoding="utf-8"?>
<!-- written by hand -->
<batch xmlns="${NS}" v="1" from="a" to="b" seq="1" ack="0" more="true">
  <e seq="1">
    <cs id="a:1" o="a" h="1" t="2026-01-02T03:04:05Z">
      <i t="t" k="k">
        <c n="x"><![CDATA[<raw> & ]]]]><![CDATA[>]]></c>
        <c n="y" e="b">
          AAEC
          Aw==
        </c>
        <c n="z">a<!-- note -->b</c>
      </i>
    </cs>
  </e>
</batch>
`;
  const d = await decodeBatch(doc);
  t.equal(d.header.more, true);
  const row = (d.entries[0]!.cs.ops[0] as { row: Record<string, unknown> }).row;
  t.equal(row.x, '<raw> & ]]>');
  t.same(row.y, Buffer.from([0, 1, 2, 3]));
  t.equal(row.z, 'ab');
});

// Shapes that cost memory rather than break the format: each is refused while reading,
// before the rest of the body is read (the source counts how much was pulled).
async function pulled(chunks: Iterable<string>, limits = {}): Promise<{ error: unknown; pulled: number; total: number }> {
  const all = [...chunks];
  let n = 0;
  const source = (function* () {
    for (const c of all) {
      n++;
      yield c;
    }
  })();
  try {
    for await (const item of readBatch(source, limits)) void item;
    return { error: undefined, pulled: n, total: all.length };
  } catch (e) {
    return { error: e, pulled: n, total: all.length };
  }
}

function* repeated(head: string, piece: string, times: number, tail: string, per = 10_000): Generator<string> {
  yield head;
  for (let i = 0; i < times; i += per) yield piece.repeat(Math.min(per, times - i)).replace(/#/g, () => String(i++ % 1e9));
  yield tail;
}

void t.test('an element with 1,000,000 attributes is refused at its 17th, not after the tag is read', async (t) => {
  let k = 0;
  const attrs = function* (): Generator<string> {
    yield `${HEAD}<e seq="1">${CS}<i t="t" k="k"`;
    for (let c = 0; c < 100; c++) {
      let s = '';
      for (let i = 0; i < 10_000; i++) s += ` a${k++}="1"`;
      yield s;
    }
    yield '/></cs></e></batch>';
  };
  const r = await pulled(attrs());
  t.ok(isSpokesyncError(r.error, 'SPOKESYNC_E_XML'), `refused: ${String(r.error)}`);
  t.match(String((r.error as Error).message), /more than 16 attributes/);
  t.ok(r.pulled <= 3, `read ${r.pulled} of ${r.total} chunks`);
});

void t.test('one tag longer than the tag limit is refused before its end arrives', async (t) => {
  const big = 'x'.repeat(64 * 1024);
  for (const [name, open] of [['attribute value', `<i t="t" k="`], ['element name', '<i'], ['attribute name', '<i t']] as const) {
    const chunks = [`${HEAD}<e seq="1">${CS}${open}`, ...Array.from({ length: 40 }, () => big), '"/></cs></e></batch>'];
    const r = await pulled(chunks);
    t.ok(isSpokesyncError(r.error, 'SPOKESYNC_E_XML'), `${name}: refused (${String(r.error)})`);
    t.match(String((r.error as Error).message), /a tag longer than/, name);
    t.ok(r.pulled <= 20, `${name}: read ${r.pulled} of ${r.total} chunks`);
  }
  // the same length in a value, a comment or CDATA is a value, not a tag
  const value = `${HEAD}${entry(`<i t="t" k="k"><c n="x">${'v'.repeat(1_200_000)}</c><c n="y"><!--${'<"'.repeat(600_000)}--><![CDATA[${'<\''.repeat(600_000)}]]></c></i>`)}</batch>`;
  const d = await decodeBatch(value);
  t.equal(((d.entries[0]!.cs.ops[0] as { row: Record<string, string> }).row.y)!.length, 1_200_000, 'long comments and CDATA pass');
});

void t.test('counts: elements per batch, columns per row, name lengths, nesting', async (t) => {
  const many = await pulled(repeated(`${HEAD}<e seq="1">${CS}`, '<d t="t" k="#" g="abc"/>', 1_000_000, '</cs></e></batch>'), { maxElements: DEFAULT_MAX_ELEMENTS });
  t.ok(isSpokesyncError(many.error, 'SPOKESYNC_E_BATCH_TOO_LARGE'), `1,000,000 elements: ${String(many.error)}`);
  t.ok(many.pulled <= 27, `read ${many.pulled} of ${many.total} chunks`);
  await t.rejects(decodeBatch(batch(entry('<i t="t" k="k"/>'.repeat(20))), { maxElements: 20 }), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' }, 'maxElements');
  t.equal((await decodeBatch(batch(entry('<i t="t" k="k"/>'.repeat(20))), { maxElements: 23 })).entries[0]!.cs.ops.length, 20, 'maxElements counts every element');

  const cols = (n: number, el = 'c'): string => Array.from({ length: n }, (_, i) => `<${el} n="c${i}">1</${el}>`).join('');
  t.equal(((await decodeBatch(batch(entry(`<i t="t" k="k">${cols(4096)}</i>`)))).entries[0]!.cs.ops[0] as { row: object }).row && 1, 1, '4096 columns pass');
  await t.rejects(decodeBatch(batch(entry(`<i t="t" k="k">${cols(4097)}</i>`))), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' }, '4097 columns');
  await t.rejects(decodeBatch(batch(entry(`<u t="t" k="k">${cols(10)}${cols(4097, 'o')}</u>`))), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' }, '4097 old values');
  const names = Array.from({ length: 4097 }, (_, i) => `n${i}`).join(' ');
  await t.rejects(decodeBatch(batch(entry(`<i t="t" k="k" z="${names}"/>`))), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' }, '4097 null columns');
  await t.rejects(decodeBatch(batch(entry(`<i t="t" k="k" z="${names.split(' ').slice(0, 2000).join(' ')}">${cols(3000)}</i>`))), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' }, 'null and element columns together');

  const long = 'x'.repeat(65);
  for (const [name, ops] of [
    ['column name', `<i t="t" k="k"><c n="${long}">1</c></i>`],
    ['base64 column name', `<i t="t" k="k"><c N="${Buffer.from(long).toString('base64')}">1</c></i>`],
    ['table name', `<i t="${long}" k="k"/>`],
    ['referenced table', `<i t="t" k="k"><c n="x" r="${long}">1</c></i>`],
    ['null column', `<i t="t" k="k" z="${long}"/>`],
    ['same column', `<i t="t" k="k" u="${long}"/>`],
  ] as const) {
    await t.rejects(decodeBatch(batch(entry(ops))), { code: 'SPOKESYNC_E_XML' }, `a ${name} of 65 characters`);
  }
  const ok = 'é'.repeat(64);
  t.ok(await decodeBatch(batch(entry(`<i t="t" k="k"><c N="${Buffer.from(ok).toString('base64')}">1</c></i>`))), '64 characters (128 bytes) pass');

  const deep = await pulled(repeated(`${HEAD}<e seq="1">${CS}<i t="t" k="k"><c n="x">`, '<c n="x">', 1_000_000, '</batch>'));
  t.ok(isSpokesyncError(deep.error, 'SPOKESYNC_E_XML'), `nesting 1,000,000 deep: ${String(deep.error)}`);
  t.ok(deep.pulled <= 2, `read ${deep.pulled} of ${deep.total} chunks`);
  t.throws(() => decodeChangeSet(`${CS}${'<i t="t" k="k"/>'.repeat(11)}</cs>`, { maxElements: 11 }), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' }, 'fragments take a count too');
});

void t.test('what a decoded change set keeps does not keep the batch text it was cut from', async (t) => {
  const v8 = await import('node:v8');
  const vm = await import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const kept: unknown[] = [];
  const filler = 'f'.repeat(1024 * 1024);
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 40; i++) {
    const id = `0000${i % 10}`.slice(-4) + '0000-aaaa-bbbb-cccc-dddddddddddd';
    const doc = `${HEAD}<e seq="1234567890123${i}"><cs id="origin-node-long:117745985060864015" o="origin-node-long" h="11774598506086${4000 + i}" t="2026-01-02T03:04:05Z">` +
      `<u t="a_table_with_a_long_name" k="${id}"><c n="a_column_with_a_long_name">a value longer than thirteen</c><c n="x">${filler}</c></u></cs></e></batch>`;
    const d = await decodeBatch(i % 2 === 0 ? doc : Buffer.from(doc));
    const cs = d.entries[0]!.cs;
    const op = cs.ops[0] as { table: string; id: string; set: Record<string, string> };
    kept.push([d.header.from, d.entries[0]!.seq, cs.id, cs.origin, cs.hlc, cs.time, op.table, op.id, Object.keys(op.set)[0], op.set.a_column_with_a_long_name]);
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  t.ok(grown < 8 * 1024 * 1024, `40 batches of 1 MiB decoded, their ids kept: the heap grew by ${(grown / 1048576).toFixed(1)} MiB`);
  t.equal(kept.length, 40);
});

void t.test('batches read at once share one budget; a refused one gives its share back', async (t) => {
  const { DecodeBudget } = await import('../../apply/codec/decode-limits.js');
  const budget = new DecodeBudget(30, 1_000_000);
  const doc = batch(entry('<i t="t" k="k"/>'.repeat(20)));
  const first = budget.lease();
  t.equal((await decodeBatch(doc, { lease: first })).entries[0]!.cs.ops.length, 20, 'the first is read whole (23 elements)');
  const second = budget.lease();
  await t.rejects(decodeBatch(doc, { lease: second }), { code: 'SPOKESYNC_E_OVERLOADED' }, 'a second at the same time is refused');
  second.release();
  t.same(budget.held, { elements: 23, bytes: Buffer.byteLength(doc) }, 'the refused one holds nothing');
  first.release();
  const third = budget.lease();
  t.ok(await decodeBatch(doc, { lease: third }), 'once the first is done, the next is read');
  third.release();
  t.same(budget.held, { elements: 0, bytes: 0 });
});
