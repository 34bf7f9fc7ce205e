// A child with row filters is provisioned with its subset only: the snapshot
// its parent writes for it (over HTTP here) holds its patients' records and
// the rows they need, and not one byte of another clinic's patients; after the
// clone it syncs on with the same filter.
import t from 'tap';
import { gunzipSync } from 'node:zlib';
import { PassThrough, type Readable } from 'node:stream';
import { openDb } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { startServer } from '../../deploy/sandbox/mariadb.js';
import { cloneSnapshot } from '../../agent/provision/load.js';
import { fetchSnapshot } from '../../agent/provision/http.js';
import { BUTARO, PROVIDER, RWINKWAVU, STAFF, STAFF_USER, addStaff, atLocation, recordUuids, registerAt } from '../helpers/openmrs-sites.js';
import { childConfig, identities, openRowsNode, openmrsServer, rowsParent, type RowsNode } from '../helpers/rows-net.js';

const TOKEN = 'rwinkwavu-token-0123456789';

/** The stream, and every byte that went through it. */
function tapped(source: Readable): { stream: Readable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const pass = new PassThrough();
  source.on('data', (b: Buffer) => parts.push(b));
  source.pipe(pass);
  return { stream: pass, bytes: () => Buffer.concat(parts) };
}

void t.test('a filtered child is cloned with its subset', async (t) => {
  const ps = await openmrsServer();
  t.teardown(() => ps.stop());
  // rows from before any daemon: only a snapshot carries them
  await addStaff(ps);
  const rwEarly = await registerAt(ps, RWINKWAVU, 'rw', 2);
  const buEarly = await registerAt(ps, BUTARO, 'bu', 2);
  const parent = await rowsParent(ps, [{ id: 'rwinkwavu', token: TOKEN, rows: { person: atLocation('Rwinkwavu') }, rowsLeaving: 'keep' }]);
  const nodes: RowsNode[] = [parent];
  t.teardown(() => Promise.all(nodes.map((n) => n.close())));

  const cs = await startServer();
  t.teardown(() => cs.stop());
  const cfg = childConfig(cs, 'rwinkwavu', parent, TOKEN);
  const db = openDb({ host: cs.host, port: cs.port, user: 'root' });
  t.teardown(() => db.close());
  let body: (() => Buffer) | undefined;
  const r = await cloneSnapshot(
    { db, schema: 'openmrs', stateSchema: 'spokesync', node: 'rwinkwavu', log: silentLogger, force: false,
      progress: () => ({ table: () => undefined, add: () => undefined, done: () => undefined }) },
    async () => { const tp = tapped(await fetchSnapshot(cfg.parent!)); body = tp.bytes; return tp.stream; },
  );
  t.equal(r.parent, 'kigali');
  const text = gunzipSync(body!()).toString('latin1');
  const records = async (people: readonly string[]) => (await Promise.all(people.map((p) => recordUuids(parent.app, p)))).flat();
  const [rwRows, buRows] = [await records(rwEarly), await records(buEarly)];
  t.ok(rwRows.length >= 14 && buRows.length >= 14, 'each registration is a record of several rows');
  t.same(buRows.filter((u) => text.includes(u)), [], 'no uuid of a Butaro patient\'s record is in the snapshot');
  const child = await openRowsNode(cs, cfg);
  nodes.push(child);
  const held = identities(await child.dump());
  t.same(rwRows.filter((u) => !held.has(u)), [], 'every row of the Rwinkwavu patients is at the clone');
  t.same(buRows.filter((u) => held.has(u)), [], 'none of the Butaro patients\'');
  t.ok(held.has(STAFF_USER) && held.has(STAFF), 'the user and its person (a reference)');
  t.notOk(held.has(PROVIDER), 'the provider follows its person, who is no Rwinkwavu patient');
  const count = async (table: string) => Number((await child.app.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`))[0]!.n);
  t.equal(await count('location'), Number((await parent.app.query<{ n: number }>('SELECT COUNT(*) AS n FROM location'))[0]!.n), 'shared tables whole');
  t.equal(await count('concept'), Number((await parent.app.query<{ n: number }>('SELECT COUNT(*) AS n FROM concept'))[0]!.n), 'tables that do not sync are copied whole too');

  // after the clone, the filter goes on
  const rwLate = await registerAt(ps, RWINKWAVU, 'rw2', 1);
  const buLate = await registerAt(ps, BUTARO, 'bu2', 1);
  await parent.node.capture.caughtUp(60_000);
  await child.node.syncWithParent();
  const now = identities(await child.dump());
  t.ok((await records(rwLate)).every((u) => now.has(u)), 'a later Rwinkwavu registration arrives');
  t.notOk((await records(buLate)).some((u) => now.has(u)), 'a later Butaro one does not');
  t.same(await child.node.db.query('SELECT change_id FROM spokesync.quarantine'), []);
});
