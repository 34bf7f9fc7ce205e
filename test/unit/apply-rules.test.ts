// The pure parts of apply, table-driven (no server): layered caches, conflict
// winners, value comparison and binding, insert runs, holds.
import t from 'tap';
import type { Catalog, ColumnInfo, TableInfo } from '../../apply/core/catalog.js';
import type { ChangeSet, Op } from '../../apply/core/model.js';
import { columnOutcome, winner } from '../../apply/replay/conflict-rules.js';
import { Holds } from '../../apply/replay/holds.js';
import { splitRuns } from '../../apply/replay/inserts.js';
import { Layers } from '../../apply/replay/layers.js';
import { validateEntry } from '../../apply/replay/validate.js';
import { bindValue, jsonValue, sameValue, sqlCommitTime, sqlTime } from '../../apply/replay/value-compare.js';

const col = (name: string, dataType: string, extra: Partial<ColumnInfo> = {}): ColumnInfo => ({
  name, ordinal: 1, dataType, columnType: dataType, nullable: true, autoIncrement: false, generated: false,
  binary: false, charset: 'utf8mb4', ...extra,
});

function table(name: string, columns: ColumnInfo[], rest: Partial<TableInfo>): TableInfo {
  return {
    name, engine: 'InnoDB', columns, column: new Map(columns.map((c) => [c.name, c])), primaryKey: [], uniqueKeys: [],
    foreignKeys: [], refs: new Map(), identity: null, identityProblem: null, localColumns: new Set(), ...rest,
  };
}

const person = table('person', [col('person_id', 'int', { autoIncrement: true }), col('uuid', 'char'), col('name', 'varchar')], {
  primaryKey: ['person_id'], identity: { kind: 'uuid', column: 'uuid' }, localColumns: new Set(['person_id']),
});
const name = table('person_name', [col('id', 'int', { autoIncrement: true }), col('uuid', 'char'), col('person_id', 'int')], {
  primaryKey: ['id'], identity: { kind: 'uuid', column: 'uuid' }, localColumns: new Set(['id']),
  refs: new Map([['person_id', { table: 'person', column: 'person_id' }]]),
});
const catalog: Catalog = {
  schema: 'app',
  tables: new Map([['person', person], ['person_name', name]]),
  table(n: string) {
    const x = this.tables.get(n);
    if (!x) throw new Error(n);
    return x;
  },
};
const synced = new Set(['person', 'person_name']);
const cs = (origin: string, ops: Op[], hlc = '65536'): ChangeSet => ({ id: `${origin}:${hlc}`, origin, hlc, time: '2026-01-02T03:04:05Z', ops });
const ins = (tbl: 'person' | 'person_name', id: string, personId?: string): Op =>
  tbl === 'person'
    ? { kind: 'insert', table: 'person', id, row: { uuid: id, name: 'x' } }
    : { kind: 'insert', table: 'person_name', id, row: { uuid: id, person_id: { ref: 'person', id: personId! } } };

void t.test('layers commit into the layer below and forget what was rolled back', async (t) => {
  const l = new Layers<number>();
  l.set('a', 1);
  l.begin();
  l.set('b', 2);
  l.begin();
  l.set('c', 3);
  l.delete('a');
  t.equal(l.get('a'), undefined);
  l.rollback();
  t.same([l.get('a'), l.get('b'), l.get('c')], [1, 2, undefined], 'the savepoint layer is gone');
  l.begin();
  l.delete('a');
  l.commit();
  t.same([...l.pending()], [['b', 2]], 'a deletion hides the base value');
  l.commit();
  t.same([l.get('a'), l.get('b'), l.depth], [undefined, 2, 1]);
  l.begin();
  l.set('z', 9);
  l.rollbackAll();
  t.equal(l.get('z'), undefined);
  t.throws(() => l.commit());
});

