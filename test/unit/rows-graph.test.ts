// The rule of membership read from foreign keys (agent/rows/graph.ts), on an
// OpenMRS-shaped catalogue: owners, followers by NOT NULL keys at their
// shortest distance (cycles broken), shared tables (what the owner refers to,
// and tables with no path), and the shared rows that bring a row along.
import t from 'tap';
import { ownerPaths, rowGraph, type GraphTable } from '../../agent/rows/graph.js';
import { askSql, matchSql, refSql, type Filters } from '../../agent/rows/membership-sql.js';

/** name → [column, referenced table or '', nullable] */
function tables(spec: Record<string, [string, string, boolean][]>): Map<string, GraphTable> {
  return new Map(Object.entries(spec).map(([name, cols]) => [name, {
    name,
    column: new Map(cols.map(([c, , nullable]) => [c, { nullable }])),
    foreignKeys: cols.filter(([, r]) => r !== '').map(([c, r]) => ({ columns: [c], refTable: r, refColumns: [`${r}_id`] })),
  }]));
}

const NN = false;
const NULL = true;
const OPENMRS = tables({
  person: [['person_id', '', NN], ['creator', 'users', NULL], ['cause_of_death', 'concept', NULL]],
  users: [['user_id', '', NN], ['person_id', 'person', NN], ['creator', 'users', NN]],
  concept: [['concept_id', '', NN], ['creator', 'users', NN]],
  location: [['location_id', '', NN], ['creator', 'users', NN], ['parent_location', 'location', NULL]],
  patient: [['patient_id', 'person', NN], ['creator', 'users', NN]],
  person_name: [['person_name_id', '', NN], ['person_id', 'person', NN], ['creator', 'users', NN]],
  visit: [['visit_id', '', NN], ['patient_id', 'patient', NN], ['location_id', 'location', NULL]],
  encounter: [['encounter_id', '', NN], ['patient_id', 'patient', NN], ['visit_id', 'visit', NULL], ['location_id', 'location', NULL], ['creator', 'users', NN]],
  obs: [['obs_id', '', NN], ['person_id', 'person', NN], ['encounter_id', 'encounter', NULL], ['obs_group_id', 'obs', NULL], ['concept_id', 'concept', NN]],
  orders: [['order_id', '', NN], ['patient_id', 'patient', NN], ['encounter_id', 'encounter', NN]],
  provider: [['provider_id', '', NN], ['person_id', 'person', NULL], ['creator', 'users', NN]],
  encounter_provider: [['encounter_provider_id', '', NN], ['encounter_id', 'encounter', NN], ['provider_id', 'provider', NN]],
  relationship: [['relationship_id', '', NN], ['person_a', 'person', NN], ['person_b', 'person', NN]],
  // a NOT NULL cycle beside an owner: each names the other
  loop_a: [['loop_a_id', '', NN], ['person_id', 'person', NN], ['loop_b_id', 'loop_b', NN]],
  loop_b: [['loop_b_id', '', NN], ['loop_a_id', 'loop_a', NN]],
});
const ALL = new Set(OPENMRS.keys());

