// Out-of-order dependencies on the OpenMRS schema: a change set whose
// referenced row has not arrived is quarantined with the later change sets of
// its origin that touch the same rows; unrelated ones go on; a retry applies
// them in origin order once the row is there. Constraint failures quarantine too.
import t from 'tap';
import { openDb } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { loadCatalog } from '../../apply/core/catalog.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';
import { rowDigest } from '../../apply/codec/digest.js';
import type { ChangeSet, Op, Row } from '../../apply/core/model.js';
import { Applier } from '../../apply/replay/applier.js';
import { quarantineSummary } from '../../apply/replay/quarantine.js';
import { loadOpenmrs, startServer } from '../../deploy/sandbox/mariadb.js';

const ADMIN = { ref: 'users', id: '82f18b44-6814-11e8-923f-e9a88dcb533f' };
const S = 'openmrs';
const STATE = 'spokesync';

const cs = (origin: string, ms: number, ops: Op[]): ChangeSet => {
  const hlc = (BigInt(1_800_000_000_000 + ms) << 16n).toString();
  return { id: `${origin}:${hlc}`, origin, hlc, time: '2026-03-04T05:06:07Z', ops };
};
const personRow = (uuid: string): Row => ({ uuid, gender: 'F', creator: ADMIN, date_created: '2026-03-04 05:06:07', birthdate: '1990-01-31' });
const person = (uuid: string): Op => ({ kind: 'insert', table: 'person', id: uuid, row: personRow(uuid) });
const nameRow = (uuid: string, personUuid: string, given: string): Row => ({
  uuid, person_id: { ref: 'person', id: personUuid }, given_name: given, family_name: 'Uwase', preferred: '1',
  creator: ADMIN, date_created: '2026-03-04 05:06:07',
});
const name = (uuid: string, personUuid: string, given: string): Op => ({ kind: 'insert', table: 'person_name', id: uuid, row: nameRow(uuid, personUuid, given) });

