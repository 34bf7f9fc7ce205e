import t from 'tap';
import { startServer, loadOpenmrs } from '../../deploy/sandbox/mariadb.js';
import { openDb } from '../../apply/core/db.js';
import { loadCatalog } from '../../apply/core/catalog.js';

void t.test('identity rules on the OpenMRS schema', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  await loadOpenmrs(s);
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const cat = await loadCatalog(db, 'openmrs');
  t.equal(cat.tables.size, 116);

  t.same(cat.table('person').identity, { kind: 'uuid', column: 'uuid' });
  t.ok(cat.table('person').localColumns.has('person_id'), 'person_id is a local id');
  t.same(cat.table('patient').identity, { kind: 'shared', column: 'patient_id', refTable: 'person', refColumn: 'person_id' });
  t.same(cat.table('concept_numeric').identity?.kind, 'shared');
  t.same(cat.table('drug_order').identity, { kind: 'shared', column: 'order_id', refTable: 'orders', refColumn: 'order_id' });
  t.same(cat.table('role_privilege').identity, { kind: 'natural', columns: ['role', 'privilege'] });
  t.same(cat.table('user_role').identity, { kind: 'natural', columns: ['user_id', 'role'] });
  t.same(cat.table('global_property').identity?.kind, 'uuid');
  t.equal(cat.table('obs').refs.get('obs_group_id')?.table, 'obs', 'obs self-reference is a ref');
  t.equal(cat.table('obs').refs.get('concept_id')?.table, 'concept');

  for (const name of ['concept_name_tag_map', 'concept_proposal_tag_map', 'liquibasechangelog']) {
    t.equal(cat.table(name).identity, null, `${name} has no identity`);
    t.match(cat.table(name).identityProblem, /tables\.keys/);
  }
  const withKeys = await loadCatalog(db, 'openmrs', { keys: { concept_name_tag_map: ['concept_name_id', 'concept_name_tag_id'] } });
  t.same(withKeys.table('concept_name_tag_map').identity, { kind: 'natural', columns: ['concept_name_id', 'concept_name_tag_id'] });
  t.throws(() => cat.table('no_such_table'), { code: 'SPOKESYNC_E_UNKNOWN_TABLE' });
  const noIdentity = [...cat.tables.values()].filter((x) => !x.identity).map((x) => x.name).sort();
  // liquibasechangeloglock has only an integer id; scheduler_task_config_property only an auto-increment id.
  t.same(noIdentity, ['concept_name_tag_map', 'concept_proposal_tag_map', 'liquibasechangelog', 'liquibasechangeloglock', 'scheduler_task_config_property']);
});
