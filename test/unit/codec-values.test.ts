// Every Value kind and every awkward string round-trips bit for bit through
// encodeChangeSet/decodeChangeSet, in values, names and identities.
import t from 'tap';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import { rowDigest } from '../../apply/codec/digest.js';
import type { ChangeSet, Row, Value } from '../../apply/core/model.js';
import { isSpokesyncError } from '../../apply/core/errors.js';

const base = { id: 'kigali:42', origin: 'kigali', hlc: '42', time: '2026-01-02T03:04:05Z' } as const;

function csWith(row: Row, extra: Partial<ChangeSet> = {}): ChangeSet {
  return { ...base, ops: [{ kind: 'insert', table: 'person', id: 'p1', row }], ...extra };
}

const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const controls = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('');

const strings: Array<[string, string]> = [
  ['empty', ''],
  ['plain', 'Uwimana'],
  ['every C0 control', controls],
  ['NUL alone', '\u0000'],
  ['CR alone', '\r'],
  ['CRLF', 'a\r\nb'],
  ['lone CR in text', 'a\rb'],
  ['LF', 'a\nb\n'],
  ['tab', '\tx\t'],
  ['CDATA end', ']]>'],
  ['markup', '<c n="x">&amp;</c>'],
  ['ampersand', '&'],
  ['quotes', `"'`],
  ['leading/trailing spaces', '  x  '],
  ['only spaces', '   '],
  ['emoji', 'héllo 😀 👩‍👩‍👧'],
  ['U+FFFE', '\uFFFE'],
  ['U+FFFF', 'a\uFFFFb'],
  ['U+FFFD', '\uFFFD'],
  ['C1 and DEL', '\u007F\u0080\u009F'],
  ['lone high surrogate', 'a\uD800b'],
  ['lone low surrogate', '\uDC00'],
  ['surrogate pair split backwards', '\uDE00\uD83D'],
  ['BOM', '\uFEFFx'],
  ['very long', 'x&<'.repeat(200_000)],
  ['DATETIME(6)', '2026-01-02 03:04:05.123456'],
  ['DECIMAL(65,30)', '-12345678901234567890123456789012345.123456789012345678901234567890'],
  ['BIGINT UNSIGNED', '18446744073709551615'],
  ['TIME', '-838:59:59'],
  ['JSON', '{"a":[1,"\\u0000"]}'],
];

const values: Array<[string, Value]> = [
  ...strings.map(([n, s]): [string, Value] => [`string: ${n}`, s]),
  ['null', null],
  ['Buffer of all 256 byte values', allBytes],
  ['empty Buffer', Buffer.alloc(0)],
  ['Buffer that looks like text', Buffer.from('hello')],
  ['BIT(1)', Buffer.from([1])],
  ['Ref', { ref: 'users', id: '1010d442-e134-11de-babe-001e378eb67e' }],
  ['Ref with empty identity', { ref: 'users', id: '' }],
  ['Ref with awkward identity', { ref: 'role_privilege', id: '["a\\u0000",">\r\n"]' }],
  ['Ref with control chars', { ref: 't\u0001', id: '\u0002\r' }],
  ['Ref with lone surrogate identity', { ref: 'x', id: '\uD800' }],
];

void t.test('every value kind round-trips', async (t) => {
  for (const [name, v] of values) {
    const cs = csWith({ col: v });
    const xml = encodeChangeSet(cs);
    const back = decodeChangeSet(xml);
    const got = (back.ops[0] as { row: Row }).row.col;
    if (Buffer.isBuffer(v)) {
      t.ok(Buffer.isBuffer(got) && got.equals(v), name);
    } else {
      t.same(got, v, name);
      t.equal(typeof got, v === null ? 'object' : typeof v, `${name}: type kept`);
      if (typeof v === 'string') t.equal(got, v, `${name}: strictly equal`);
    }
    t.equal(encodeChangeSet(back), xml, `${name}: re-encodes to the same bytes`);
    t.equal(Buffer.from(xml).toString('utf8'), xml, `${name}: encoded text is well-formed UTF-16`);
  }
});

void t.test('null, empty string, empty Buffer and empty Ref are four different things', async (t) => {
  const row = { a: null, b: '', c: Buffer.alloc(0), d: { ref: 't', id: '' } };
  const back = (decodeChangeSet(encodeChangeSet(csWith(row))).ops[0] as { row: Row }).row;
  t.equal(back.a, null);
  t.equal(back.b, '');
  t.ok(Buffer.isBuffer(back.c) && back.c.length === 0);
  t.same(back.d, { ref: 't', id: '' });
  t.not(rowDigest({ a: null }), rowDigest({ a: '' }));
  t.not(rowDigest({ a: '' }), rowDigest({ a: Buffer.alloc(0) }));
  t.not(rowDigest({ a: 'x' }), rowDigest({ a: Buffer.from('x') }));
  t.not(rowDigest({ a: { ref: 't', id: 'x' } }), rowDigest({ a: 'x' }));
});

void t.test('names, identities and change set ids survive any characters', async (t) => {
  for (const [name, s] of strings) {
    if (s === '' || s.length > 10_000 || /[\uD800-\uDFFF]/.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) continue;
    // table and column names are at most 64 characters (MariaDB's limit, enforced by the decoder)
    const n = [...s].slice(0, 63).join('');
    const cs: ChangeSet = {
      ...base,
      id: `x${s}`,
      ops: [
        { kind: 'insert', table: n, id: s, row: { [n]: s } },
        { kind: 'update', table: `u${n}`, id: s, set: { [n]: { ref: n, id: s } }, old: { [n]: null } },
        { kind: 'delete', table: n, id: s, digest: rowDigest({ [n]: s }) },
      ],
    };
    const xml = encodeChangeSet(cs);
    t.same(decodeChangeSet(xml), cs, name);
    t.equal(encodeChangeSet(decodeChangeSet(xml)), xml, `${name}: deterministic`);
  }
});

