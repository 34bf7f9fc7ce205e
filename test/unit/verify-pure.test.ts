// The pure parts of verify and repair: identities in the server's SQL form
// back to the network's, shapes compared column by column, tables ordered by
// their references, the ops a local transaction carries merged with what its
// binlog shows, and a local carry row assembled into the change set
// committed here.
import t from 'tap';
import { TransactionAssembler } from '../../agent/capture/assembler.js';
import type { RowChange } from '../../agent/capture/events.js';
import { shapeDifference } from '../../agent/verify/compare.js';
import { canonicalIdentity } from '../../agent/verify/in-flight.js';
import { dependencyOrder } from '../../agent/verify/repair-rows.js';
import { rowSql, sumsSql } from '../../agent/verify/row-sql.js';
import type { Catalog, ColumnInfo, TableInfo } from '../../apply/core/catalog.js';
import type { Op } from '../../apply/core/model.js';
import { withLocalCarried } from '../../apply/replay/carry.js';

function col(name: string, dataType: string, extra: Partial<ColumnInfo> = {}): ColumnInfo {
  return { name, ordinal: 0, dataType, columnType: dataType, nullable: false, autoIncrement: false, generated: false, binary: false, charset: 'utf8mb4', ...extra };
}
function table(name: string, columns: ColumnInfo[], refs: [string, string, string][], identity: TableInfo['identity'], local: string[] = []): TableInfo {
  return {
    name, engine: 'InnoDB', columns, column: new Map(columns.map((c) => [c.name, c])), primaryKey: [columns[0]!.name], uniqueKeys: [], foreignKeys: [],
    refs: new Map(refs.map(([c, tbl, rc]) => [c, { table: tbl, column: rc }])), identity, identityProblem: null,
    localColumns: new Set([...columns.filter((c) => c.autoIncrement).map((c) => c.name), ...local]),
  };
}
const tables = new Map<string, TableInfo>([
  ['person', table('person', [col('id', 'int', { autoIncrement: true }), col('uuid', 'char'), col('note', 'text', { nullable: true }), col('h', 'float')], [],
    { kind: 'uuid', column: 'uuid' })],
  ['patient', table('patient', [col('patient_id', 'int'), col('allergy', 'varchar')], [['patient_id', 'person', 'id']],
    { kind: 'shared', column: 'patient_id', refTable: 'person', refColumn: 'id' }, ['patient_id'])],
  ['role', table('role', [col('name', 'varchar')], [], { kind: 'natural', columns: ['name'] })],
  ['member', table('member', [col('person_id', 'int'), col('role', 'varchar')], [['person_id', 'person', 'id'], ['role', 'role', 'name']],
    { kind: 'natural', columns: ['person_id', 'role'] })],
]);
const catalog: Catalog = { schema: 'app', tables, table: (n) => tables.get(n)! };

void t.test('identities: the server\'s JSON of a key tuple read back as the network writes it', async (t) => {
  t.equal(canonicalIdentity(catalog, 'person', 'P-1'), 'P-1');
  t.equal(canonicalIdentity(catalog, 'patient', 'P-1'), 'P-1', 'a shared key is the referenced identity');
  t.equal(canonicalIdentity(catalog, 'role', 'nurse'), 'nurse');
  t.equal(canonicalIdentity(catalog, 'role', '["[odd"]'), '["[odd"]', 'one part that starts with [');
  t.equal(canonicalIdentity(catalog, 'member', '["P-1", "nurse"]'), '["P-1","nurse"]', 'the server writes a space after the comma');
  t.equal(canonicalIdentity(catalog, 'member', '["P\\/1","a\\u0001b"]'), JSON.stringify(['P/1', 'a\u0001b']));
});

