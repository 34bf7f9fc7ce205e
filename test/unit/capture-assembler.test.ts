// Transaction assembly and row mapping without a database: event sequences
// in, whole transactions (split at ledger rows) and operations out.
import t from 'tap';
import { TransactionAssembler, isoFromMs, type Assembled } from '../../agent/capture/assembler.js';
import { queryMeaning, type RowChange, type SourceEvent } from '../../agent/capture/events.js';
import { canonicalize, lookupsFor, mapChange } from '../../agent/capture/mapper.js';
import type { Lookup, RefResolver } from '../../apply/core/row-identity.js';
import type { Catalog, ColumnInfo, TableInfo } from '../../apply/core/catalog.js';
import { rowDigest } from '../../apply/codec/digest.js';

const at = (pos: number) => ({ file: 'mysql-bin.000001', pos });
const ins = (table: string, after: Record<string, unknown>, schema = 'app'): RowChange => ({ op: 'insert', schema, table, after });
const rows = (...changes: RowChange[]): SourceEvent => ({ kind: 'rows', changes, bytes: 100, timestamp: 1000 });

function run(events: SourceEvent[]): Assembled[] {
  const a = new TransactionAssembler({ schema: 'app', stateSchema: 'spokesync', tables: new Set(['person', 'name']) });
  return events.map((e) => a.push(e)).filter((x): x is Assembled => x !== null);
}

void t.test('assembler: one transaction, split at ledger rows', async (t) => {
  const ledger = (id: string) => ins('ledger', { change_id: id, origin: 'huye', from_peer: 'musanze', hlc: 77, commit_time: '2026-01-01 10:00:00' }, 'spokesync');
  const out = run([
    { kind: 'begin', gtid: '0-1-5', timestamp: 1000 },
    rows(ins('person', { id: 1 }), ins('other', { id: 9 })),
    rows(ledger('huye:77'), ins('person', { id: 2 })),
    rows(ledger('huye:78')),
    { kind: 'commit', end: at(900), timestamp: 2000 },
  ]);
  t.equal(out.length, 1);
  const txn = out[0]!;
  if (txn.kind !== 'txn') throw new Error('expected a transaction');
  t.equal(txn.gtid, '0-1-5');
  t.same(txn.end, at(900));
  t.equal(txn.timestamp, 2000);
  t.equal(txn.rows, 2, 'rows of synced tables only');
  t.same(txn.parts.map((p) => [p.ledger?.changeId ?? null, p.changes.length]), [[null, 1], ['huye:77', 1], ['huye:78', 0]]);
  t.same(txn.parts[1]!.ledger, { changeId: 'huye:77', origin: 'huye', fromPeer: 'musanze', hlc: '77', time: '2026-01-01T10:00:00Z' });
});

void t.test('assembler: what has nothing to journal only moves the position', async (t) => {
  const out = run([
    { kind: 'position', end: at(4) },
    { kind: 'begin', gtid: '0-1-6', timestamp: 0 },
    rows(ins('other', { id: 1 })),
    { kind: 'commit', end: at(100), timestamp: 0 },
    { kind: 'begin', gtid: '0-1-7', timestamp: 0 },
    rows(ins('person', { id: 1 })),
    { kind: 'rollback', end: at(200) },
    { kind: 'begin', gtid: '0-1-8', timestamp: 0 },
    { kind: 'statement', schema: 'app', sql: 'ALTER TABLE person ADD x INT', end: at(300), timestamp: 0 },
  ]);
  t.same(out.map((o) => [o.kind, o.end.pos]), [['skip', 4], ['skip', 100], ['skip', 200], ['statement', 300]]);
});

void t.test('assembler: a transaction that never committed is an error, not a silent merge', async (t) => {
  t.throws(() => run([
    { kind: 'begin', gtid: '0-1-1', timestamp: 0 },
    rows(ins('person', { id: 1 })),
    { kind: 'begin', gtid: '0-1-2', timestamp: 0 },
  ]), { code: 'SPOKESYNC_E_CAPTURE' });
  t.equal(isoFromMs(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), '2026-01-02T03:04:05Z');
});

// --- mapping, on two small tables: person (uuid) and name (uuid, FK to person, FK to a table without identity)

