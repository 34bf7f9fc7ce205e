// The pure parts of capture, table-driven: number text, positions, DDL
// parsing, grouping, the identity cache, latin1 text, the idmap rows a group learns.
import t from 'tap';
import { exactFloatRead, floatText, formatFixed } from '../../apply/core/float-text.js';
import { fixedText } from '../../agent/capture/fixed-text.js';
import { comparePositions, formatPosition, parsePosition } from '../../agent/capture/position.js';
import { ddlTables } from '../../agent/capture/ddl.js';
import { takeGroup } from '../../agent/capture/grouping.js';
import type { Assembled } from '../../agent/capture/assembler.js';
import { GroupCache } from '../../agent/capture/lru.js';
import { decodeLatin1 } from '../../agent/capture/binlog-values.js';
import type { Learned } from '../../agent/capture/mapper.js';
import { IdentityResolver } from '../../agent/capture/ref-resolver.js';
import { PAUSE_MS, ReadGate } from '../../agent/capture/budget.js';
import type { ColumnInfo, TableInfo } from '../../apply/core/catalog.js';

void t.test('FLOAT/DOUBLE text: exact rounding, ties to even', async (t) => {
  const cases: [string, string, string][] = [
    [floatText(Math.fround(0.1), 'float', 'float'), '0.10000000149011612', 'FLOAT: the float exactly (the server would print 0.1)'],
    [floatText(16777215, 'float', 'float'), '16777215', 'FLOAT: an integer of 8 digits (the server would print 16777200)'],
    [floatText(Math.fround(0.1234567), 'float', 'float'), '0.12345670163631439', 'FLOAT: 7 digits'],
    [floatText(3.4028234663852886e38, 'float', 'float'), '3.4028234663852886e+38', 'FLT_MAX'],
    [floatText(Math.fround(1e-45), 'float', 'float'), '1.401298464324817e-45', 'smallest subnormal float'],
    [floatText(-0, 'float', 'float'), '0', 'negative zero'],
    [formatFixed(79420.40625, 4), '79420.4062', 'fixed tie to even'],
    [formatFixed(27025.53125, 4), '27025.5312', 'fixed tie to even again'],
    [formatFixed(0.00005, 4), '0.0001', 'just above the tie (0.00005 is not exact)'],
    [formatFixed(-2.5, 0), '-2', 'fixed to integer, tie to even'],
    [formatFixed(1e20, 2), '100000000000000000000', 'large integer'],
    [floatText(0.30000000000000004, 'double', 'double'), '0.30000000000000004', 'DOUBLE: shortest round trip'],
    [floatText(1234.5678, 'double', 'double(20,2)'), '1234.57', 'DOUBLE(M,D)'],
    [floatText(Math.fround(1234.5678), 'float', 'float(7,3)'), '1234.568', 'FLOAT(M,D)'],
  ];
  for (const [got, want, why] of cases) t.equal(got, want, why);
  // every float reads back to its own bits
  const bits = new Float32Array(1);
  const wrong: number[] = [];
  for (let i = 0; i < 2000; i++) {
    new Uint32Array(bits.buffer)[0] = (Math.random() * 2 ** 32) >>> 0;
    const f = bits[0]!;
    if (Number.isFinite(f) && Math.fround(Number(floatText(f, 'float', 'float'))) !== f) wrong.push(f);
  }
  t.same(wrong, [], 'random float bit patterns read back to themselves');
  t.same(
    [exactFloatRead('float', 'float'), exactFloatRead('float', 'float unsigned'), exactFloatRead('float', 'float(7,3)'), exactFloatRead('double', 'double')],
    [true, true, false, false], 'which reads need CAST(c AS DOUBLE)',
  );
});