void t.test('conflict winners: later hlc, then node id; unknown local is version 0', async (t) => {
  const rows: Array<[{ hlc: string; node: string }, { hlc: string; node: string } | undefined, string]> = [
    [{ hlc: '10', node: 'a' }, { hlc: '9', node: 'z' }, 'remote'],
    [{ hlc: '10', node: 'a' }, { hlc: '11', node: 'a' }, 'local'],
    [{ hlc: '10', node: 'b' }, { hlc: '10', node: 'a' }, 'remote'],
    [{ hlc: '10', node: 'a' }, { hlc: '10', node: 'b' }, 'local'],
    [{ hlc: '1', node: 'a' }, undefined, 'remote'],
    [{ hlc: '18446744073709551615', node: 'a' }, { hlc: '18446744073709551614', node: 'z' }, 'remote'],
  ];
  for (const [remote, local, want] of rows) t.equal(winner(remote, local), want, `${JSON.stringify(remote)} vs ${JSON.stringify(local)}`);
  t.equal(columnOutcome(new Map([['a', 'remote'], ['b', 'local'], ['c', 'remote']])), 'remote wins: a, c; local wins: b');
});

void t.test('values: comparison, binding, JSON for the conflict log, SQL times', async (t) => {
  const float = col('f', 'float');
  const text = col('s', 'varchar');
  const cases: Array<[unknown, unknown, ColumnInfo | undefined, boolean]> = [
    [null, null, text, true], [null, '', text, false], ['', null, text, false], [5, '5', col('i', 'int'), true],
    [0.1, '0.1', float, true], [1e20, '100000000000000000000', float, true], [Buffer.from('ab'), Buffer.from('ab'), text, true],
    [Buffer.from('ab'), 'ab', text, true], [Buffer.from([0]), Buffer.from([0, 0]), text, false], ['a', 'A', text, false],
  ];
  for (const [a, b, c, want] of cases) t.equal(sameValue(a, b, c), want, `${String(a)} vs ${String(b)}`);
  t.equal(bindValue('0', col('y', 'year')), 0, 'YEAR 0000 binds as a number');
  t.equal(bindValue('2026', col('y', 'year')), 2026);
  t.equal(bindValue('0', text), '0');
  t.same(jsonValue(Buffer.from([0, 255])), { base64: 'AP8=' });
  t.same(jsonValue({ ref: 'person', id: 'u' }), { ref: 'person', id: 'u' });
  t.equal(sqlTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), '2026-01-02 03:04:05.678');
  t.equal(sqlCommitTime('2026-01-02T03:04:05Z'), '2026-01-02 03:04:05');
});

void t.test('insert runs break where a row needs one written earlier in the run', async (t) => {
  const plan = (ops: Op[]) => validateEntry(catalog, synced, { seq: '1', cs: cs('a', ops) }).ops;
  const shape = (ops: Op[]): string[][] => splitRuns(plan(ops)).map((r) => r.map((p) => p.target.id));
  t.same(shape([ins('person', 'p1'), ins('person', 'p2'), ins('person', 'p3')]), [['p1', 'p2', 'p3']]);
  t.same(shape([ins('person', 'p1'), ins('person_name', 'n1', 'p1'), ins('person_name', 'n2', 'p1')]), [['p1'], ['n1', 'n2']]);
  t.same(shape([ins('person', 'p1'), { kind: 'delete', table: 'person', id: 'p1', digest: 'd' }, ins('person', 'p1')]), [['p1'], ['p1'], ['p1']]);
  t.same(shape([ins('person', 'p1'), ins('person', 'p1')]), [['p1'], ['p1']], 'the same identity twice');
});

void t.test('holds: an origin waits on the rows its quarantined change sets write or create', async (t) => {
  const e = (origin: string, ops: Op[], hlc: string) => validateEntry(catalog, synced, { seq: '1', cs: cs(origin, ops, hlc) });
  const h = new Holds();
  const held = e('a', [ins('person', 'p1')], '1');
  h.hold(held);
  t.equal(h.heldBy(e('a', [ins('person_name', 'n1', 'p1')], '2')), 'a:1', 'references a row it would create');
  t.equal(h.heldBy(e('a', [{ kind: 'update', table: 'person', id: 'p1', set: { name: 'y' }, old: { name: 'x' } }], '3')), 'a:1', 'the same row');
  t.equal(h.heldBy(e('a', [ins('person', 'p2')], '4')), undefined, 'another row goes on');
  t.equal(h.heldBy(e('b', [ins('person_name', 'n2', 'p1')], '5')), undefined, 'another origin is not held (it fails on its own if it must)');
  const c = h.clone();
  c.holdOrigin('b', 'b:9');
  t.equal(c.heldBy(e('b', [ins('person', 'p9')], '6')), 'b:9', 'an unreadable quarantined change set holds its whole origin');
  t.equal(h.heldBy(e('b', [ins('person', 'p9')], '6')), undefined, 'clones are independent');
});