function col(name: string, dataType: string, extra: Partial<ColumnInfo> = {}): ColumnInfo {
  return { name, ordinal: 0, dataType, columnType: dataType, nullable: true, autoIncrement: false, generated: false, binary: false, charset: 'utf8mb4', ...extra };
}
function table(name: string, columns: ColumnInfo[], refs: [string, string, string][], identity: TableInfo['identity']): TableInfo {
  return {
    name, engine: 'InnoDB', columns, column: new Map(columns.map((c) => [c.name, c])), primaryKey: ['id'], uniqueKeys: [], foreignKeys: [],
    refs: new Map(refs.map(([c, tbl, rc]) => [c, { table: tbl, column: rc }])), identity, identityProblem: null,
    localColumns: new Set(columns.filter((c) => c.autoIncrement).map((c) => c.name)),
  };
}
const tables = new Map<string, TableInfo>([
  ['person', table('person', [col('id', 'int', { autoIncrement: true }), col('uuid', 'char'), col('gender', 'varchar'), col('height', 'float')], [], { kind: 'uuid', column: 'uuid' })],
  ['name', table('name', [col('id', 'int', { autoIncrement: true }), col('uuid', 'char'), col('person_id', 'int'), col('kind_id', 'int'), col('given', 'varchar'), col('g', 'int', { generated: true })],
    [['person_id', 'person', 'id'], ['kind_id', 'kind', 'id']], { kind: 'uuid', column: 'uuid' })],
  ['kind', table('kind', [col('id', 'int')], [], null)],
]);
const catalog: Catalog = { schema: 'app', tables, table: (n) => tables.get(n)! };
const known: RefResolver = { identity: (tbl, c, v) => (tbl === 'person' && c === 'id' ? `P${v}` : undefined) };

void t.test('mapper: inserts carry all but local and generated columns, FKs as Refs', async (t) => {
  const c = canonicalize(ins('name', { id: 5, uuid: 'N1', person_id: 7, kind_id: 3, given: 'Ama', g: 1 }), catalog);
  const need: Lookup[] = [];
  lookupsFor(c, catalog, need);
  t.same(need, [{ table: 'person', column: 'id', value: '7' }], 'only references to tables with an identity are looked up');
  const m = mapChange(c, catalog, known);
  t.same(m.ops, [{ kind: 'insert', table: 'name', id: 'N1', row: { uuid: 'N1', person_id: { ref: 'person', id: 'P7' }, kind_id: '3', given: 'Ama' } }]);
  t.same(m.learned, [{ table: 'name', column: 'id', localId: '5', identity: 'N1', inserted: true }], 'the new row’s local id is learnt, with its insert');
});

void t.test('mapper: updates carry changed columns only; no change, no op; identity change is delete + insert', async (t) => {
  const upd = (before: Record<string, unknown>, after: Record<string, unknown>): RowChange => ({ op: 'update', schema: 'app', table: 'person', before, after });
  const base = { id: 1, uuid: 'U1', gender: 'F', height: Math.fround(1.7) };
  t.same(mapChange(canonicalize(upd(base, { ...base, gender: 'M' }), catalog), catalog, known).ops,
    [{ kind: 'update', table: 'person', id: 'U1', set: { gender: 'M' }, old: { gender: 'F' } }]);
  t.same(mapChange(canonicalize(upd(base, { ...base, id: 2 }), catalog), catalog, known).ops, [], 'a local id change travels as nothing');
  t.same(mapChange(canonicalize(upd(base, { ...base, id: 2 }), catalog), catalog, known).learned,
    [{ table: 'person', column: 'id', localId: '2', identity: 'U1', inserted: false, from: '1' }], '... but the new local id is learnt, moved from the old one');
  const swapped = mapChange(canonicalize(upd(base, { ...base, uuid: 'U2' }), catalog), catalog, known);
  const swap = swapped.ops;
  t.same(swap.map((o) => [o.kind, o.id]), [['delete', 'U1'], ['insert', 'U2']]);
  t.same(swapped.learned, [{ table: 'person', column: 'id', localId: '1', identity: 'U2', inserted: true }], 'the new identity is learnt as inserted');
  t.equal(swap[0]!.kind === 'delete' && swap[0]!.digest, rowDigest({ uuid: 'U1', gender: 'F', height: String(Math.fround(1.7)) }), 'delete digest of the old row (a FLOAT exactly)');
});

