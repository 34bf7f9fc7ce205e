// Row filters at routing time, on the real OpenMRS schema: a parent with two
// filtered children (one clinic each). Each child receives exactly its
// patients, with every row of their records and the staff rows they name;
// deletes and updates follow the same rule; what a child registers reaches the
// parent and never comes back; a change set that went once goes the same way
// again whatever its rows became since.
import t from 'tap';
import { stateTable } from '../../apply/core/state-schema.js';
import { formatStatus, nodeStatus } from '../../agent/routing/node-status.js';
import { BUTARO, PROVIDER, RWINKWAVU, STAFF, STAFF_USER, addStaff, atLocation, recordUuids, registerAt } from '../helpers/openmrs-sites.js';
import { childConfig, identities, openRowsNode, openmrsServer, rowsParent, type RowsNode } from '../helpers/rows-net.js';

const RW_TOKEN = 'rwinkwavu-token-0123456789';
const BU_TOKEN = 'butaro-token-0123456789';
const STAFF_RULE = ' OR EXISTS (SELECT 1 FROM users u WHERE u.person_id = person.person_id)';

void t.test('row filters: each clinic receives its own patients', async (t) => {
  const [ps, rs, bs] = await Promise.all([openmrsServer(), openmrsServer(), openmrsServer()]);
  t.teardown(() => Promise.all([ps.stop(), rs.stop(), bs.stop()]));
  const parent = await rowsParent(ps, [
    { id: 'rwinkwavu', token: RW_TOKEN, rows: { person: atLocation('Rwinkwavu') }, rowsLeaving: 'keep' },
    { id: 'butaro', token: BU_TOKEN, rows: { person: atLocation('Butaro') + STAFF_RULE }, rowsLeaving: 'keep' },
  ]);
  const nodes: RowsNode[] = [parent];
  t.teardown(() => Promise.all(nodes.map((n) => n.close())));

  // written at the parent while its daemon runs
  await addStaff(ps);
  const rw = await registerAt(ps, RWINKWAVU, 'rw', 3);
  const bu = await registerAt(ps, BUTARO, 'bu', 3);
  const q = (sql: string, p: unknown[] = []) => ps.query(`USE openmrs; ${sql}`, p);
  // the nurse saw the first Rwinkwavu patient; a name corrected at each clinic; an obs deleted at each
  await q(`INSERT INTO encounter_role (name, creator, date_created, uuid) VALUES ('Nurse', 1, NOW(), 'role-0000-4000-8000-000000000001');
    INSERT INTO encounter_provider (encounter_id, provider_id, encounter_role_id, creator, date_created, uuid)
    SELECT e.encounter_id, p.provider_id, r.encounter_role_id, 1, NOW(), 'ep-00000-4000-8000-000000000001'
      FROM encounter e JOIN person x ON x.person_id = e.patient_id, provider p, encounter_role r WHERE x.uuid = ? AND p.uuid = ? AND r.name = 'Nurse'`, [rw[0], PROVIDER]);
  for (const [who, name] of [[rw[0], 'Aline'], [bu[0], 'Berthe']] as const) {
    await q('UPDATE person_name n JOIN person p USING (person_id) SET n.given_name = ? WHERE p.uuid = ?', [name, who]);
  }
  const obsOf = async (who: string) => ((await parent.app.query<{ u: string }>('SELECT o.uuid AS u FROM obs o JOIN person p USING (person_id) WHERE p.uuid = ?', [who]))[0]!.u);
  const [rwObs, buObs] = [await obsOf(rw[1]!), await obsOf(bu[1]!)];
  for (const u of [rwObs, buObs]) await q('DELETE FROM obs WHERE uuid = ?', [u]);
  await parent.node.capture.caughtUp(60_000);

  const rwc = await openRowsNode(rs, childConfig(rs, 'rwinkwavu', parent, RW_TOKEN));
  nodes.push(rwc);
  const buc = await openRowsNode(bs, childConfig(bs, 'butaro', parent, BU_TOKEN));
  nodes.push(buc);
  for (const c of [rwc, buc]) {
    const r = await c.node.syncWithParent();
    t.ok(r.received > 0, `${c.id} received change sets`);
  }

  const records = async (people: readonly string[]) => new Set((await Promise.all(people.map((p) => recordUuids(parent.app, p)))).flat());
  const [rwRows, buRows] = [await records(rw), await records(bu)];
  const at = { rw: identities(await rwc.dump()), bu: identities(await buc.dump()) };
  for (const u of rwRows) t.ok(at.rw.has(u), `Rwinkwavu holds ${u}`);
  for (const u of buRows) t.ok(at.bu.has(u), `Butaro holds ${u}`);
  t.same([...buRows].filter((u) => at.rw.has(u)), [], 'nothing of a Butaro patient at Rwinkwavu');
  t.same([...rwRows].filter((u) => at.bu.has(u)), [], 'nothing of a Rwinkwavu patient at Butaro');
  t.notOk(at.rw.has(rwObs) || at.bu.has(buObs), 'the deleted obs are gone');
  const rwDump = await rwc.dump();
  t.equal(Object.values(rwDump.person_name ?? {}).filter((n) => n.given_name === 'Aline').length, 1, 'the name corrected at the parent');
  t.notOk(Object.values(rwDump.person_name ?? {}).some((n) => n.given_name === 'Berthe'));
  t.ok(at.rw.has(STAFF_USER) && at.rw.has(STAFF), 'the user, and its person (a reference), at Rwinkwavu');
  t.notOk(at.rw.has(PROVIDER), 'Rwinkwavu\'s rule leaves staff out: the provider follows its person, who goes only as a user\'s reference');
  t.notOk(at.rw.has('ep-00000-4000-8000-000000000001'), 'so the encounter_provider naming it does not go either: all its owners must');
  t.ok(at.bu.has(PROVIDER) && at.bu.has(STAFF), 'Butaro\'s rule takes the staff: the provider follows its person');
  t.notOk(at.bu.has('ep-00000-4000-8000-000000000001'), 'the Rwinkwavu encounter_provider stays away from Butaro');
  for (const c of [rwc, buc]) {
    t.same(await c.node.db.query(`SELECT change_id, reason FROM ${stateTable('spokesync', 'quarantine')}`), [], `nothing waits at ${c.id}`);
  }
  const status = await nodeStatus(parent.node.db, parent.config, parent.node.reader);
  for (const p of status.peers) t.ok((p.rowsFiltered ?? 0) > 0, `status counts the ops kept from ${p.peer} (${p.rowsFiltered})`);
  t.match(formatStatus(status), /row filters +\d+ ops kept from it/);

  // a registration at the child goes up, and not back; the other clinic never sees it
  const [mine] = await registerAt(rs, RWINKWAVU, 'rwc', 1);
  await rwc.node.capture.caughtUp(60_000);
  await rwc.node.syncWithParent();
  await parent.node.capture.caughtUp(60_000);
  await rwc.node.syncWithParent();
  await buc.node.syncWithParent();
  t.ok(identities(await parent.dump()).has(mine!), 'the child\'s patient reached the parent');
  t.notOk(identities(await buc.dump()).has(mine!), 'and not the other clinic');
  const back = await rwc.node.db.query(`SELECT change_id FROM ${stateTable('spokesync', 'ledger')} WHERE origin = 'rwinkwavu'`);
  t.same(back, [], 'nothing of its own came back to the child');

  // a change set that went once goes the same way again, whatever its rows became since
  const [late] = await registerAt(ps, RWINKWAVU, 'late', 1);
  await parent.node.capture.caughtUp(60_000);
  const route = parent.node.routeFor('rwinkwavu', 'child');
  const first = await parent.node.core.next(route, { records: 50, bytes: 1 << 20 });
  t.equal(first.entries.length, 1, 'the new registration goes');
  await q(`UPDATE patient_identifier i JOIN person p ON p.person_id = i.patient_id SET i.location_id = (SELECT location_id FROM location WHERE uuid = '${BUTARO}') WHERE p.uuid = ?`, [late]);
  await parent.node.capture.caughtUp(60_000);
  const again = await parent.node.core.next(route, { records: 50, bytes: 1 << 20 });
  t.same(again.entries[0], first.entries[0], 'sent again (not acknowledged), it is the same change set');
  t.equal(again.entries.length, 1, 'the transfer away goes nowhere');
});
