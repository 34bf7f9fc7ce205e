// Inserts the short way (agent/capture/insert-form.ts) against the general
// way (canonicalize, mapChange, encodeChangeSet): the same bytes, the same
// identity and local id, for any row; what the short way cannot decide it
// leaves to the general way, which names the problem.
import t from 'tap';
import fc from 'fast-check';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import type { ChangeSet } from '../../apply/model.js';
import type { RowImage } from '../../agent/capture/events.js';
import type { RefResolver } from '../../agent/capture/identity.js';
import { Pieces, changeSetOpen, encodeInsert, insertLookups, insertPlan, type InsertFacts } from '../../agent/capture/insert-form.js';
import { utf8Bytes } from '../../agent/capture/journal.js';
import { canonicalImage, canonicalize, lookupsFor, mapChange } from '../../agent/capture/mapper.js';
import type { Catalog, ColumnInfo, TableInfo } from '../../agent/schema/catalog.js';

function col(name: string, dataType: string, extra: Partial<ColumnInfo> = {}): ColumnInfo {
  return { name, ordinal: 0, dataType, columnType: dataType, nullable: true, autoIncrement: false, generated: false, binary: false, charset: 'utf8mb4', ...extra };
}
function table(name: string, columns: ColumnInfo[], refs: [string, string, string][], identity: TableInfo['identity'], pk = ['id']): TableInfo {
  return {
    name, engine: 'InnoDB', columns, column: new Map(columns.map((c) => [c.name, c])), primaryKey: pk, uniqueKeys: [], foreignKeys: [],
    refs: new Map(refs.map(([c, tbl, rc]) => [c, { table: tbl, column: rc }])), identity, identityProblem: null,
    localColumns: new Set(columns.filter((c) => c.autoIncrement || (identity?.kind === 'shared' && c.name === identity.column)).map((c) => c.name)),
  };
}
const tables = new Map<string, TableInfo>([
  ['person', table('person', [
    col('id', 'int', { autoIncrement: true }), col('uuid', 'char'), col('name', 'varchar'), col('odd name', 'varchar'), col('height', 'double'),
    col('weight', 'float', { columnType: 'float(7,2)' }), col('photo', 'blob', { binary: true }), col('born', 'datetime'), col('copy', 'varchar'),
    col('kind_id', 'int'), col('g', 'int', { generated: true }),
  ], [['kind_id', 'kind', 'id']], { kind: 'uuid', column: 'uuid' })],
  ['obs', table('obs', [
    col('id', 'int', { autoIncrement: true }), col('uuid', 'char'), col('person_id', 'int'), col('value', 'varchar'), col('n', 'bigint'),
  ], [['person_id', 'person', 'id']], { kind: 'uuid', column: 'uuid' })],
  ['patient', table('patient', [col('patient_id', 'int'), col('note', 'varchar')], [['patient_id', 'person', 'id']],
    { kind: 'shared', column: 'patient_id', refTable: 'person', refColumn: 'id' }, ['patient_id'])],
  ['role_person', table('role_person', [col('role', 'varchar'), col('person_id', 'int'), col('since', 'date')], [['person_id', 'person', 'id']],
    { kind: 'natural', columns: ['role', 'person_id'] }, ['role', 'person_id'])],
  ['kind', table('kind', [col('id', 'int'), col('label', 'varchar')], [], null)],
]);
const catalog: Catalog = { schema: 'app', tables, table: (n) => tables.get(n)! };

const awkward = fc.constantFrom('\r', '\n', '\t', '&', '<', '>', ']]>', '"', "'", '\u0000', '\u001f', '\uFFFE', '\uD800', '😀', 'é', ' ', '&amp;', '\u2028', 'P1');
const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 2, arbitrary: fc.array(awkward, { maxLength: 4 }).map((a) => a.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
);
const maybe = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.option(a, { nil: null, freq: 4 });
/** person ids 1..9 are known, with identities that need escaping now and then; 0 is not */
const refs: RefResolver = {
  identity: (tbl, c, v) => (tbl === 'person' && c === 'id' && v !== '0' ? (v === '3' ? 'P<3>&"' : v === '4' ? 'P\u0001' : `P${v}`) : undefined),
};

/** Rows as the binlog decoder hands them over; a column may be missing from the image. */
const images: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  person: fc.record({
    id: fc.integer({ min: 1, max: 1e6 }), uuid: fc.oneof(text, fc.uuid()), name: maybe(text), 'odd name': maybe(text),
    height: maybe(fc.double({ noNaN: true })), weight: maybe(fc.float({ noNaN: true, noDefaultInfinity: true })),
    photo: maybe(fc.uint8Array({ maxLength: 6 }).map((a) => Buffer.from(a))), born: maybe(fc.constant('2026-01-02 03:04:05')),
    copy: maybe(text), kind_id: maybe(fc.integer({ min: 0, max: 9 })), g: fc.integer(),
  }, { requiredKeys: ['id', 'uuid'] }).chain((r) => fc.constantFrom(r, { ...r, copy: r.uuid }, { ...r, name: r.uuid })),
  obs: fc.record({ id: fc.integer({ min: 1 }), uuid: fc.uuid(), person_id: maybe(fc.integer({ min: 1, max: 9 })), value: maybe(text), n: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String) }),
  patient: fc.record({ patient_id: fc.integer({ min: 1, max: 9 }), note: maybe(text) }),
  role_person: fc.record({ role: text, person_id: fc.integer({ min: 1, max: 9 }), since: maybe(fc.constant('2026-01-02')) }),
};