void t.test('row SQL: foreign keys by identity, local ids left out, long values by their digest', async (t) => {
  const patient = rowSql(catalog, 'patient');
  t.match(patient.from, /`app`\.`patient` AS t0 LEFT JOIN `app`\.`person` AS t1 ON t1\.`id` = t0\.`patient_id`/);
  t.equal(patient.identity, 't1.`uuid`');
  t.notMatch(patient.fingerprint, /patient_id/, 'the shared key is a local id: not fingerprinted');
  t.match(patient.fingerprint, /^MD5\(CONCAT\(COALESCE\(CONCAT\('i', LENGTH\(CAST\(t1\.`uuid` AS BINARY\)\)/, 'the identity it stands for is');
  const person = rowSql(catalog, 'person');
  t.equal(person.identityColumn, 't0.`uuid`', 'lookups by uuid use its index');
  t.match(person.fingerprint, /MD5\(t0\.`note`\)/);
  t.match(person.fingerprint, /CAST\(t0\.`h` AS DOUBLE\)/, 'a FLOAT by its exact value');
  t.notMatch(person.fingerprint, /`id`/);
  const member = rowSql(catalog, 'member');
  t.match(member.identity, /^CONCAT\('\[', JSON_QUOTE\(CONVERT\(t\d\.`uuid` USING utf8mb4\)\), ',', JSON_QUOTE/);
  const s = sumsSql(person, 2, ['a'], 100);
  t.match(s.sql, /GROUP BY p LIMIT 100$/);
  t.same(s.params, ['a']);
  t.notMatch(sumsSql(person, 0, null, 1).sql, /GROUP BY/, 'the whole table: one checksum');
});

void t.test('shapes: the first difference, or none', async (t) => {
  const shape = (cols: [string, string, boolean][]) => ({ table: 'x', columns: cols.map(([name, type, nullable]) => ({ name, type, charset: null, nullable, default: null })) });
  t.equal(shapeDifference(shape([['a', 'int', false]]), shape([['a', 'int', false]])), null);
  t.equal(shapeDifference(shape([['a', 'int', false]]), shape([['a', 'bigint', false]])), 'column a is int here and bigint there');
  t.equal(shapeDifference(shape([['a', 'int', false]]), shape([['a', 'int', false], ['b', 'int', true]])), 'column b is only there');
  t.equal(shapeDifference(shape([['a', 'int', true]]), shape([['a', 'int', false]])), 'column a is NULL here and NOT NULL there');
});

void t.test('repair order: referenced tables first', async (t) => {
  t.same(dependencyOrder(catalog, ['member', 'patient', 'role', 'person']), ['person', 'role', 'member', 'patient']);
});

void t.test('local carry: carried rows first and whole; the binlog\'s deletes kept after them', async (t) => {
  const carried: Op[] = [
    { kind: 'insert', table: 'person', id: 'A', row: { uuid: 'A', note: 'theirs' } },
    { kind: 'insert', table: 'person', id: 'B', row: { uuid: 'B', note: 'gone' } },
  ];
  const binlog: Op[] = [
    { kind: 'update', table: 'person', id: 'A', set: { note: 'theirs' }, old: { note: 'mine' } },
    { kind: 'delete', table: 'person', id: 'B', digest: 'd'.repeat(22) },
    { kind: 'update', table: 'person', id: 'C', set: { note: 'other' }, old: { note: 'x' } },
  ];
  t.same(withLocalCarried(binlog, carried).map((o) => `${o.kind} ${o.id}`), ['insert A', 'insert B', 'delete B', 'update C']);

  const a = new TransactionAssembler({ schema: 'app', stateSchema: 'spokesync', tables: new Set(['person']) });
  const ins = (tbl: string, after: Record<string, unknown>, schema = 'app'): RowChange => ({ op: 'insert', schema, table: tbl, after });
  a.push({ kind: 'begin', gtid: '0-1-9', timestamp: 1000 });
  a.push({ kind: 'rows', changes: [ins('person', { id: 1 }), ins('carry', { change_id: 'local:repair-1', body: '<cs/>' }, 'spokesync')], bytes: 10, timestamp: 1000 });
  const out = a.push({ kind: 'commit', end: { file: 'b.000001', pos: 50 }, timestamp: 1000 });
  if (out?.kind !== 'txn') throw new Error('expected a transaction');
  t.same(out.parts.map((p) => [p.ledger, p.changes.length, p.carried]), [[null, 1, ['<cs/>']]], 'one change set of this node, with what it carried');

  a.push({ kind: 'begin', gtid: '0-1-10', timestamp: 1000 });
  a.push({ kind: 'rows', changes: [ins('carry', { change_id: 'local:repair-2', body: '<cs/>' }, 'spokesync')], bytes: 10, timestamp: 1000 });
  const alone = a.push({ kind: 'commit', end: { file: 'b.000001', pos: 90 }, timestamp: 1000 });
  t.equal(alone?.kind, 'txn', 'a transaction that only carries ops is journaled');
  a.push({ kind: 'begin', gtid: '0-1-11', timestamp: 1000 });
  t.throws(() => a.push({ kind: 'rows', changes: [ins('carry', { change_id: 'hub:5', body: '<cs/>' }, 'spokesync')], bytes: 10, timestamp: 1000 }),
    { code: 'SPOKESYNC_E_CAPTURE' }, 'a carry row of an applied change set still needs its ledger row');
});