void t.test('mapper: a reference nobody can resolve is an error naming the table, never a wrong value', async (t) => {
  const c = canonicalize(ins('name', { id: 5, uuid: 'N1', person_id: 8, kind_id: null, given: null, g: null }), catalog);
  t.throws(() => mapChange(c, catalog, { identity: () => undefined }), { code: 'SPOKESYNC_E_CAPTURE' });
});

void t.test('query events: savepoints are not transaction boundaries; only a whole ROLLBACK is one', async (t) => {
  t.same(queryMeaning('SAVEPOINT `a`'), { kind: 'savepoint', action: 'set', name: 'a' });
  t.same(queryMeaning('ROLLBACK TO `a``b`'), { kind: 'savepoint', action: 'rollback', name: 'a`b' });
  t.same(queryMeaning('rollback work to savepoint Xy'), { kind: 'savepoint', action: 'rollback', name: 'xy' });
  t.same(queryMeaning('RELEASE SAVEPOINT `B x`'), { kind: 'savepoint', action: 'release', name: 'b x' });
  t.same(queryMeaning('ROLLBACK'), { kind: 'rollback' });
  t.same(queryMeaning('ROLLBACK WORK AND NO CHAIN'), { kind: 'rollback' });
  t.same(queryMeaning('ROLLBACK TO'), { kind: 'statement' }, 'never a whole rollback by its first word');
  t.same(queryMeaning('BEGIN'), { kind: 'begin' });
  t.same(queryMeaning('COMMIT /* implicit */'), { kind: 'commit' });
  t.same(queryMeaning('ALTER TABLE person ADD x INT'), { kind: 'statement' });
});

void t.test('assembler: rows after a savepoint rolled back to are dropped; the transaction goes on', async (t) => {
  const sp = (action: 'set' | 'rollback' | 'release', name: string): SourceEvent => ({ kind: 'savepoint', action, name });
  const ledger = (id: string) => ins('ledger', { change_id: id, origin: 'huye', from_peer: 'musanze', hlc: 77, commit_time: '2026-01-01 10:00:00' }, 'spokesync');
  const out = run([
    { kind: 'begin', gtid: '0-1-9', timestamp: 0 },
    rows(ins('person', { id: 1 })),
    sp('set', 'a'),
    rows(ins('person', { id: 2 }), ledger('huye:1'), ins('person', { id: 3 })),
    sp('set', 'b'),
    rows(ins('person', { id: 4 })),
    sp('rollback', 'a'),
    rows(ins('person', { id: 5 })),
    sp('set', 'c'),
    rows(ins('person', { id: 6 })),
    sp('release', 'c'),
    rows(ins('person', { id: 7 })),
    sp('rollback', 'b'),
    rows(ins('person', { id: 8 })),
    sp('rollback', 'never-logged'),
    rows(ins('person', { id: 9 })),
    { kind: 'commit', end: at(500), timestamp: 0 },
  ]);
  t.equal(out.length, 1);
  const txn = out[0]!;
  if (txn.kind !== 'txn') throw new Error('expected a transaction');
  t.same(txn.parts.map((p) => [p.ledger?.changeId ?? null, p.changes.map((c) => (c.op === 'insert' ? c.after?.id : 0))]), [[null, [9]]],
    'b was removed by the rollback to a; a savepoint never logged was set before anything');
  t.equal(txn.rows, 1);

  const kept = run([
    { kind: 'begin', gtid: '0-1-10', timestamp: 0 },
    rows(ins('person', { id: 1 })),
    sp('set', 'a'),
    rows(ins('person', { id: 2 }), ledger('huye:1'), ins('person', { id: 3 })),
    sp('rollback', 'a'),
    sp('set', 'a'),
    rows(ledger('huye:2'), ins('person', { id: 4 })),
    { kind: 'commit', end: at(600), timestamp: 0 },
  ])[0]!;
  if (kept.kind !== 'txn') throw new Error('expected a transaction');
  t.same(kept.parts.map((p) => [p.ledger?.changeId ?? null, p.changes.map((c) => (c.op === 'insert' ? c.after?.id : 0))]), [[null, [1]], ['huye:2', [4]]],
    'a ledger row rolled back to before goes with its rows');
  t.equal(kept.rows, 2);
});