void t.test('a name with a lone surrogate is refused clearly, not corrupted', async (t) => {
  const cs: ChangeSet = { ...base, ops: [{ kind: 'insert', table: 'x\uD800', id: '1', row: {} }] };
  t.throws(() => encodeChangeSet(cs), { code: 'SPOKESYNC_E_XML' });
  const col: ChangeSet = { ...base, ops: [{ kind: 'insert', table: 'x', id: '1', row: { '\uDC00': '' } }] };
  t.throws(() => encodeChangeSet(col), { code: 'SPOKESYNC_E_XML' });
});

void t.test('a column named __proto__ is data, not a prototype', async (t) => {
  const row: Record<string, Value> = {};
  Object.defineProperty(row, '__proto__', { value: 'x', enumerable: true, writable: true, configurable: true });
  const back = (decodeChangeSet(encodeChangeSet(csWith(row))).ops[0] as { row: Row }).row;
  t.ok(Object.hasOwn(back, '__proto__'));
  t.equal(Object.getPrototypeOf(back), Object.prototype);
  t.same(Object.keys(back), ['__proto__']);
});

void t.test('the id is left out when it is origin:hlc and kept otherwise', async (t) => {
  const usual = encodeChangeSet(csWith({}));
  t.notMatch(usual, /id=/);
  t.equal(decodeChangeSet(usual).id, 'kigali:42');
  const odd = encodeChangeSet(csWith({}, { id: 'other:7' }));
  t.match(odd, /id="other:7"/);
  t.equal(decodeChangeSet(odd).id, 'other:7');
});

void t.test('the encoding is compact and text stays readable', async (t) => {
  const xml = encodeChangeSet({
    ...base,
    ops: [
      { kind: 'insert', table: 'person', id: 'p1', row: { gender: 'F', dead: '0', death_date: null, creator: { ref: 'users', id: 'u1' } } },
      { kind: 'update', table: 'person', id: 'p1', set: { dead: '1' }, old: { dead: '0' } },
      { kind: 'delete', table: 'person_name', id: 'n1', digest: 'AAAAAAAAAAAAAAAAAAAAAA' },
    ],
  });
  t.equal(
    xml,
    '<cs o="kigali" h="42" t="2026-01-02T03:04:05Z">' +
      '<i t="person" k="p1" z="death_date"><c n="gender">F</c><c n="dead">0</c><c n="creator" r="users">u1</c></i>' +
      '<u t="person" k="p1"><c n="dead">1</c><o n="dead">0</o></u>' +
      '<d t="person_name" k="n1" g="AAAAAAAAAAAAAAAAAAAAAA"/></cs>',
  );
});

void t.test('encode refuses what the model does not allow, naming the field but not the value', async (t) => {
  const bad: Array<[string, ChangeSet]> = [
    ['origin', { ...base, origin: 'Kigali!', ops: [] }],
    ['hlc', { ...base, hlc: '01', ops: [] }],
    ['hlc too big', { ...base, hlc: '18446744073709551616', ops: [] }],
    ['time', { ...base, time: '2026-01-02 03:04:05', ops: [] }],
    ['digest', { ...base, ops: [{ kind: 'delete', table: 't', id: 'SECRET', digest: 'not a digest!' }] }],
    ['number value', csWith({ n: 5 as unknown as Value })],
    ['undefined value', csWith({ n: undefined as unknown as Value })],
  ];
  for (const [name, cs] of bad) {
    try {
      encodeChangeSet(cs);
      t.fail(`${name}: accepted`);
    } catch (e) {
      t.ok(isSpokesyncError(e, 'SPOKESYNC_E_XML'), name);
      t.notMatch((e as Error).message, /SECRET|Kigali!/, `${name}: no value in the message`);
    }
  }
});

void t.test('rowDigest is canonical: column order does not matter, content does', async (t) => {
  const a = rowDigest({ x: '1', y: null, z: Buffer.from([0]) });
  t.equal(a, rowDigest({ z: Buffer.from([0]), y: null, x: '1' }));
  t.match(a, /^[A-Za-z0-9_-]{22}$/);
  t.not(rowDigest({ x: '1', y: '' }), rowDigest({ x: '1y', y: '' }), 'length-prefixed: no boundary confusion');
  t.not(rowDigest({ 'a:': 'b' }), rowDigest({ a: ':b' }));
  t.not(rowDigest({ x: '\uD800' }), rowDigest({ x: '\uFFFD' }), 'lone surrogates are not folded into U+FFFD');
  t.not(rowDigest({ x: { ref: 'a', id: 'bc' } }), rowDigest({ x: { ref: 'ab', id: 'c' } }));
  t.equal(rowDigest({}), rowDigest({}));
  // pinned, so other implementations can check themselves against it
  t.equal(rowDigest({ uuid: 'p1', gender: 'F', birthdate: null, photo: Buffer.from([1, 2]), creator: { ref: 'users', id: 'u1' } }), PINNED);
});

const PINNED = 'mKX4WzWlAVoS1kI6j8U6J_';