void t.test('roles, edges and paths on an OpenMRS-shaped schema filtered by person', async (t) => {
  const g = rowGraph(OPENMRS, ['person'], ALL);
  const byRole = (role: string) => [...ALL].filter((n) => g.role(n) === role).sort();
  t.same(byRole('owner'), ['person']);
  t.same(byRole('follower'), ['encounter', 'encounter_provider', 'loop_a', 'loop_b', 'obs', 'orders', 'patient', 'person_name', 'provider', 'relationship', 'visit']);
  t.same(byRole('shared'), ['concept', 'location', 'users'], 'what person refers to (users: the person ↔ users cycle), and what has no path to person');
  t.same([...ALL].filter((n) => g.role(n) !== 'shared').map((n) => [n, g.distance(n)]).sort(),
    [['encounter', 2], ['encounter_provider', 2], ['loop_a', 1], ['loop_b', 2], ['obs', 1], ['orders', 2], ['patient', 1], ['person', 0], ['person_name', 1], ['provider', 1], ['relationship', 1], ['visit', 2]]);
  t.same(ownerPaths(g, 'obs'), [
    'obs.person_id → person',
    'obs.encounter_id → encounter.patient_id → patient.patient_id → person',
    'obs.encounter_id → encounter.visit_id → visit.patient_id → patient.patient_id → person',
  ], 'obs groups (a cycle on obs) left out');
  t.same(ownerPaths(g, 'encounter_provider'), [
    'encounter_provider.encounter_id → encounter.patient_id → patient.patient_id → person',
    'encounter_provider.encounter_id → encounter.visit_id → visit.patient_id → patient.patient_id → person',
    'encounter_provider.provider_id → provider.person_id → person',
  ], 'several owners: the patient, and the provider\'s person (both must go)');
  t.same(ownerPaths(g, 'encounter'), ['encounter.patient_id → patient.patient_id → person', 'encounter.visit_id → visit.patient_id → patient.patient_id → person']);
  t.same(ownerPaths(g, 'orders'), ['orders.patient_id → patient.patient_id → person', 'orders.encounter_id → encounter.patient_id → patient.patient_id → person', 'orders.encounter_id → encounter.visit_id → visit.patient_id → patient.patient_id → person']);
  t.same(ownerPaths(g, 'relationship'), ['relationship.person_a → person', 'relationship.person_b → person']);
  t.same(ownerPaths(g, 'loop_b'), ['loop_b.loop_a_id → loop_a.person_id → person'], 'a cycle: only the edge toward the nearer table counts');
  t.same(ownerPaths(g, 'loop_a'), ['loop_a.person_id → person']);
  t.same(g.edges('users'), [], 'a shared table has no edges');
  t.same(g.referencedBy('person').map((e) => `${e.table}.${e.column}`), ['users.person_id'], 'a user names its person: it goes along');
  t.same(g.referencedBy('obs').map((e) => `${e.table}.${e.column}`), ['obs.obs_group_id'], 'an obs group names its parent obs (not an edge: a cycle)');
  t.same(g.referencedBy('provider'), [], 'an edge is no reference: a row goes only when all its owners do');

  const noUsers = rowGraph(OPENMRS, ['person'], new Set([...ALL].filter((n) => n !== 'users')));
  t.notOk(noUsers.referencedBy('person').some((e) => e.table === 'users'), 'rows of a table the child does not receive bring nothing');
});

void t.test('another owner table: the rule follows what is filtered', async (t) => {
  const g = rowGraph(OPENMRS, ['patient'], ALL);
  t.equal(g.role('person'), 'shared', 'what the owner refers to is shared: filter the root of a record (person in OpenMRS)');
  t.equal(g.role('person_name'), 'shared');
  t.same(ownerPaths(g, 'visit'), ['visit.patient_id → patient']);
  t.equal(g.role('obs'), 'follower', 'obs through its encounter');
  const two = rowGraph(OPENMRS, ['person', 'location'], ALL);
  t.equal(two.role('location'), 'owner');
  t.same(ownerPaths(two, 'visit'), ['visit.patient_id → patient.patient_id → person', 'visit.location_id → location']);
});

void t.test('the SQL asked of the server', async (t) => {
  const f: Filters = {
    schema: 'o', graph: rowGraph(OPENMRS, ['person'], ALL), exprs: { person: "person.gender = 'F'" }, key: (table) => [`${table}_id`],
  };
  t.equal(matchSql(f, 'person'), "(person.gender = 'F')");
  t.equal(matchSql(f, 'patient'), "EXISTS (SELECT 1 FROM `o`.`person` AS `person` WHERE `person`.`person_id` = `patient`.`patient_id` AND (person.gender = 'F'))");
  t.equal(matchSql(f, 'provider'),
    "(`provider`.`person_id` IS NULL OR EXISTS (SELECT 1 FROM `o`.`person` AS `person` WHERE `person`.`person_id` = `provider`.`person_id` AND (person.gender = 'F')))",
    'a provider without a person belongs to no one');
  t.match(matchSql(f, 'relationship'), /^EXISTS .*`relationship`\.`person_a` .* AND EXISTS .*`relationship`\.`person_b`.*$/);
  t.equal(matchSql(f, 'concept'), 'FALSE');
  t.equal(refSql(f, 'person'), 'EXISTS (SELECT 1 FROM `o`.`users` AS `users` WHERE `users`.`person_id` = t0.`person_id`)', 'a user names its person');
  t.match(refSql(f, 'obs'), /^EXISTS \(SELECT 1 FROM `o`\.`obs` AS `obs` WHERE `obs`\.`obs_group_id` = t0\.`obs_id` AND \(EXISTS .*`person`\.`person_id` = `obs`\.`person_id`.* OR EXISTS \(SELECT 1 FROM `o`\.`obs` AS r1 WHERE r1\.`obs_id` = `obs`\.`obs_id` AND EXISTS \(SELECT 1 FROM `o`\.`obs` AS `obs` WHERE `obs`\.`obs_group_id` = r1\.`obs_id`/,
    'a member of a group that goes names its parent, and so on one row further');
  t.equal(refSql(f, 'concept'), 'FALSE');
  t.equal(askSql(f, 'person', 'in'), `(${matchSql(f, 'person')} OR ${refSql(f, 'person')})`);
});
