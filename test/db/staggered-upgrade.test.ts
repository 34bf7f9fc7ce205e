// A staggered application upgrade on the real OpenMRS schema: a parent and two
// clinics, writes everywhere. The parent is upgraded first (a new column with
// a default on person, a new table, person_name.given_name widened); clinic a a
// little later; clinic b much later, exchanging by USB once in between. Nothing
// is lost or cut, location (unrelated) never stops, and at the end all three
// databases hold the same rows.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../agent/config/types.js';
import { SpokesyncNode } from '../../agent/node.js';
import { exportFile, importFile } from '../../agent/usb/transfer.js';
import { nodeStatus } from '../../agent/routing/node-status.js';
import { silentLogger } from '../../apply/core/log.js';
import { dumpByIdentity } from '../../deploy/sandbox/identity-dump.js';
import { freePort, loadOpenmrs, startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';

const S = 'openmrs';
const TABLES = ['person', 'person_name', 'location', 'referral'];
const ADMIN = 1;

interface Clinic {
  readonly id: string;
  readonly server: TestServer;
  readonly config: Config;
  node: SpokesyncNode;
  restart(): Promise<void>;
  sql(statement: string, params?: unknown[]): Promise<unknown>;
  one(statement: string, params?: unknown[]): Promise<Record<string, unknown> | undefined>;
}

async function clinic(id: string, opts: { listen?: boolean; children?: string[]; parentPort?: number }): Promise<Clinic> {
  const server = await startServer();
  await loadOpenmrs(server, S);
  const config: Config = {
    file: '/dev/null',
    node: { id },
    database: { host: server.host, port: server.port, user: 'root', schema: S, stateSchema: 'spokesync', serverId: server.serverId + 1 },
    tables: { include: ['person', 'person_name', 'location', 'referral*'], exclude: [], keys: {}, direction: {} },
    children: (opts.children ?? []).map((c) => ({ id: c, token: `${c}-token-0123456789` })),
    ...(opts.listen ? { listen: { host: '127.0.0.1', port: await freePort(), maxBodyBytes: 8 << 20, maxInflatedBytes: 64 << 20 } } : {}),
    ...(opts.parentPort
      ? { parent: { url: `http://127.0.0.1:${opts.parentPort}`, token: `${id}-token-0123456789`, interval: 1000, timeout: 10_000, maxTries: 4, compression: 'br' as const, batch: { records: 20, bytes: 64 * 1024 } } }
      : {}),
    capture: { memoryBytes: 32 << 20 },
    log: { level: 'info' },
  };
  const open = async (): Promise<SpokesyncNode> => {
    const n = await SpokesyncNode.open(config, silentLogger, { backoffBaseMs: 20, backoffMaxMs: 50 });
    await n.startCapture();
    await n.startServer();
    return n;
  };
  const c: Clinic = {
    id, server, config, node: await open(),
    restart: async () => { await c.node.close(); c.node = await open(); },
    sql: (statement, params) => server.query(`USE ${S}; ${statement}`, params),
    one: async (statement, params) => (await c.node.db.query<Record<string, unknown>>(statement, params))[0],
  };
  return c;
}

let n = 0;
const uuidOf = (tag: string): string => `${tag}-${String(++n).padStart(4, '0')}-4000-8000-000000000000`.slice(0, 36).padEnd(36, '0');

async function registerPerson(c: Clinic, given: string, extra: string = ''): Promise<string> {
  const p = uuidOf('a1b2c3d4');
  await c.sql(
    `START TRANSACTION;
     INSERT INTO person (gender, birthdate, creator, date_created, uuid${extra ? ', ethnicity' : ''}) VALUES ('F', '1990-01-01', ${ADMIN}, '2026-03-01 08:00:00', ?${extra ? ', ?' : ''});
     INSERT INTO person_name (preferred, person_id, given_name, family_name, creator, date_created, uuid) VALUES (1, LAST_INSERT_ID(), ?, 'Uwase', ${ADMIN}, '2026-03-01 08:00:00', ?);
     COMMIT;`,
    extra ? [p, extra, given, uuidOf('b1c2d3e4')] : [p, given, uuidOf('b1c2d3e4')],
  );
  return p;
}

async function addLocation(c: Clinic, name: string): Promise<void> {
  await c.sql(`INSERT INTO location (name, creator, date_created, uuid) VALUES (?, ${ADMIN}, '2026-03-01 08:00:00', ?)`, [name, uuidOf('c1d2e3f4')]);
}

async function upgrade(c: Clinic): Promise<void> {
  await c.sql(`ALTER TABLE person ADD COLUMN ethnicity VARCHAR(50) NULL DEFAULT 'unknown'`);
  await c.sql(`ALTER TABLE person_name MODIFY given_name VARCHAR(100) NULL`);
  await c.sql(`CREATE TABLE referral (referral_id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(38) NOT NULL UNIQUE, reason VARCHAR(255) NOT NULL) ENGINE=InnoDB`);
  // the application upgrade ends with a restart of the node's services
  await c.restart();
}

async function settle(all: readonly Clinic[], kids: readonly Clinic[]): Promise<void> {
  for (let pass = 0; pass < 12; pass++) {
    let moved = 0;
    for (const k of kids) {
      await Promise.all(all.map((c) => c.node.capture.caughtUp(60_000)));
      const r = await k.node.syncWithParent();
      moved += r.sent + r.received;
    }
    if (moved === 0 && pass > 0) return;
  }
  throw new Error('the network did not settle');
}

const count = async (c: Clinic, table: string): Promise<number> => Number((await c.one(`SELECT COUNT(*) AS n FROM ${S}.${table}`))!.n);

void t.test('staggered OpenMRS upgrade: parent first, clinic a later, clinic b much later by USB', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-stagger-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hub = await clinic('hub', { listen: true, children: ['clinic-a', 'clinic-b'] });
  t.teardown(async () => { await hub.node.close().catch(() => undefined); await hub.server.stop(); });
  const port = hub.config.listen!.port;
  const a = await clinic('clinic-a', { parentPort: port });
  t.teardown(async () => { await a.node.close().catch(() => undefined); await a.server.stop(); });
  const b = await clinic('clinic-b', { parentPort: port });
  t.teardown(async () => { await b.node.close().catch(() => undefined); await b.server.stop(); });
  const all = [hub, a, b];
  const kids = [a, b];
  const locations0 = await count(hub, 'location');
  const people0 = await count(hub, 'person');

  // before any upgrade
  for (const c of all) await registerPerson(c, `before-${c.id}`);
  await settle(all, kids);
  for (const c of all) t.equal(await count(c, 'person'), people0 + 3, `${c.id}: every person before the upgrade`);

  // the parent is upgraded; everyone keeps writing
  await upgrade(hub);
  // a person without a name: it carries only the new column's default (before anything holds person)
  const bare = uuidOf('e1f2a3b4');
  await hub.sql(`INSERT INTO person (gender, creator, date_created, uuid) VALUES ('M', ${ADMIN}, '2026-03-01 08:00:00', ?)`, [bare]);
  const plain = await registerPerson(hub, 'hub-default');
  const tagged = await registerPerson(hub, 'hub-tagged', 'Tutsi-Hutu-Twa');
  const long = await registerPerson(hub, 'x'.repeat(80));
  await hub.sql(`INSERT INTO referral (uuid, reason) VALUES (?, 'to the district hospital')`, [uuidOf('d1e2f3a4')]);
  for (const c of all) await addLocation(c, `ward-${c.id}-1`);
  await registerPerson(a, 'a-during');
  await registerPerson(b, 'b-during');
  await settle(all, kids);

  t.equal(await count(hub, 'location'), locations0 + 3, 'location flows up while person waits');
  for (const c of kids) {
    t.equal(await count(c, 'location'), locations0 + 3, `${c.id}: location flows down`);
    t.ok(await c.one(`SELECT 1 AS x FROM ${S}.person WHERE uuid = ?`, [bare]), `${c.id}: a person carrying the new column's default applied`);
    // given_name is VARCHAR(100) at the parent: every registration carrying it waits for this clinic's upgrade
    t.notOk(await c.one(`SELECT 1 AS x FROM ${S}.person WHERE uuid = ?`, [plain]), `${c.id}: a registration with a short name is held too (the column is narrower here)`);
    t.notOk(await c.one(`SELECT 1 AS x FROM ${S}.person WHERE uuid = ?`, [tagged]), `${c.id}: the tagged person is held`);
    t.notOk(await c.one(`SELECT 1 AS x FROM ${S}.person WHERE uuid = ?`, [long]), `${c.id}: the long name is held, not cut`);
  }
  t.equal(await count(hub, 'person'), people0 + 9, 'the clinics\' people reach the upgraded parent');
  const st = await nodeStatus(a.node.db, a.config, a.node.reader);
  t.match(st.held.find((h) => h.table === 'person_name'), { peer: 'hub', column: 'given_name', here: 'VARCHAR(50) utf8mb3', there: 'VARCHAR(100) utf8mb3' },
    'clinic-a status names person_name.given_name');
  t.ok(st.held.some((h) => h.table === 'referral' && h.here === 'missing'), 'and the new table');
  t.comment(st.held.map((h) => h.message).join('\n'));

  // clinic a is upgraded a little later
  await upgrade(a);
  await registerPerson(a, 'y'.repeat(90), 'Kinyarwanda');
  await settle(all, kids);
  t.same((await nodeStatus(a.node.db, a.config, a.node.reader)).held, [], 'clinic-a holds nothing after its upgrade');
  t.equal((await a.one(`SELECT given_name FROM ${S}.person_name WHERE person_id = (SELECT person_id FROM ${S}.person WHERE uuid = ?)`, [long]))?.given_name, 'x'.repeat(80), 'clinic-a: the long name, whole');
  t.equal((await a.one(`SELECT ethnicity FROM ${S}.person WHERE uuid = ?`, [tagged]))?.ethnicity, 'Tutsi-Hutu-Twa', 'clinic-a: the tag');
  t.equal(await count(a, 'referral'), 1, 'clinic-a: the referral');

  // clinic b, not upgraded yet, exchanges once by USB
  await addLocation(b, 'ward-b-usb');
  await registerPerson(b, 'b-usb');
  await b.node.capture.caughtUp(60_000);
  await exportFile(b.node.usb(), { peer: 'hub', out: join(dir, 'b.usb') });
  await importFile(hub.node.usb(), { in: join(dir, 'b.usb'), reply: join(dir, 'hub.usb') });
  await importFile(b.node.usb(), { in: join(dir, 'hub.usb') });
  t.ok(await hub.one(`SELECT 1 AS x FROM ${S}.location WHERE name = 'ward-b-usb'`), 'the USB file brought b\'s location');
  t.equal(await count(b, 'location'), locations0 + 4, 'and b got the others by USB');
  t.notOk(await b.one(`SELECT 1 AS x FROM ${S}.person WHERE uuid = ?`, [tagged]), 'b still holds the tagged person');

  // clinic b is upgraded much later
  await upgrade(b);
  await settle(all, kids);
  await settle(all, kids);
  t.same((await nodeStatus(b.node.db, b.config, b.node.reader)).held, [], 'clinic-b holds nothing after its upgrade');
  for (const c of all) t.same((await nodeStatus(c.node.db, c.config, c.node.reader)).quarantine.count, 0, `${c.id}: nothing quarantined`);

  const dumps = await Promise.all(all.map((c) => dumpByIdentity(c.node.db, S, TABLES)));
  t.same(dumps[1], dumps[0], 'clinic-a = hub');
  t.same(dumps[2], dumps[0], 'clinic-b = hub');
  t.equal(await count(hub, 'person'), people0 + 11, 'every person everywhere');
  t.equal((await b.one(`SELECT ethnicity FROM ${S}.person WHERE uuid = ?`, [tagged]))?.ethnicity, 'Tutsi-Hutu-Twa', 'clinic-b: the tag');
  t.equal((await b.one(`SELECT ethnicity FROM ${S}.person WHERE uuid = ?`, [bare]))?.ethnicity, 'unknown', 'clinic-b: the default');
});
