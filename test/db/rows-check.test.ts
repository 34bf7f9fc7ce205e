// Row filters are checked at start against the real OpenMRS schema: the table
// must sync with that child, and the server must run the expression against it
// (other tables named without their schema). `spokesync check` lists each
// problem; the daemon's preflight refuses to start on one.
import t from 'tap';
import { loadOpenmrs, startServer } from '../../deploy/sandbox/mariadb.js';
import { parseConfig } from '../../agent/config/loader.js';
import { runChecks } from '../../agent/check/checks.js';
import { gatherFacts } from '../../agent/check/facts.js';
import { assertPreflight } from '../../agent/check/preflight.js';
import { connectDb } from '../../apply/core/db.js';

const BY_LOCATION = "EXISTS (SELECT 1 FROM patient_identifier i JOIN location l ON l.location_id = i.location_id WHERE i.patient_id = person.person_id AND l.name = 'Rwinkwavu')";

void t.test('row filters: checked against the server at start', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  await loadOpenmrs(s);
  const db = await connectDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const config = (rows: string) => parseConfig(`
node: { id: kigali }
database: { host: 127.0.0.1, port: ${s.port}, user: root, schema: openmrs, serverId: 64001 }
tables: { include: [person, person_name, patient, patient_identifier, location, obs] }
listen: { port: 8080 }
children:
  - { id: rwinkwavu, token: t1, rows: ${rows} }
  - { id: butaro, token: t2, tables: { include: [person, patient] } }
`, 'k.yaml', {});
  const problems = async (rows: string) =>
    runChecks(await gatherFacts(db, config(rows)), config(rows)).filter((p) => p.check === 'children.rows').map((p) => p.message);

  t.same(await problems(`{ person: "${BY_LOCATION}", obs: "obs.voided = 0" }`), [], 'good filters pass');
  t.match(await problems('{ person: "person.no_such_column = 1" }'), [/children\[0\]\.rows\.person: the server cannot run the expression against person: Unknown column 'person.no_such_column'/]);
  t.match(await problems('{ person: "EXISTS (SELECT 1 FROM no_such_table x)" }'), [/no_such_table' doesn't exist/]);
  t.match(await problems('{ personn: "TRUE" }'), [/children\[0\]\.rows\.personn: personn is not a table of schema openmrs/]);
  t.match(await problems('{ users: "TRUE" }'), [/children\[0\]\.rows\.users: users does not sync with rwinkwavu/]);
  t.match(await problems('{ person: "person.gender = 1 +" }'), [/cannot run the expression against person: You have an error in your SQL syntax/]);

  const err = await assertPreflight(db, config('{ person: "person.nope" }')).then(() => null, (e: unknown) => e as Error & { code?: string });
  t.equal(err?.code, 'SPOKESYNC_E_PREFLIGHT', 'the daemon does not start');
  t.match(err?.message, /children\[0\]\.rows\.person/);
  // the probe's session (its default schema set) went: the pool's others have none
  const [r] = await db.query<{ d: string | null }>('SELECT DATABASE() AS d');
  t.equal(r?.d, null);
});
