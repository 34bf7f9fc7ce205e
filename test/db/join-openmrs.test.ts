// `spokesync join` on two OpenMRS databases built from the same base, each with
// its own patients (registrations: person, names, addresses, patient,
// identifiers, visits, encounters, obs), one person present at both with other
// content and one location present at both alike. After the join, verify exits
// 0, both hold every patient, local integer ids differ between the two while
// foreign keys name the same rows, the conflict is recorded, nothing the parent
// journaled before the join comes down again, and new writes at both sides
// sync as usual. A second join is refused.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../agent/config/types.js';
import { SpokesyncNode } from '../../agent/node.js';
import { openDb, type Db } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { dumpByIdentity, dumpCounts } from '../../deploy/sandbox/identity-dump.js';
import { freePort, loadOpenmrs, startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { METADATA_SQL, patient, registrationSql } from '../../deploy/demo-support.js';
import { spokesync } from '../helpers/cli.js';
import { configText } from '../helpers/sync-net.js';
import type { JoinJson } from '../../agent/join/join-report.js';

const TABLES = ['person', 'person_name', 'person_address', 'patient', 'patient_identifier', 'visit', 'encounter', 'obs', 'location'];
const TOKEN = 'site-join-token-0123456789';
const BOTH = '8d6c993e-c2cc-11de-8d13-0010c6dffd0f';
const CLINIC = 'c1c1c1c1-0000-4000-8000-00000000c11c';
const ANNEX = 'a0a0a0a0-0000-4000-8000-00000000a11e';

function configOf(s: TestServer, id: string, over: Partial<Config>): Config {
  return {
    file: '/dev/null',
    node: { id },
    database: { host: s.host, port: s.port, user: 'root', schema: 'openmrs', stateSchema: 'spokesync', serverId: s.serverId + 1 },
    tables: { include: TABLES, exclude: [], keys: {}, direction: { location: 'down' } },
    children: [],
    capture: { memoryBytes: 32 << 20 },
    log: { level: 'info' },
    ...over,
  };
}

async function register(s: TestServer, site: string, n: number): Promise<string[]> {
  const people: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = patient(`${site}-${i}`, 'Uwase', i % 2 ? 'M' : 'F', '1990-05-0' + String(1 + (i % 9)), `${site.toUpperCase()}-${i}`, 50 + i);
    const r = registrationSql(p, site);
    await s.query(`USE openmrs; ${r.sql}`, r.params);
    people.push(p.person);
  }
  return people;
}

const one = async (db: Db, sql: string, params: unknown[] = []): Promise<string | null> => {
  const [r] = await db.query<{ v: string | number | null }>(sql, params);
  return r?.v === undefined || r.v === null ? null : String(r.v);
};