void t.test("UUID, INET6, INET4 bytes → the server's text", async (t) => {
  const h = (hex: string): Buffer => Buffer.from(hex, 'hex');
  // pairs read off MariaDB 10.11: SELECT a, HEX(a)
  const inet6: [string, string][] = [
    ['00000000000000000000000000000000', '::'], ['00000000000000000000000000000001', '::1'], ['0000000000000000000000000000ffff', '::ffff'],
    ['00000000000000000000000000010000', '::0.1.0.0'], ['00000000000000000000000001020304', '::1.2.3.4'], ['00000000000000000000000000000100', '::100'],
    ['00000000000000000000ffff01020304', '::ffff:1.2.3.4'], ['00000000000000000000fffe01020304', '::fffe:102:304'], ['00010000000000000000000000000000', '1::'],
    ['00010000000100000000000100000000', '1:0:1::1:0:0'], ['00010000000000010000000000010001', '1::1:0:0:1:1'], ['00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
    ['00010000000300040005000600070008', '1::3:4:5:6:7:8'], ['00000000000000000000ffff00000000', '::ffff:0.0.0.0'], ['0064ff9b000000000000000001020304', '64:ff9b::102:304'],
    ['00000000000000000000000100000000', '::1:0:0'], ['abcd00000000000000000000000000ef', 'abcd::ef'],
  ];
  for (const [hex, text] of inet6) t.equal(fixedText('inet6', h(hex)), text, `INET6 ${text}`);
  t.equal(fixedText('uuid', h('00112233445566778899aabbccddeeff')), '00112233-4455-6677-8899-aabbccddeeff');
  t.equal(fixedText('inet4', h('0a010203')), '10.1.2.3');
  t.equal(fixedText('inet4', h('ffffffff')), '255.255.255.255');
  t.same([fixedText('uuid', h('00')), fixedText('inet6', h('0102')), fixedText('inet4', h('0102')), fixedText('char', h('00'))], [null, null, null, null],
    'a length that does not fit the type: no text');
});

void t.test('binlog positions order by file number, then offset', async (t) => {
  const a = parsePosition('mysql-bin.000009:500');
  const b = parsePosition('mysql-bin.000010:4');
  t.ok(comparePositions(a, b) < 0, '000009 before 000010');
  t.ok(comparePositions(b, a) > 0);
  t.equal(comparePositions(a, { file: 'mysql-bin.000009', pos: 500 }), 0);
  t.ok(comparePositions({ file: 'x.1000000', pos: 1 }, { file: 'x.999999', pos: 9 }) > 0, 'numeric, not text, order');
  t.equal(formatPosition(a), 'mysql-bin.000009:500');
  t.throws(() => parsePosition('nofile'));
});

void t.test('DDL statements name the tables of the schema they change', async (t) => {
  const cases: [string, string, string[]][] = [
    ['ALTER TABLE person ADD COLUMN x INT', 'app', ['person']],
    ['alter online table `app`.`person` drop column x', 'other', ['person']],
    ['ALTER TABLE other.person ADD x INT', 'app', []],
    ['ALTER TABLE person RENAME TO people', 'app', ['person', 'people']],
    ['ALTER TABLE person RENAME COLUMN a TO b', 'app', ['person']],
    ['DROP TABLE IF EXISTS `a`, app.b, other.c /* generated by server */', 'app', ['a', 'b']],
    ['DROP TEMPORARY TABLE a', 'app', []],
    ['RENAME TABLE a TO b, app.c TO other.d', 'app', ['a', 'b', 'c']],
    ['TRUNCATE TABLE obs', 'app', ['obs']],
    ['truncate obs', 'app', ['obs']],
    ['CREATE TABLE IF NOT EXISTS t2 (id INT)', 'app', ['t2']],
    ['CREATE OR REPLACE TABLE t3 AS SELECT 1', 'app', ['t3']],
    ['CREATE UNIQUE INDEX i ON person (uuid)', 'app', ['person']],
    ['DROP INDEX i ON `person`', 'app', ['person']],
    ['/* a comment */ ALTER TABLE person ENGINE=InnoDB', 'app', ['person']],
    ['INSERT INTO person VALUES (1)', 'app', []],
    ['GRANT ALL ON app.* TO x', 'app', []],
    ['CREATE DATABASE app', 'app', []],
  ];
  for (const [sql, current, want] of cases) t.same(ddlTables(sql, current, 'app'), want, sql);
});

void t.test('groups stop at the limits and at barriers, and always take one item', async (t) => {
  const txn = (n: number, rows: number, bytes = 10): Assembled => ({
    kind: 'txn', parts: [], end: { file: 'f.1', pos: n }, gtid: `0-1-${n}`, timestamp: 0, bytes, rows,
  });
  const skip = (n: number): Assembled => ({ kind: 'skip', end: { file: 'f.1', pos: n }, gtid: '' });
  const ddl = (n: number): Assembled => ({ kind: 'statement', schema: 'app', sql: 'ALTER TABLE x', end: { file: 'f.1', pos: n }, timestamp: 0 });
  const limits = { txns: 3, rows: 100, bytes: 1000 };
  const q = [txn(1, 10), skip(2), txn(3, 10), txn(4, 10), txn(5, 10)];
  const g = takeGroup(q, 0, limits, () => false);
  t.equal(g.count, 3, 'at most 3 items');
  t.same(g.end, { file: 'f.1', pos: 3 });
  t.equal(g.gtid, '0-1-3');
  t.equal(takeGroup(q, 1, limits, () => false).count, 3);
  t.equal(takeGroup([txn(1, 60), txn(2, 60)], 0, limits, () => false).count, 1, 'row limit');
  t.equal(takeGroup([txn(1, 500), txn(2, 1)], 0, limits, () => false).count, 1, 'a transaction over the limit goes alone');
  t.equal(takeGroup([txn(1, 1, 900), txn(2, 1, 200)], 0, limits, () => false).count, 1, 'byte limit');
  t.equal(takeGroup([txn(1, 1), ddl(2), txn(3, 1)], 0, limits, (a) => a.kind === 'statement').count, 1, 'stops before DDL');
  t.throws(() => takeGroup([ddl(1)], 0, limits, (a) => a.kind === 'statement'), 'a barrier first is the caller’s to handle');
});

void t.test('the identity cache keeps what a group uses until the group is written, and the recently used beyond it', async (t) => {
  const c = new GroupCache(4); // generations of 2
  c.set('p', 'a', 'A');
  c.set('p', 'b', 'B');
  c.set('p', 'c', 'C');
  t.same(['a', 'b', 'c'].map((v) => c.get('p', v)), ['A', 'B', 'C'], 'a group learning more than the cache holds forgets nothing');
  c.turn();
  t.equal(c.recent, 0, 'between groups the generations turn over');
  c.set('p', 'd', 'D');
  t.equal(c.get('p', 'a'), 'A', 'the previous group’s entries still answer ...');
  t.equal(c.recent, 2, '... and move to the newer generation');
  c.turn();
  t.equal(c.get('p', 'b'), undefined, 'not used for two groups: forgotten');
  t.equal(c.get('q', 'a'), undefined, 'keys are per table and column');
  t.same([c.get('p', 'a'), c.get('p', 'd')], ['A', 'D']);
  c.set('p', 'a', 'A2');
  t.equal(c.get('p', 'a'), 'A2', 'a new value replaces the old one');
  c.turn();
  c.turn();
  t.equal(c.get('p', 'a'), 'A2');
  c.clear();
  t.equal(c.get('p', 'a'), undefined);
});

void t.test('latin1 bytes decode as MariaDB does (Windows-1252, five bytes kept as C1 controls)', async (t) => {
  const bytes = Buffer.from([0x41, 0x80, 0x81, 0x8d, 0x8f, 0x90, 0x9d, 0x9f, 0xe9, 0xff]).toString('latin1');
  t.equal(decodeLatin1(bytes), 'A€\u0081\u008d\u008f\u0090\u009dŸéÿ');
  t.equal(decodeLatin1('plain é'), 'plain é');
});

void t.test('idmap rows learnt in a group carry the insert version, wherever the row’s key is now', async (t) => {
  const noDb = { query: () => Promise.reject(new Error('no database here')), exec: () => Promise.reject(new Error('no database here')) };
  // a catalogue without the table: not a range table (see the next test for one)
  const r = new IdentityResolver(noDb, () => ({ schema: 'app', tables: new Map(), table: () => { throw new Error('no table here'); } }), 'spokesync');
  const learnt = (localId: string, identity: string, inserted: boolean, from?: string): Learned =>
    from === undefined ? { table: 'person', column: 'id', localId, identity, inserted } : { table: 'person', column: 'id', localId, identity, inserted, from };
  const v = { hlc: '10', node: 'x' };
  r.learn(learnt('5', 'A', true), v);
  r.learn(learnt('6', 'A', false, '5')); // A's key changes to 6 ...
  r.learn(learnt('5', 'B', true), v); // ... and B takes 5, all in one change set
  r.learn(learnt('8', 'E', true), v);
  r.learn(learnt('8', 'F', true), { hlc: '11', node: 'y' }); // E went (its tombstone has the newer version) and F took its key
  r.learn(learnt('9', 'G', false, '3')); // a key change of a row inserted before this group
  r.learn(learnt('7', 'H', false)); // looked up or learnt without an insert: no version
  t.same(r.takeWrites().idmap.sort((x, y) => x.localId.localeCompare(y.localId)), [
    { tbl: 'person', localId: '5', identity: 'B', hlc: '10', node: 'x' },
    { tbl: 'person', localId: '6', identity: 'A', hlc: '10', node: 'x' },
    { tbl: 'person', localId: '7', identity: 'H', hlc: null, node: null },
    { tbl: 'person', localId: '8', identity: 'F', hlc: '11', node: 'y' },
    { tbl: 'person', localId: '9', identity: 'G', hlc: null, node: null, from: '3' },
  ]);
  t.same(r.takeWrites().idmap, [], 'taken once');
});

void t.test('inserts into a range table: one run per change set and consecutive ids; ids at or below the mark, deletes and key changes take idmap rows', async (t) => {
  const col = (name: string, dataType: string): ColumnInfo =>
    ({ name, ordinal: 0, dataType, columnType: dataType, nullable: false, autoIncrement: name === 'id', generated: false, binary: false, charset: null });
  const columns = [col('id', 'int'), col('uuid', 'char'), col('group_id', 'int')];
  const obs: TableInfo = {
    name: 'obs', engine: 'InnoDB', columns, column: new Map(columns.map((c) => [c.name, c])), primaryKey: ['id'], uniqueKeys: [], foreignKeys: [],
    refs: new Map([['group_id', { table: 'obs', column: 'id' }]]), identity: { kind: 'uuid', column: 'uuid' }, identityProblem: null, localColumns: new Set(['id']),
  };
  const note: TableInfo = { ...obs, name: 'note', refs: new Map() };
  const tables = new Map([['obs', obs], ['note', note]]);
  const reads: string[] = [];
  const db = {
    query: async (sql: string): Promise<never[]> => {
      reads.push(sql);
      return (/key_marks/.test(sql) ? [{ tbl: 'obs', hi: '10' }, { tbl: 'note', hi: '0' }] : []) as never[];
    },
    exec: () => Promise.reject(new Error('nothing is written here')),
  };
  const r = new IdentityResolver(db, () => ({ schema: 'app', tables, table: (n: string) => tables.get(n)! }), 'spokesync');
  t.throws(() => r.learnInsert('obs', 'id', '11', 'A', { hlc: '1', node: 'x' }), /not loaded/, 'marks are read before mapping');
  await r.loadMarks();
  const v1 = { hlc: '20', node: 'x' };
  const v2 = { hlc: '21', node: 'y' };
  for (const [id, v] of [['11', v1], ['12', v1], ['13', v1], ['14', v2], ['16', v2], ['5', v2]] as const) r.learnInsert('obs', 'id', id, `U${id}`, v);
  r.learn({ table: 'obs', column: 'id', localId: '12', identity: 'U12', inserted: false }); // deleted
  r.learn({ table: 'obs', column: 'id', localId: '30', identity: 'U16', inserted: false, from: '16' }); // re-keyed
  const w = r.takeWrites();
  t.same(w.ranges, [
    { tbl: 'obs', lo: 11, hi: 13, hlc: '20', node: 'x' },
    { tbl: 'obs', lo: 14, hi: 14, hlc: '21', node: 'y' },
    { tbl: 'obs', lo: 16, hi: 16, hlc: '21', node: 'y' },
  ], 'runs of consecutive ids of one version');
  t.same(w.idmap.sort((x, y) => Number(x.localId) - Number(y.localId)), [
    { tbl: 'obs', localId: '5', identity: 'U5', hlc: '21', node: 'y' },
    { tbl: 'obs', localId: '12', identity: 'U12', hlc: null, node: null },
    { tbl: 'obs', localId: '30', identity: 'U16', hlc: null, node: null, from: '16' },
  ], 'an id at or below the mark keeps its version in the idmap; a deleted row its identity; a re-keyed row moves');
  t.same([...w.marks], [['obs', 30]], 'the mark rises to every id given a range or an idmap row');
  t.equal(r.identity('obs', 'id', '13'), 'U13', 'a row in a range still answers from the cache');
  r.learnInsert('note', 'id', '1', 'N1', v1);
  t.equal(r.identity('note', 'id', '1'), undefined, 'a row of a table nothing refers to is not kept in the cache');
  t.same(r.takeWrites().ranges.map((x) => x.tbl), ['note']);
  r.learnInsert('obs', 'id', '31', 'U31', v2);
  t.same(r.takeWrites().ranges, [{ tbl: 'obs', lo: 31, hi: 31, hlc: '21', node: 'y' }], 'runs end with the group');
  r.learnInsert('obs', 'id', '31', 'U31b', v2);
  t.same(r.takeWrites().idmap.map((x) => [x.localId, x.hlc]), [['31', '21']], 'an id a range holds again takes an idmap row');
  const before = reads.length;
  r.forget();
  await r.loadMarks();
  t.equal(reads.length, before + 1, 'after forget() the marks are read again');
});

void t.test('what the cache answers when a group is prepared stays answered while the group maps, whatever it learns', async (t) => {
  const noDb = { query: () => Promise.reject(new Error('no database here')), exec: () => Promise.reject(new Error('no database here')) };
  const r = new IdentityResolver(noDb, () => ({ schema: 'app', tables: new Map(), table: () => { throw new Error('no table here'); } }), 'spokesync', 4);
  r.learn({ table: 'kind', column: 'id', localId: '1', identity: 'K1', inserted: true });
  r.takeWrites();
  r.beginGroup();
  await r.prepare([{ table: 'kind', column: 'id', value: '1' }], () => []);
  for (let i = 0; i < 20; i++) r.learn({ table: 'person', column: 'id', localId: String(i), identity: `P${i}`, inserted: true });
  t.equal(r.identity('kind', 'id', '1'), 'K1', 'still known after the cache turned over');
  t.equal(r.identity('person', 'id', '0'), 'P0', 'and so is everything learnt in the group');
});

void t.test('the memory budget pauses reading when there is something to write, resumes at half, closes a pause that lasts', async (t) => {
  let now = 0;
  const g = new ReadGate(8 * 1000, () => now); // 8,000 bytes of memory = 1,000 binlog bytes
  t.equal(g.pauseNow(0, 5000), false, 'one transaction alone over the budget is read whole');
  t.equal(g.pauseNow(600, 300), false, 'under the budget');
  t.equal(g.pauseNow(800, 300), true, 'over it with a transaction to write');
  t.equal(g.pauseNow(900, 300), false, 'paused once');
  t.equal(g.afterWrite(600, 0), 'wait', 'still over half');
  now += PAUSE_MS + 1;
  t.equal(g.afterWrite(600, 0), 'close', 'a pause that lasts closes the stream');
  g.reset();
  t.equal(g.paused, false);
  t.equal(g.pauseNow(1200, 0), true);
  t.equal(g.afterWrite(500, 0), 'resume', 'at half the budget');
  t.equal(g.pauseNow(1200, 0), true);
  t.equal(g.afterWrite(0, 900), 'resume', 'an empty queue always resumes');
});
