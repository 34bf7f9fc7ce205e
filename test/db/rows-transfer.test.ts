// Membership changes under row filters, on the real OpenMRS schema: a patient
// of Butaro is transferred to Rwinkwavu (their identifier moves there at the
// parent). Rwinkwavu receives the patient's whole history as a fill, in an
// order that applies, before anything else of theirs; Butaro, whose child has
// rowsLeaving: delete, gets deletes of that record for itself alone. Later
// edits go to the new clinic only.
import t from 'tap';
import { stateTable } from '../../apply/core/state-schema.js';
import { routeTo } from '../../agent/routing/filters.js';
import { BUTARO, RWINKWAVU, atLocation, recordUuids, registerAt } from '../helpers/openmrs-sites.js';
import { childConfig, identities, openRowsNode, openmrsServer, rowsParent, type RowsNode } from '../helpers/rows-net.js';

const RW_TOKEN = 'rwinkwavu-token-0123456789';
const BU_TOKEN = 'butaro-token-0123456789';

void t.test('a transfer backfills the patient\'s history at the new clinic and leaves the old one', async (t) => {
  const [ps, rs, bs] = await Promise.all([openmrsServer(), openmrsServer(), openmrsServer()]);
  t.teardown(() => Promise.all([ps.stop(), rs.stop(), bs.stop()]));
  const parent = await rowsParent(ps, [
    { id: 'rwinkwavu', token: RW_TOKEN, rows: { person: atLocation('Rwinkwavu') }, rowsLeaving: 'keep' },
    { id: 'butaro', token: BU_TOKEN, rows: { person: atLocation('Butaro') }, rowsLeaving: 'delete' },
  ]);
  const nodes: RowsNode[] = [parent];
  t.teardown(() => Promise.all(nodes.map((n) => n.close())));
  const rwc = await openRowsNode(rs, childConfig(rs, 'rwinkwavu', parent, RW_TOKEN));
  nodes.push(rwc);
  const buc = await openRowsNode(bs, childConfig(bs, 'butaro', parent, BU_TOKEN));
  nodes.push(buc);
  const q = (sql: string, p: unknown[] = []) => ps.query(`USE openmrs; ${sql}`, p);
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await parent.node.capture.caughtUp(60_000);
      for (const c of [rwc, buc]) await c.node.syncWithParent();
    }
  };

  await registerAt(ps, RWINKWAVU, 'rw', 1);
  const [moving, staying] = await registerAt(ps, BUTARO, 'bu', 2);
  // more history at Butaro: a second visit's encounter with an obs group
  await q(`SET @p = (SELECT person_id FROM person WHERE uuid = ?);
    INSERT INTO encounter (encounter_type, patient_id, location_id, encounter_datetime, creator, date_created, uuid)
      SELECT encounter_type_id, @p, 1, NOW(), 1, NOW(), 'enc-moving-0000-4000-8000-000000000002' FROM encounter_type LIMIT 1;
    SET @e = LAST_INSERT_ID();
    INSERT INTO obs (person_id, concept_id, encounter_id, obs_datetime, creator, date_created, uuid) VALUES (@p, 1, @e, NOW(), 1, NOW(), 'obs-group-0000-4000-8000-000000000001');
    INSERT INTO obs (person_id, concept_id, encounter_id, obs_group_id, obs_datetime, value_numeric, creator, date_created, uuid)
      VALUES (@p, 1, @e, LAST_INSERT_ID(), NOW(), 37.5, 1, NOW(), 'obs-membr-0000-4000-8000-000000000001');`, [moving]);
  await settle();
  const history = await recordUuids(parent.app, moving!);
  t.ok(history.includes('obs-membr-0000-4000-8000-000000000001'), 'the record includes the obs group');
  const at = async (c: RowsNode) => identities(await c.dump());
  t.notOk([...await at(rwc)].some((u) => history.includes(u)), 'before the transfer nothing of the patient is at Rwinkwavu');
  const buBefore = await at(buc);
  t.same(history.filter((u) => !buBefore.has(u)), [], 'the whole record at Butaro');

  // the transfer: their identifier moves to Rwinkwavu
  await q(`UPDATE patient_identifier i JOIN person p ON p.person_id = i.patient_id
    SET i.location_id = (SELECT location_id FROM location WHERE uuid = ?) WHERE p.uuid = ?`, [RWINKWAVU, moving]);
  await settle();
  const rwNow = await at(rwc);
  t.same(history.filter((u) => !rwNow.has(u)), [], 'Rwinkwavu holds the whole history now');
  const fills = await parent.node.db.query<{ change_id: string; peer: string }>(`SELECT change_id, peer FROM ${stateTable('spokesync', 'fills')}`);
  t.ok(fills.some((f) => f.peer === 'rwinkwavu' && f.change_id.startsWith('kigali--fill:')), 'it came as a fill');
  const buNow = await at(buc);
  t.same(history.filter((u) => buNow.has(u)), [], 'Butaro (rowsLeaving: delete) no longer holds it');
  t.ok((await recordUuids(parent.app, staying!)).every((u) => buNow.has(u)), 'Butaro keeps its other patient');
  t.ok(fills.some((f) => f.peer === 'butaro' && f.change_id.startsWith('kigali--leave:')), 'by a leave');
  for (const c of [rwc, buc]) {
    t.same(await c.node.db.query(`SELECT change_id, reason FROM ${stateTable('spokesync', 'quarantine')}`), [], `nothing waits at ${c.id}`);
  }
  t.same(await rwc.node.db.query(`SELECT tbl, identity FROM ${stateTable('spokesync', 'conflicts')}`), [], 'no conflict at Rwinkwavu');
  // the identifier Butaro held was changed by the transfer itself: its delete is recorded as a conflict there, and wins
  const conflicts = await buc.node.db.query<{ tbl: string; identity: string; kind: string }>(`SELECT tbl, identity, kind FROM ${stateTable('spokesync', 'conflicts')}`);
  t.same(conflicts.map((c) => [c.tbl, c.kind]), [['patient_identifier', 'delete']]);
  t.ok(history.includes(conflicts[0]!.identity));

  // later edits follow the patient to the new clinic
  await q("UPDATE person_name n JOIN person p USING (person_id) SET n.given_name = 'Transferred' WHERE p.uuid = ?", [moving]);
  await settle();
  const names = Object.values((await rwc.dump()).person_name ?? {}).map((n) => n.given_name);
  t.ok(names.includes('Transferred'), 'an edit after the transfer reaches Rwinkwavu');
  t.notOk(Object.values((await buc.dump()).person_name ?? {}).some((n) => n.given_name === 'Transferred'), 'and not Butaro');
  const leaves = await buc.node.db.query<{ change_id: string }>(`SELECT change_id FROM ${stateTable('spokesync', 'journal')} WHERE origin LIKE '%--leave'`);
  t.ok(leaves.length > 0, 'Butaro journaled the leave it applied');
  const [all] = await buc.node.db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${stateTable('spokesync', 'journal')}`);
  const below = routeTo({ ...buc.config, children: [{ id: 'below', token: 'x' }] }, 'below', 'child');
  t.equal(await buc.node.reader.count(below, '0'), Number(all!.n) - leaves.length, 'and it would go to no child of Butaro\'s');
});
