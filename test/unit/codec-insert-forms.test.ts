// The short forms of an insert: u="col" (that column's value is the identity k,
// left out) and z="a b" (those columns are NULL, left out). Decode gives back
// exactly the row the encoder was given; hostile variants are refused.
import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { decodeBatch } from '../../apply/codec/batch-reader.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import type { ChangeSet, InsertOp, Row, Value } from '../../apply/core/model.js';
import { isSpokesyncError } from '../../apply/core/errors.js';

const CS = '<cs o="a" h="1" t="2026-01-02T03:04:05Z">';
const cs = (ops: ChangeSet['ops']): ChangeSet => ({ id: 'a:1', origin: 'a', hlc: '1', time: '2026-01-02T03:04:05Z', ops });
const insert = (row: Row, id = 'p1', table = 'person'): InsertOp => ({ kind: 'insert', table, id, row });
const rowOf = (xml: string): Row => (decodeChangeSet(xml).ops[0] as InsertOp).row;

void t.test('the uuid column and null columns travel as attributes and come back exactly', async (t) => {
  const op = insert({ gender: 'F', death_date: null, creator: { ref: 'users', id: 'u1' }, void_reason: null, uuid: 'p1' });
  const xml = encodeChangeSet(cs([op]));
  t.equal(xml, `${CS}<i t="person" k="p1" u="uuid" z="death_date void_reason"><c n="gender">F</c><c n="creator" r="users">u1</c></i></cs>`);
  const back = decodeChangeSet(xml);
  t.ok(isDeepStrictEqual(back, cs([op])), 'same change set, uuid and explicit nulls in the row');
  t.same(Object.keys((back.ops[0] as InsertOp).row).sort(), Object.keys(op.row).sort());
  t.equal(encodeChangeSet(back), xml, 're-encodes to the same bytes');
});

void t.test('an insert of only the identity and nulls is an empty element', async (t) => {
  const xml = encodeChangeSet(cs([insert({ uuid: 'p1', a: null })]));
  t.equal(xml, `${CS}<i t="person" k="p1" u="uuid" z="a"/></cs>`);
  t.same(rowOf(xml), { uuid: 'p1', a: null });
});

void t.test('the long forms stay where the short ones cannot be used', async (t) => {
  // names outside [A-Za-z0-9_$] (space, dash, non-ASCII, unprintable) keep the element form
  const odd = insert({ 'my col': null, 'x-y': 'p1', 'é': null, 'c\u0001': null, b: null });
  const xml = encodeChangeSet(cs([odd]));
  t.match(xml, /<i t="person" k="p1" z="b">/);
  t.match(xml, /<c n="my col" z="1"\/>/);
  t.match(xml, /<c n="x-y">p1<\/c>/);
  t.ok(isDeepStrictEqual(rowOf(xml), odd.row));
  // two columns equal to the identity: neither is left out (which one would depend on order)
  const two = insert({ uuid: 'p1', copy: 'p1' });
  const twoXml = encodeChangeSet(cs([two]));
  t.notMatch(twoXml, / u=/);
  t.same(rowOf(twoXml), two.row);
  // a uuid other than the identity, or a Ref/Buffer equal to it, is an element
  for (const row of [{ uuid: 'p2' }, { uuid: { ref: 'person', id: 'p1' } }, { uuid: Buffer.from('p1') }] as Row[]) {
    const x = encodeChangeSet(cs([insert(row)]));
    t.notMatch(x, / u=/);
    t.ok(isDeepStrictEqual(rowOf(x), row));
  }
  // updates and deletes keep the element form
  const upd = encodeChangeSet(cs([{ kind: 'update', table: 'person', id: 'p1', set: { uuid: 'p1', a: null }, old: { a: '1' } }]));
  t.equal(upd, `${CS}<u t="person" k="p1"><c n="uuid">p1</c><c n="a" z="1"/><o n="a">1</o></u></cs>`);
});