function general(tbl: string, image: RowImage): { xml: string; identity: string; localId: string | undefined } {
  const c = canonicalize({ op: 'insert', schema: 'app', table: tbl, after: image }, catalog);
  const m = mapChange(c, catalog, refs);
  const cs: ChangeSet = { id: 'kigali:77', origin: 'kigali', hlc: '77', time: '2026-01-02T03:04:05Z', ops: m.ops };
  return { xml: encodeChangeSet(cs), identity: m.ops[0]!.id, localId: m.learned[0]?.localId };
}

function short(tbl: string, image: RowImage, canon = false): { xml: string; identity: string; localId: string | undefined } | undefined {
  const plan = insertPlan(catalog, tbl);
  if (!plan) throw new Error(`no plan for ${tbl}`);
  const facts: InsertFacts = { identity: '', localId: undefined };
  const out = new Pieces();
  out.push(changeSetOpen('kigali:77', 'kigali', '77', '2026-01-02T03:04:05Z'));
  if (!encodeInsert(plan, image, canon, refs, facts, out)) {
    if (out.length !== 1) throw new Error('a row left to the general way left pieces behind');
    return undefined;
  }
  return { xml: out.join() + '</cs>', identity: facts.identity, localId: facts.localId };
}

void t.test('an insert the short way is byte for byte the general way', async (t) => {
  for (const [tbl, arb] of Object.entries(images)) {
    fc.assert(fc.property(arb, (image) => {
      let want: ReturnType<typeof general> | Error;
      try {
        want = general(tbl, image);
      } catch (e) {
        want = e as Error;
      }
      let got: ReturnType<typeof short> | Error;
      try {
        got = short(tbl, image);
      } catch (e) {
        got = e as Error;
      }
      if (want instanceof Error) {
        // the short way fails the same way, or leaves the row to the general way
        if (got instanceof Error) t.equal((got as { code?: string }).code, (want as { code?: string }).code);
        else t.equal(got, undefined, `${tbl}: ${want.message}`);
        return;
      }
      if (got instanceof Error) throw got;
      t.same(got, want, tbl);
      // an image of canonical values (as row-decoder.ts makes them) the same way
      t.same(short(tbl, canonicalImage(catalog.table(tbl), image), true), want, `${tbl}: canonical image`);
    }), { numRuns: 400 });
  }
});

void t.test('insert lookups are the general lookups the resolver does not know', async (t) => {
  const none: RefResolver = { identity: () => undefined };
  for (const [tbl, arb] of Object.entries(images)) {
    fc.assert(fc.property(arb, (image) => {
      const c = canonicalize({ op: 'insert', schema: 'app', table: tbl, after: image }, catalog);
      const want: unknown[] = [];
      lookupsFor(c, catalog, want as never[]);
      const got: unknown[] = [];
      insertLookups(insertPlan(catalog, tbl)!, image, false, none, got as never[]);
      t.same(got, want, tbl);
      const known: unknown[] = [];
      insertLookups(insertPlan(catalog, tbl)!, image, false, refs, known as never[]);
      t.same(known, (want as { value: string }[]).filter((l) => refs.identity('person', 'id', l.value) === undefined), `${tbl}: known ones left out`);
    }), { numRuns: 100 });
  }
});

void t.test('a change set header is checked as the codec checks it', async (t) => {
  t.equal(changeSetOpen('kigali:5', 'kigali', '5', '2026-01-02T03:04:05Z'), '<cs o="kigali" h="5" t="2026-01-02T03:04:05Z">');
  t.equal(changeSetOpen('huye:<1>', 'huye', '1', '2026-01-02T03:04:05Z'), encodeChangeSet({ id: 'huye:<1>', origin: 'huye', hlc: '1', time: '2026-01-02T03:04:05Z', ops: [] }).slice(0, -5));
  t.throws(() => changeSetOpen('X:1', 'X', '1', '2026-01-02T03:04:05Z'), { code: 'SPOKESYNC_E_XML' });
  t.throws(() => changeSetOpen('x:01', 'x', '01', '2026-01-02T03:04:05Z'), { code: 'SPOKESYNC_E_XML' });
  t.throws(() => changeSetOpen('x:1', 'x', '1', '2026-01-02 03:04:05'), { code: 'SPOKESYNC_E_XML' });
  t.equal(insertPlan(catalog, 'kind'), null, 'a table without identity goes the general way');
});

void t.test('pieces join in order, past the pieces of one concat call; UTF-8 bytes as Buffer.from would give them', async (t) => {
  const p = new Pieces();
  const want: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const s = i % 1000 === 0 ? `é${i}` : String(i);
    p.push(s, ',');
    want.push(s, ',');
  }
  t.equal(p.length, 40_000);
  t.equal(p.join(), want.join(''), '40,000 pieces, in order');
  t.equal(p.length, 0, 'empty after join');
  p.push('a', 'b', 'c');
  p.truncate(1);
  p.push('d');
  t.equal(p.join(), 'ad', 'truncate drops what came after');
  for (const s of ['plain ascii <c n="x">1</c>', 'é and €', '\u{1F600}', 'lone \uD800 surrogate', '', '\u0080\u00ff']) {
    t.same(utf8Bytes(s), Buffer.from(s, 'utf8'), JSON.stringify(s));
  }
});
