// The rule of membership asked of a real OpenMRS database: patients at two
// clinics, staff who are users and providers. Each op of a batch goes to the
// Rwinkwavu child exactly when its row belongs there, and the batch costs one
// statement per table asked about, not one per row.
import t from 'tap';
import { loadOpenmrs, startServer } from '../../deploy/sandbox/mariadb.js';
import { loadCatalog } from '../../apply/core/catalog.js';
import { openDb, type Queryable } from '../../apply/core/db.js';
import type { Op } from '../../apply/core/model.js';
import { parseConfig } from '../../agent/config/loader.js';
import { childFilters } from '../../agent/rows/child.js';
import { ownerPaths } from '../../agent/rows/graph.js';
import { Membership, type OpFacts } from '../../agent/rows/membership.js';
import { BUTARO, PROVIDER, RWINKWAVU, SITE_TABLES, STAFF, STAFF_USER, addStaff, atLocation, registerAt, setupSites } from '../helpers/openmrs-sites.js';

void t.test('membership on OpenMRS: patients at two clinics, staff', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  await loadOpenmrs(s);
  await setupSites(s);
  await addStaff(s);
  const [rw] = await registerAt(s, RWINKWAVU, 'rw', 1);
  const [bu] = await registerAt(s, BUTARO, 'bu', 1);
  const db = openDb({ host: s.host, port: s.port, user: 'root', schema: 'openmrs' });
  t.teardown(() => db.close());
  const one = async (sql: string, p: unknown[]): Promise<string> => (await db.query<{ u: string }>(sql, p))[0]!.u;
  const encounterOf = (person: string) => one('SELECT e.uuid AS u FROM encounter e JOIN person p ON p.person_id = e.patient_id WHERE p.uuid = ?', [person]);
  const nameOf = (person: string) => one('SELECT n.uuid AS u FROM person_name n JOIN person p USING (person_id) WHERE p.uuid = ?', [person]);

  const config = parseConfig(`
node: { id: kigali }
database: { host: 127.0.0.1, port: ${s.port}, user: root, schema: openmrs, serverId: 64001 }
tables: { include: [${SITE_TABLES.join(', ')}, concept] }
listen: { port: 8080 }
children:
  - { id: rwinkwavu, token: t1, rows: { person: "${atLocation('Rwinkwavu')} OR EXISTS (SELECT 1 FROM users u WHERE u.person_id = person.person_id)" } }
  - { id: butaro, token: t2, rows: { person: "${atLocation('Butaro')}" } }
`, 'k.yaml', {});
  const catalog = await loadCatalog(db, 'openmrs');
  const filters = childFilters(config, config.children[0]!, catalog)!;
  const g = filters.graph;
  t.same(SITE_TABLES.filter((n) => g.role(n) === 'follower').sort(),
    ['encounter', 'encounter_provider', 'obs', 'patient', 'patient_identifier', 'person_address', 'person_name', 'provider', 'visit']);
  t.same(SITE_TABLES.filter((n) => g.role(n) === 'shared').sort(),
    ['encounter_role', 'encounter_type', 'location', 'users', 'visit_type'], 'the real schema: users (person.creator) and metadata are shared');
  t.ok(ownerPaths(g, 'encounter_provider').includes('encounter_provider.encounter_id → encounter.patient_id → patient.patient_id → person'));
  t.ok(ownerPaths(g, 'encounter_provider').includes('encounter_provider.provider_id → provider.person_id → person'));
  t.ok(ownerPaths(g, 'obs').includes('obs.person_id → person'));
  t.notOk(ownerPaths(g, 'obs').some((p) => p.includes('obs_group_id')), 'obs groups: a cycle, left out');

  let statements = 0;
  const texts = new Set<string>();
  const counted: Queryable = {
    query: async (sql, p) => { statements++; texts.add(sql.replace(/\(\?(, \?)*\)/, '(…)')); return db.query(sql, p); },
    exec: (sql, p) => db.exec(sql, p),
  };
  const m = new Membership(counted, catalog, filters);
  const ins = (table: string, id: string, row: Record<string, unknown> = {}): OpFacts => ({ op: { kind: 'insert', table, id, row } as Op });
  const personRef = (id: string) => ({ ref: 'person', id });
  const cases: [string, OpFacts, boolean][] = [
    ['the Rwinkwavu patient', ins('person', rw!), true],
    ['the Butaro patient', ins('person', bu!), false],
    ['the staff person: the rule takes users', ins('person', STAFF), true],
    ['a person gone from the parent since', ins('person', '99999999-0000-4000-8000-000000000000'), false],
    ['patient: its shared key names the person', ins('patient', rw!), true],
    ['patient of Butaro', ins('patient', bu!), false],
    ['an obs of the Rwinkwavu patient (by the insert\'s own person_id)', ins('obs', 'o-1', { person_id: personRef(rw!), concept_id: { ref: 'concept', id: 'c' } }), true],
    ['an obs of the Butaro patient', ins('obs', 'o-2', { person_id: personRef(bu!) }), false],
    ['an obs of the Butaro patient in a Rwinkwavu encounter: all owners must go', ins('obs', 'o-3', { person_id: personRef(bu!), encounter_id: { ref: 'encounter', id: await encounterOf(rw!) } }), false],
    ['an obs of the Rwinkwavu patient in its encounter', ins('obs', 'o-5', { person_id: personRef(rw!), encounter_id: { ref: 'encounter', id: await encounterOf(rw!) } }), true],
    ['an obs that names no owner belongs to no one', ins('obs', 'o-4', { person_id: null, encounter_id: null }), true],
    ['encounter_provider, three steps from person', ins('encounter_provider', 'ep-1', { encounter_id: { ref: 'encounter', id: await encounterOf(rw!) }, provider_id: { ref: 'provider', id: PROVIDER } }), true],
    ['encounter_provider of a Butaro encounter', ins('encounter_provider', 'ep-2', { encounter_id: { ref: 'encounter', id: await encounterOf(bu!) }, provider_id: { ref: 'provider', id: PROVIDER } }), false],
    ['the provider follows its person', ins('provider', PROVIDER, { person_id: personRef(STAFF) }), true],
    ['a provider without a person belongs to no one', ins('provider', 'prov-2', { person_id: null }), true],
    ['an update of a Rwinkwavu name (the row as it is now)', { op: { kind: 'update', table: 'person_name', id: await nameOf(rw!), set: { given_name: 'x' }, old: { given_name: 'y' } } }, true],
    ['an update of a Butaro name', { op: { kind: 'update', table: 'person_name', id: await nameOf(bu!), set: { given_name: 'x' }, old: { given_name: 'y' } } }, false],
    ['a delete of an obs, by the references the deleted row held', { op: { kind: 'delete', table: 'obs', id: 'gone-1', digest: 'd' }, oldRefs: { person_id: personRef(rw!) } }, true],
    ['a delete of a Butaro obs', { op: { kind: 'delete', table: 'obs', id: 'gone-2', digest: 'd' }, oldRefs: { person_id: personRef(bu!) } }, false],
    ['a delete whose references were not journaled', { op: { kind: 'delete', table: 'obs', id: 'gone-3', digest: 'd' } }, false],
    ['a user (shared)', ins('users', STAFF_USER, { person_id: personRef(STAFF) }), true],
    ['a location (shared)', ins('location', BUTARO), true],
  ];
  const got = await m.decide(cases.map((c) => c[1]));
  cases.forEach(([what, , want], i) => t.equal(got[i], want, what));
  // the other clinic's rule leaves staff out: a user's person goes as a reference, alone
  const bm = new Membership(db, catalog, childFilters(config, config.children[1]!, catalog)!);
  t.same(await bm.decide([ins('person', STAFF), ins('provider', PROVIDER, { person_id: personRef(STAFF) }), ins('person', bu!), ins('person', rw!)]),
    [true, false, true, false], 'the staff person (named by a user), not its provider; Butaro\'s patient, not Rwinkwavu\'s');

  t.equal(statements, texts.size, `one statement per table and question (${statements} for ${cases.length} ops)`);
  t.ok(statements <= 10);
  statements = 0;
  t.same(await m.decide([ins('location', RWINKWAVU)]), [true]);
  t.equal(statements, 0, 'shared rows ask nothing');
});