void t.test('join: two OpenMRS sites with their own patients end identical and sync on', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-join-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [ps, ss] = await Promise.all([startServer(), startServer()]);
  t.teardown(() => ps.stop());
  t.teardown(() => ss.stop());
  await Promise.all([loadOpenmrs(ps), loadOpenmrs(ss)]);
  // the same base: metadata every node has, and a location made alike at both
  const clinic = `INSERT INTO location (name, description, creator, date_created, uuid) VALUES ('Join Clinic', 'made at both', 1, '2024-01-02 03:04:05', '${CLINIC}');`;
  for (const s of [ps, ss]) await s.query(`USE openmrs; ${METADATA_SQL} ${clinic}`);

  // the site's own patients, and one person also at the parent with other content
  const sitePeople = await register(ss, 'site', 4);
  await ss.query(`USE openmrs; INSERT INTO person (gender, birthdate, creator, date_created, uuid) VALUES ('M', '1981-02-02', 1, '2024-02-02 00:00:00', ?)`, [BOTH]);
  // the parent: rows from before its daemon, then the daemon, then rows it journals
  const parentEarly = await register(ps, 'hub', 3);
  await ps.query(`USE openmrs; INSERT INTO person (gender, birthdate, creator, date_created, uuid) VALUES ('F', '1980-01-01', 1, '2024-01-01 00:00:00', ?);
    INSERT INTO location (name, creator, date_created, uuid, parent_location) VALUES ('Parent Annex', 1, '2024-01-03 00:00:00', ?, 1)`, [BOTH, ANNEX]);
  const parentCfg = configOf(ps, 'hub', {
    listen: { host: '127.0.0.1', port: await freePort(), maxBodyBytes: 8 << 20, maxInflatedBytes: 64 << 20 },
    children: [{ id: 'site', token: TOKEN }],
  });
  let hub: SpokesyncNode | null = await SpokesyncNode.open(parentCfg, silentLogger, { backoffBaseMs: 20, backoffMaxMs: 50 });
  t.teardown(() => hub?.close());
  await hub.startCapture();
  await hub.startServer();
  const parentLate = await register(ps, 'hub2', 2);
  await hub.capture.caughtUp(60_000);
  const journaledBefore = (await hub.db.query<{ change_id: string }>('SELECT change_id FROM spokesync.journal')).map((r) => r.change_id);
  t.ok(journaledBefore.length >= 2, 'the parent journaled registrations before the join');

  const siteCfg = configOf(ss, 'site', {
    parent: { url: `http://127.0.0.1:${parentCfg.listen!.port}`, token: TOKEN, interval: 1000, timeout: 20_000, maxTries: 3, compression: 'gzip', batch: { records: 50, bytes: 256 * 1024 } },
  });
  const siteFile = join(dir, 'site.yaml');
  await writeFile(siteFile, configText(siteCfg));
  const siteDb = openDb({ host: ss.host, port: ss.port, user: 'root' });
  t.teardown(() => siteDb.close());
  const clinicIdBefore = await one(siteDb, 'SELECT location_id AS v FROM openmrs.location WHERE uuid = ?', [CLINIC]);

  const joined = await spokesync(['join', '--config', siteFile, '--json']);
  t.equal(joined.code, 0, joined.out + joined.err);
  const j = JSON.parse(joined.out) as JoinJson;
  t.equal(j.identical, true, 'identical after the first sync');
  const row = (table: string) => j.tables.find((x) => x.table === table)!;
  t.same([row('person').down, row('person').up], [6, 4], 'person: the parent\'s six come down (one over the site\'s), the site\'s four go up');
  t.same(row('person').conflicts, { parentKept: 1, hereKept: 0 }, 'the person at both: the parent\'s version kept');
  t.same([row('obs').down, row('obs').up], [5, 4]);
  t.same([row('location').down, row('location').up], [1, 0], 'the annex comes down; the clinic is alike at both');
  t.equal(j.quarantined, 0);

  const verify = await spokesync(['verify', '--config', siteFile]);
  t.equal(verify.code, 0, verify.out + verify.err);

  const [dh, ds] = [await dumpByIdentity(hub.db, 'openmrs', TABLES), await dumpByIdentity(siteDb, 'openmrs', TABLES)];
  t.same(dumpCounts(ds), dumpCounts(dh), 'the same row counts');
  t.ok(JSON.stringify(dh) === JSON.stringify(ds), 'the same rows by identity, foreign keys naming the same rows');
  for (const p of [...sitePeople, ...parentEarly, ...parentLate]) t.ok(ds.patient?.[p] && dh.patient?.[p], `patient ${p} at both`);

  // local ids: each side keeps its own
  const idOf = (db: Db, uuid: string): Promise<string | null> => one(db, 'SELECT person_id AS v FROM openmrs.person WHERE uuid = ?', [uuid]);
  t.not(await idOf(hub.db, sitePeople[0]!), await idOf(siteDb, sitePeople[0]!), 'a site patient has another person_id at the parent');
  t.not(await idOf(hub.db, parentEarly[0]!), await idOf(siteDb, parentEarly[0]!), 'a parent patient has another person_id at the site');
  const obsOwner = 'SELECT p.uuid AS v FROM openmrs.obs o JOIN openmrs.person p ON p.person_id = o.person_id JOIN openmrs.encounter e ON e.encounter_id = o.encounter_id ' +
    'JOIN openmrs.patient pa ON pa.patient_id = e.patient_id JOIN openmrs.person q ON q.person_id = pa.patient_id WHERE q.uuid = ?';
  t.equal(await one(hub.db, obsOwner, [sitePeople[1]!]), sitePeople[1], 'at the parent, the site patient\'s obs point at that patient');
  t.equal(await one(siteDb, obsOwner, [parentEarly[1]!]), parentEarly[1], 'at the site, the parent patient\'s obs point at that patient');
  t.equal(await one(siteDb, 'SELECT location_id AS v FROM openmrs.location WHERE uuid = ?', [CLINIC]), clinicIdBefore, 'the location alike at both is untouched');

  // the conflict, recorded with both versions; the parent's version at both
  const conflicts = await siteDb.query<{ tbl: string; identity: string; kind: string; outcome: string }>('SELECT tbl, identity, kind, outcome FROM spokesync.conflicts');
  t.same(conflicts.map((c) => [c.tbl, c.identity, c.kind]), [['person', BOTH, 'insert']], 'one conflict, at the site');
  t.match(conflicts[0]?.outcome, /remote wins: .*birthdate/);
  t.equal(ds.person?.[BOTH]?.gender, 'F');
  t.equal(Number(await one(hub.db, 'SELECT COUNT(*) AS v FROM spokesync.conflicts')), 0, 'none at the parent');
  t.equal(Number(await one(siteDb, 'SELECT COUNT(*) AS v FROM spokesync.quarantine')), 0);
  t.equal(Number(await one(hub.db, 'SELECT COUNT(*) AS v FROM spokesync.quarantine')), 0);
  const siteLedger = new Set((await siteDb.query<{ change_id: string }>('SELECT change_id FROM spokesync.ledger')).map((r) => r.change_id));
  t.same(journaledBefore.filter((id) => siteLedger.has(id)), [], 'nothing the parent journaled before the join came down again');

  // new writes at both sides sync as usual
  const after = [...await register(ps, 'hub3', 1), ...await register(ss, 'site2', 1)];
  await ss.query('USE openmrs; UPDATE person SET birthdate = \'1970-07-07\' WHERE uuid = ?', [sitePeople[2]!]);
  await hub.capture.caughtUp(60_000);
  const synced = await spokesync(['sync', '--config', siteFile]);
  t.equal(synced.code, 0, synced.out + synced.err);
  await hub.capture.caughtUp(60_000);
  const [eh, es] = [await dumpByIdentity(hub.db, 'openmrs', TABLES), await dumpByIdentity(siteDb, 'openmrs', TABLES)];
  t.ok(JSON.stringify(eh) === JSON.stringify(es), 'identical after writes at both and a sync');
  for (const p of after) t.ok(es.patient?.[p] && eh.patient?.[p], `new patient ${p} at both`);
  t.equal(eh.person?.[sitePeople[2]!]?.birthdate, '1970-07-07', 'an edit at the site reached the parent');
  const again = await spokesync(['verify', '--config', siteFile]);
  t.equal(again.code, 0, again.out + again.err);

  const twice = await spokesync(['join', '--config', siteFile]);
  t.equal(twice.code, 1);
  t.match(twice.err, /joined hub already[\s\S]*SPOKESYNC_E_JOIN/);
  await hub.close();
  hub = null;
});
