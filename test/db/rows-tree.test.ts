// Row filters on a three-level tree of OpenMRS nodes: the root filters for a
// district (two clinics of three), the district filters again for a clinic.
// Each node receives exactly its patients; a registration at the clinic goes
// all the way up and never comes back; the clinic and the district compare
// equal on the clinic's subset (verify), while the district's whole tables
// would not.
import t from 'tap';
import { compareSides } from '../../agent/verify/compare.js';
import { sideForChild } from '../../agent/verify/verify-http.js';
import { LocalSide } from '../../agent/verify/side.js';
import { tablesWith } from '../../agent/verify/verify-session.js';
import { freePort } from '../../deploy/sandbox/mariadb.js';
import { BUTARO, RWINKWAVU, atLocation, recordUuids, registerAt } from '../helpers/openmrs-sites.js';
import { childConfig, identities, openRowsNode, openmrsServer, rowsParent, type RowsNode } from '../helpers/rows-net.js';

const DISTRICT_TOKEN = 'district-token-0123456789';
const CLINIC_TOKEN = 'clinic-token-0123456789';
const ELSEWHERE = '99999999-0000-4000-8000-00000000ffff';
/** staff (the admin of the OpenMRS base, a user) belong everywhere, names included */
const STAFF = ' OR EXISTS (SELECT 1 FROM users u WHERE u.person_id = person.person_id)';

void t.test('a middle node filters again for its own child', async (t) => {
  const [ks, ds, cs] = await Promise.all([openmrsServer(), openmrsServer(), openmrsServer()]);
  t.teardown(() => Promise.all([ks.stop(), ds.stop(), cs.stop()]));
  const root = await rowsParent(ks, [
    { id: 'district', token: DISTRICT_TOKEN, rows: { person: `${atLocation('Rwinkwavu')} OR ${atLocation('Butaro')}${STAFF}` }, rowsLeaving: 'keep' },
  ]);
  const nodes: RowsNode[] = [root];
  t.teardown(() => Promise.all(nodes.map((n) => n.close())));
  const district = await openRowsNode(ds, {
    ...childConfig(ds, 'district', root, DISTRICT_TOKEN),
    listen: { host: '127.0.0.1', port: await freePort(), maxBodyBytes: 8 << 20, maxInflatedBytes: 64 << 20 },
    children: [{ id: 'rwinkwavu', token: CLINIC_TOKEN, rows: { person: atLocation('Rwinkwavu') + STAFF }, rowsLeaving: 'keep' }],
  });
  nodes.push(district);
  const clinic = await openRowsNode(cs, childConfig(cs, 'rwinkwavu', district, CLINIC_TOKEN));
  nodes.push(clinic);
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      for (const n of [root, district, clinic]) await n.node.capture.caughtUp(60_000);
      await district.node.syncWithParent();
      await district.node.capture.caughtUp(60_000);
      await clinic.node.syncWithParent();
    }
  };

  const rw = await registerAt(ks, RWINKWAVU, 'rw', 2);
  const bu = await registerAt(ks, BUTARO, 'bu', 2);
  const far = await registerAt(ks, ELSEWHERE, 'far', 2);
  await settle();
  const records = async (people: readonly string[]) => (await Promise.all(people.map((p) => recordUuids(root.app, p)))).flat();
  const [rwRows, buRows, farRows] = [await records(rw), await records(bu), await records(far)];
  const [atDistrict, atClinic] = [identities(await district.dump()), identities(await clinic.dump())];
  t.same([...rwRows, ...buRows].filter((u) => !atDistrict.has(u)), [], 'the district holds both clinics\' patients');
  t.same(farRows.filter((u) => atDistrict.has(u)), [], 'and none of elsewhere');
  t.same(rwRows.filter((u) => !atClinic.has(u)), [], 'the clinic holds its patients');
  t.same([...buRows, ...farRows].filter((u) => atClinic.has(u)), [], 'and nobody else\'s');

  // the clinic's own registration: up two levels, never back
  const [mine] = await registerAt(cs, RWINKWAVU, 'here', 1);
  await settle();
  const up = await records([mine!]);
  const [d2, k2] = [identities(await district.dump()), identities(await root.dump())];
  t.same(up.filter((u) => !d2.has(u) || !k2.has(u)), [], 'at the district and the root');
  t.same(await clinic.node.db.query("SELECT change_id FROM spokesync.ledger WHERE origin = 'rwinkwavu'"), [], 'nothing of its own came back');
  for (const n of [district, clinic]) t.same(await n.node.db.query('SELECT change_id FROM spokesync.quarantine'), [], `nothing waits at ${n.id}`);

  // verify compares the clinic with the district on the clinic's subset only
  const catalog = clinic.node.applier.currentCatalog();
  const tables = tablesWith(clinic.config, catalog, 'district');
  const here = new LocalSide({
    db: clinic.node.db, stateSchema: 'spokesync', peer: 'district', catalog: async () => catalog,
    tables: () => new Set(tables), caughtUp: () => clinic.node.capture.caughtUp(60_000),
  });
  const deps = {
    config: district.config, db: district.node.db, capture: district.node.capture,
    catalog: () => district.node.applier.currentCatalog(), appDb: () => district.node.rows.appDb(),
  };
  const same = await compareSides(here, sideForChild(deps, 'rwinkwavu'), tables, catalog);
  t.same(same.differing, [], 'the clinic and its subset at the district agree');
  t.same(same.tables.filter((x) => x.state !== 'same').map((x) => x.table), []);
  const whole = await compareSides(here, new LocalSide({
    db: district.node.db, stateSchema: 'spokesync', peer: 'rwinkwavu', catalog: async () => deps.catalog(),
    tables: () => new Set(tables), caughtUp: () => district.node.capture.caughtUp(60_000),
  }), tables, catalog);
  t.ok(whole.differing.some((x) => x.kind === 'missing here' && buRows.includes(x.identity)), 'the district\'s whole tables would not (Butaro\'s rows)');
});