void t.test('a change set waits for the row it needs; later ones of its origin on the same rows wait behind it', async (t) => {
  const server = await startServer();
  t.teardown(() => server.stop());
  await loadOpenmrs(server, S);
  const db = openDb({ host: server.host, port: server.port, user: 'root' });
  t.teardown(() => db.close());
  await ensureStateSchema(db, STATE);
  const catalog = await loadCatalog(db, S);
  let now = Date.parse('2026-03-04T06:00:00Z');
  const applier = new Applier({
    db, catalog, schema: S, stateSchema: STATE, node: 'here', log: silentLogger, now: () => (now += 1000),
    tables: new Set(['person', 'person_name', 'patient']), groupSize: 4,
    // stamps set in January 2027: clock.maxDrift widened so they apply now
    maxDriftMs: 366 * 86_400_000,
  });
  const count = async (sql: string, p: unknown[] = []): Promise<number> => Number((await db.query<{ n: number }>(sql, p))[0]!.n);

  const X = 'aaaaaaaa-0000-0000-0000-00000000000x';
  const Y = 'aaaaaaaa-0000-0000-0000-00000000000y';
  const Z = 'aaaaaaaa-0000-0000-0000-00000000000z';
  const N1 = 'bbbbbbbb-0000-0000-0000-0000000000n1';
  const N2 = 'bbbbbbbb-0000-0000-0000-0000000000n2';
  const N3 = 'bbbbbbbb-0000-0000-0000-0000000000n3';
  const a = cs('musha', 10, [name(N1, X, 'Aline')]);
  const b = cs('musha', 11, [{ kind: 'update', table: 'person_name', id: N1, set: { given_name: 'Alina' }, old: { given_name: 'Aline' } }]);
  const c = cs('musha', 12, [person(Y), name(N2, Y, 'Yves')]);
  const d = cs('gahini', 12, [person(Z)]);
  const e = cs('musha', 13, [name(N3, X, 'Xavi')]);
  const batch1 = [a, b, c, d, e].map((x, i) => ({ seq: String(i + 1), cs: x }));
  t.match(await applier.applyBatch('kigali', batch1), { applied: 2, quarantined: 3, duplicates: 0, highestSeq: '5' });
  t.equal(await count(`SELECT COUNT(*) AS n FROM ${S}.person WHERE uuid IN (?, ?)`, [Y, Z]), 2, 'unrelated change sets were not held up');
  t.equal(await count(`SELECT COUNT(*) AS n FROM ${S}.person_name WHERE uuid = ?`, [N2]), 1);

  const q = await quarantineSummary(db, STATE);
  t.equal(q.count, 3);
  t.same(q.byOrigin, [{ origin: 'musha', count: 3 }]);
  t.same(q.entries.map((x) => [x.changeId, x.waitsFor, x.fromPeer, x.tries]), [
    [a.id, `person/${X}`, 'kigali', 1],
    [b.id, a.id, 'kigali', 1],
    [e.id, `person/${X}`, 'kigali', 1],
  ]);
  t.match(q.entries[1]!.reason, /waits behind/);
  t.notMatch(q.entries[0]!.reason, /Aline/, 'no row values in reasons');

  t.match(await applier.applyBatch('kigali', batch1), { applied: 0, duplicates: 5 }, 'quarantined change sets arriving again are not taken twice');
  t.match(await applier.retryQuarantine(), { applied: 0, quarantined: 3, retried: 3 }, 'nothing can apply yet');
  t.same((await quarantineSummary(db, STATE)).entries.map((x) => x.tries), [2, 2, 2], 'tries counted');

  // a change set arriving behind the quarantined ones but touching another row goes through
  const f = cs('musha', 14, [{ kind: 'update', table: 'person_name', id: N2, set: { given_name: 'Yvo' }, old: { given_name: 'Yves' } }]);
  t.match(await applier.applyBatch('kigali', [{ seq: '6', cs: f }]), { applied: 1, quarantined: 0 });
  // a later change set of the origin that needs a held row waits too
  const g = cs('musha', 15, [{ kind: 'update', table: 'person_name', id: N1, set: { family_name: 'Mukamana' }, old: { family_name: 'Uwase' } }]);
  t.match(await applier.applyBatch('kigali', [{ seq: '7', cs: g }]), { applied: 0, quarantined: 1 });

  // the person arrives (another origin, another peer); the retry applies the rest in origin order
  const x = cs('rubavu', 9, [person(X)]);
  t.match(await applier.applyBatch('rwamagana', [{ seq: '1', cs: x }]), { applied: 1 });
  t.match(await applier.retryQuarantine(), { applied: 4, quarantined: 0, retried: 4 });
  t.equal((await quarantineSummary(db, STATE)).count, 0, 'released from quarantine in the same transaction');
  const names = await db.query(`SELECT n.uuid, n.given_name, n.family_name, p.uuid AS person FROM ${S}.person_name n JOIN ${S}.person p USING (person_id) WHERE n.uuid LIKE 'bbbbbbbb%' ORDER BY n.uuid`);
  t.same(names, [
    { uuid: N1, given_name: 'Alina', family_name: 'Mukamana', person: X },
    { uuid: N2, given_name: 'Yvo', family_name: 'Uwase', person: Y },
    { uuid: N3, given_name: 'Xavi', family_name: 'Uwase', person: X },
  ]);
  t.same(
    await db.query(`SELECT change_id, from_peer FROM ${STATE}.ledger WHERE origin = 'musha' ORDER BY hlc`),
    [a, b, c, e, f, g].map((z) => ({ change_id: z.id, from_peer: 'kigali' })),
    'the ledger names the peer each came from',
  );

  // a foreign-key failure quarantines; the change set that frees the row goes on; the retry finishes
  const wire = { ...personRow(Y) };
  const delY = cs('gahini', 20, [{ kind: 'delete', table: 'person', id: Y, digest: rowDigest(await personWire(db, Y, wire)) }]);
  t.match(await applier.applyBatch('kigali', [{ seq: '8', cs: delY }]), { applied: 0, quarantined: 1 });
  t.match((await quarantineSummary(db, STATE)).entries[0], { changeId: delY.id, reason: /still referenced/ });
  const delN2 = cs('musha', 21, [{ kind: 'delete', table: 'person_name', id: N2, digest: 'stale-digest' }]);
  t.match(await applier.applyBatch('kigali', [{ seq: '9', cs: delN2 }]), { applied: 1, conflicts: 1 }, 'a delete with another digest wins and is logged');
  t.match(await applier.retryQuarantine(), { applied: 1, quarantined: 0 });
  t.equal(await count(`SELECT COUNT(*) AS n FROM ${S}.person WHERE uuid = ?`, [Y]), 0);
  t.equal(await count(`SELECT COUNT(*) AS n FROM ${STATE}.conflicts WHERE change_id = ? AND kind = 'delete'`, [delN2.id]), 1);
});

/** The person row as a change set would carry it (every travelling column). */
async function personWire(db: ReturnType<typeof openDb>, uuid: string, given: Row): Promise<Row> {
  const [r] = await db.query<Record<string, unknown>>(`SELECT * FROM ${S}.person WHERE uuid = ?`, [uuid]);
  const out: Record<string, Row[string]> = {};
  for (const [k, v] of Object.entries(r!)) {
    if (k === 'person_id') continue;
    if (k in given) out[k] = given[k]!;
    else out[k] = v === null ? null : String(v);
  }
  return out;
}
