// After a power cut MariaDB often starts after spokesync: `spokesync run` waits
// for its database with backoff, logging each try, and then syncs; SIGTERM
// stops it at once while it waits; a refused login is not waited for.
// The database comes up DB_DELAY_MS after the daemon (the issue says 30 s; 9 s
// here keeps the suite short and still spans four tries: at 0, 1, 3 and 7 s).
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../agent/config/loader.js';
import { SpokesyncNode } from '../../agent/node.js';
import { silentLogger } from '../../apply/core/log.js';
import { freePort, loadOpenmrs, startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { spokesync } from '../helpers/cli.js';
import { startDaemon, waitHealthy } from '../helpers/daemon-proc.js';

const DB_DELAY_MS = 9000;
const TOKEN = 'clinic-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'spokesync-run-waits-'));

function writeYaml(name: string, lines: readonly string[]): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

function clinicConfig(db: { port: number; user?: string; password?: string }, adminPort: number, parentPort: number): string {
  return writeYaml(`clinic-${db.port}-${db.user ?? 'root'}`, [
    'node: { id: clinic }',
    `database: { host: 127.0.0.1, port: ${db.port}, user: ${db.user ?? 'root'}${db.password ? `, password: ${db.password}` : ''}, schema: openmrs, serverId: 65020 }`,
    'tables: { include: [person, person_name] }',
    `admin: { listen: "127.0.0.1:${adminPort}" }`,
    `parent: { url: "http://127.0.0.1:${parentPort}", token: ${TOKEN}, interval: 1s }`,
  ]);
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const tries = (out: string): number => out.split('\n').filter((l) => l.includes('"msg":"the database is not up yet: waiting for it"')).length;

void t.test('the daemon waits for a database that comes up later, then syncs a registration to its parent', async (t) => {
  const hubServer = await startServer();
  t.teardown(() => hubServer.stop());
  await loadOpenmrs(hubServer);
  const hubPort = await freePort();
  const hub = await SpokesyncNode.open(loadConfig(writeYaml('hub', [
    'node: { id: hub }',
    `database: { host: 127.0.0.1, port: ${hubServer.port}, user: root, schema: openmrs, serverId: 65021 }`,
    'tables: { include: [person, person_name] }',
    `listen: { host: 127.0.0.1, port: ${hubPort} }`,
    `children: [{ id: clinic, token: ${TOKEN} }]`,
  ]), {}), silentLogger);
  t.teardown(() => hub.close());
  await hub.startCapture();
  await hub.startServer();

  const clinic: TestServer = await startServer();
  t.teardown(() => clinic.stop());
  await loadOpenmrs(clinic);
  await clinic.down();
  const adminPort = await freePort();
  const d = startDaemon(clinicConfig({ port: clinic.port }, adminPort, hubPort));
  t.teardown(() => d.stop());

  await new Promise((r) => setTimeout(r, DB_DELAY_MS));
  t.equal(d.proc.exitCode, null, 'still running while its database is down');
  t.ok(tries(d.output()) >= 4, `each try logged at warn (${tries(d.output())} so far)`);
  t.match(d.output(), /"level":"warn","msg":"the database is not up yet: waiting for it".*"nextTryInSeconds":4,"code":"ECONNREFUSED"/);

  await clinic.up();
  await waitHealthy(adminPort, d, 90_000);
  t.match(d.output(), /"msg":"the database is up"/);
  const uuid = 'a1b2c3d4-0000-4000-8000-00000000wait'.slice(0, 36);
  await clinic.query(
    `USE openmrs; START TRANSACTION;
     INSERT INTO person (gender, birthdate, creator, date_created, uuid) VALUES ('F', '1990-01-01', 1, '2026-03-01 08:00:00', ?);
     INSERT INTO person_name (preferred, person_id, given_name, family_name, creator, date_created, uuid)
       VALUES (1, LAST_INSERT_ID(), 'Aline', 'Uwase', 1, '2026-03-01 08:00:00', 'b1c2d3e4-0000-4000-8000-00000000wait');
     COMMIT;`, [uuid]);
  const name = await until('the registration reaches the parent', async () => {
    const rows = await hub.db.query<{ given_name: string }>(
      'SELECT n.given_name FROM openmrs.person p JOIN openmrs.person_name n USING (person_id) WHERE p.uuid = ?', [uuid]);
    return rows[0]?.given_name;
  });
  t.equal(name, 'Aline');
  t.equal(await d.stop(), 0, 'SIGTERM stops it cleanly');
});

void t.test('SIGTERM while it waits stops it at once, exit 0', async (t) => {
  const nothing = await freePort();
  const d = startDaemon(clinicConfig({ port: nothing }, await freePort(), await freePort()));
  t.teardown(() => d.stop());
  await until('the first try', async () => (tries(d.output()) >= 1 ? true : undefined), 30_000);
  const at = Date.now();
  t.equal(await d.stop(), 0);
  t.ok(Date.now() - at < 3000, `stopped in ${Date.now() - at} ms`);
  t.match(d.output(), /stopping \(the database was not up yet\)/);
});

void t.test('a refused login is not waited for: exit 1, saying why', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  await s.query("CREATE USER 'clerk'@'127.0.0.1' IDENTIFIED BY 'right-password'");
  const res = await spokesync(['run', '--config', clinicConfig({ port: s.port, user: 'clerk', password: 'wrong-password' }, await freePort(), await freePort())],
    {}, { killAfterMs: 30_000 });
  t.equal(res.code, 1, res.out + res.err);
  t.match(res.err, /cannot connect to 127\.0\.0\.1:\d+ as clerk \(ER_ACCESS_DENIED_ERROR\): the server answered and refused, which waiting does not change/);
  t.match(res.err, /SPOKESYNC_E_DB_CONNECT/);
  t.notMatch(res.err, /wrong-password/, 'no secret in the message');
  t.equal(tries(res.out), 0, 'not a single wait');
});