void t.test('the identity in K (base64) and __proto__ as a column name', async (t) => {
  const odd = insert({ uuid: 'p\u0001' }, 'p\u0001');
  const x = encodeChangeSet(cs([odd]));
  t.match(x, / K="[^"]+" u="uuid"/);
  t.same(rowOf(x), { uuid: 'p\u0001' });
  const row: Row = {};
  Object.defineProperty(row, '__proto__', { value: null, enumerable: true, writable: true, configurable: true });
  const proto = encodeChangeSet(cs([insert(row)]));
  t.match(proto, / z="__proto__"/);
  const back = rowOf(proto);
  t.ok(Object.hasOwn(back, '__proto__'), 'an own column, not the prototype');
  t.equal(Object.getPrototypeOf(back), Object.prototype);
  t.ok(isDeepStrictEqual(back, row));
});

void t.test('hostile short forms are refused', async (t) => {
  const bad: Array<[string, string]> = [
    ['z naming a column twice', '<i t="t" k="k" z="a b a"/>'],
    ['z naming a column that is also an element', '<i t="t" k="k" z="a"><c n="a">1</c></i>'],
    ['z naming a column that is also an element with N', '<i t="t" k="k" z="a"><c N="YQ==">1</c></i>'],
    ['u naming a column that is also an element', '<i t="t" k="k" u="uuid"><c n="uuid">k</c></i>'],
    ['u naming a column that is also in z', '<i t="t" k="k" u="a" z="a"/>'],
    ['empty z', '<i t="t" k="k" z=""/>'],
    ['z with two spaces', '<i t="t" k="k" z="a  b"/>'],
    ['z with a trailing space', '<i t="t" k="k" z="a "/>'],
    ['z with a tab', '<i t="t" k="k" z="a&#9;b"/>'],
    ['z with an odd name', '<i t="t" k="k" z="a-b"/>'],
    ['empty u', '<i t="t" k="k" u=""/>'],
    ['u with two names', '<i t="t" k="k" u="a b"/>'],
    ['z on an update', '<u t="t" k="k" z="a"/>'],
    ['u on an update', '<u t="t" k="k" u="a"/>'],
    ['z on a delete', '<d t="t" k="k" g="abc" z="a"/>'],
  ];
  for (const [name, op] of bad) {
    t.throws(() => decodeChangeSet(`${CS}${op}</cs>`), { code: 'SPOKESYNC_E_XML' }, name);
    try {
      await decodeBatch(`<batch xmlns="urn:spokesync:batch:1" v="1" from="a" to="b" seq="1" ack="0" more="0"><e seq="1">${CS}${op}</cs></e></batch>`);
      t.fail(`${name}: accepted in a batch`);
    } catch (e) {
      t.ok(isSpokesyncError(e, 'SPOKESYNC_E_XML'), `${name}: refused in a batch`);
    }
  }
});

// rows whose names are mostly plain, with nulls and the identity favoured
const plain = fc.stringMatching(/^[A-Za-z0-9_$]{1,6}$/);
const anyName = fc.oneof({ weight: 4, arbitrary: plain }, { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 4 }) });
const idArb = fc.oneof(fc.uuid(), fc.string({ maxLength: 4 }));
const insertOp = idArb.chain((id) => {
  const value: fc.Arbitrary<Value> = fc.oneof(
    fc.constant(null), fc.constant(id), fc.string({ maxLength: 6 }),
    fc.record({ ref: plain, id: fc.constant(id) }, { noNullPrototype: true }),
  );
  return fc
    .uniqueArray(fc.tuple(anyName, value), { selector: (e) => e[0], maxLength: 8 })
    .map((entries): InsertOp => insert(Object.fromEntries(entries) as Row, id, 't'));
});

void t.test('random inserts round-trip exactly and re-encode to the same bytes', async (t) => {
  fc.assert(
    fc.property(fc.array(insertOp, { maxLength: 4 }), (ops) => {
      const xml = encodeChangeSet(cs(ops));
      const back = decodeChangeSet(xml);
      return isDeepStrictEqual(back, cs(ops)) && encodeChangeSet(back) === xml;
    }),
    { numRuns: 500 },
  );
  t.pass('500 random change sets of inserts');
});
