#!/usr/bin/env node
// `npm run demo`: spokesync live on one machine. A parent (kigali) and two
// children (rwinkwavu, butaro), each with its own throwaway MariaDB server and
// the OpenMRS 2.6.4 schema. The children are provisioned from the parent — one
// over HTTP, one from a snapshot file — and then run `spokesync run` like the
// parent. Patients are registered on both children, the parent edits a record,
// and both children edit the same person at the same moment (a conflict).
// The demo shows the changes arriving, checks that every node ends with the
// same rows (compared by identity, local ids aside), and removes everything it
// made, also on failure or Ctrl-C. Exit 0 when all nodes converge.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Connection } from 'mysql2/promise';
import { openDb, type Db } from '../apply/core/db.js';
import { dumpByIdentity, dumpCounts, type Dump } from './sandbox/identity-dump.js';
import { freePort, loadOpenmrs, startServer, type TestServer } from './sandbox/mariadb.js';
import { until } from './sandbox/until.js';
import type { ConflictRow } from '../apply/replay/conflict-rules.js';
import {
  Cleanup, METADATA_SQL, conflictsHappened, ensureMariadb, patient, registrationSql, spokesync, startDaemon, stopProcess, tail, type Patient,
} from './demo-support.js';

/** The synced tables: registration data. Metadata (concepts, types, users) is the same everywhere from the clone. */
const TABLES = ['person', 'person_name', 'person_address', 'person_attribute', 'patient', 'patient_identifier', 'visit', 'encounter', 'obs'];
const NAMES = ['kigali', 'rwinkwavu', 'butaro'] as const;
type Name = (typeof NAMES)[number];

interface Site {
  readonly name: Name;
  readonly server: TestServer;
  readonly sql: Connection;
  readonly db: Db;
  configFile: string;
  logFile: string;
}

function config(site: Site, serverId: number, role: { listen?: number; children?: Array<{ id: string; token: string }>; parent?: { url: string; token: string } }): string {
  const lines = [
    `node: { id: ${site.name} }`,
    'database:',
    `  host: 127.0.0.1`,
    `  port: ${site.server.port}`,
    '  user: root',
    '  schema: openmrs',
    `  serverId: ${serverId}`,
    'tables:',
    `  include: [${TABLES.join(', ')}]`,
  ];
  if (role.listen !== undefined) lines.push(`listen: { host: 127.0.0.1, port: ${role.listen} }`);
  if (role.children) lines.push('children:', ...role.children.map((c) => `  - { id: ${c.id}, token: "${c.token}" }`));
  if (role.parent) {
    lines.push('parent:', `  url: ${role.parent.url}`, `  token: "${role.parent.token}"`, '  interval: 1s', '  timeout: 10s', '  batch: { records: 100, bytes: 64KiB }');
  }
  lines.push('log: { level: info }');
  return lines.join('\n') + '\n';
}

async function one<T>(site: Site, sql: string, params: unknown[] = []): Promise<T | undefined> {
  const [rows] = await site.sql.query(sql, params);
  return (rows as T[])[0];
}

async function register(site: Site, p: Patient): Promise<void> {
  const { sql, params } = registrationSql(p, site.name);
  await site.sql.query(sql, params);
}

const same = (a: Dump, b: Dump): boolean => JSON.stringify(a) === JSON.stringify(b);

export async function demo(print: (line: string) => void = (l) => void process.stdout.write(l + '\n')): Promise<number> {
  const t0 = Date.now();
  const say = (line: string): void => print(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}`);
  print('spokesync demo: a parent (kigali) and two children (rwinkwavu, butaro), OpenMRS on MariaDB, all on this machine');
  if (!ensureMariadb(print)) return 1;

  const cleanup = new Cleanup();
  const onSignal = (sig: NodeJS.Signals): void => {
    print(`${sig}: stopping the demo and cleaning up ...`);
    void cleanup.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const sites = {} as Record<Name, Site>;
  try {
    const dir = await mkdtemp(join(tmpdir(), 'spokesync-demo-'));
    cleanup.add('remove the demo directory', () => rm(dir, { recursive: true, force: true }));

    say('starting three MariaDB servers (throwaway datadirs, binlog on) ...');
    for (const name of NAMES) {
      const server = await startServer();
      cleanup.add(`stop the ${name} server`, () => server.stop());
      if (name === 'kigali') await loadOpenmrs(server);
      else await server.query('CREATE DATABASE openmrs');
      const sql = await server.connect('openmrs');
      const db = openDb({ host: server.host, port: server.port, user: 'root' });
      cleanup.add(`close ${name}`, () => db.close());
      sites[name] = { name, server, sql, db, configFile: join(dir, `${name}.yaml`), logFile: join(dir, `${name}.log`) };
    }
    const { kigali, rwinkwavu, butaro } = sites;
    say(`kigali: OpenMRS 2.6.4 loaded on port ${kigali.server.port}; rwinkwavu (${rwinkwavu.server.port}) and butaro (${butaro.server.port}) are empty`);

    await kigali.sql.query(METADATA_SQL);
    const jean = patient('Jean', 'Uwimana', 'M', '1984-03-02', 'KG-1001', 71.5);
    const marie = patient('Marie', 'Mukamana', 'F', '1991-11-20', 'KG-1002', 58.0);
    for (const p of [jean, marie]) await register(kigali, p);
    say('kigali: registered Jean Uwimana and Marie Mukamana');

    const token = (): string => randomBytes(18).toString('base64url');
    const tokens = { rwinkwavu: token(), butaro: token() };
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    await writeFile(kigali.configFile, config(kigali, kigali.server.serverId + 100, {
      listen: port, children: [{ id: 'rwinkwavu', token: tokens.rwinkwavu }, { id: 'butaro', token: tokens.butaro }],
    }));
    await writeFile(rwinkwavu.configFile, config(rwinkwavu, rwinkwavu.server.serverId + 100, { parent: { url, token: tokens.rwinkwavu } }));
    await writeFile(butaro.configFile, config(butaro, butaro.server.serverId + 100, { parent: { url, token: tokens.butaro } }));

    const daemons: Array<{ site: Site; stop: () => Promise<void> }> = [];
    const run = (site: Site): void => {
      const p = startDaemon(site.configFile, site.logFile);
      const stop = (): Promise<void> => stopProcess(p);
      daemons.push({ site, stop });
      cleanup.add(`stop the ${site.name} daemon`, stop);
      p.once('exit', (code, signal) => {
        if (code !== 0 && signal === null) say(`${site.name}: spokesync run exited with ${code ?? '?'} (log: ${site.logFile})`);
      });
    };
    run(kigali);
    await until('kigali to serve', async () => (await fetch(`${url}/v1/health`).then((r) => r.ok, () => false)) || undefined, 30_000);
    say(`kigali: \`spokesync run\` is capturing and serving its children on ${url}`);

    say('rwinkwavu: `spokesync clone` (over HTTP from kigali) ...');
    say(`rwinkwavu: ${await spokesync(['clone', '--config', rwinkwavu.configFile])}`);
    const file = join(dir, 'butaro.snapshot');
    say('kigali: `spokesync snapshot --peer butaro --out butaro.snapshot` (for a site without a link) ...');
    say(`kigali: ${await spokesync(['snapshot', '--config', kigali.configFile, '--peer', 'butaro', '--out', file])}`);
    say(`butaro: ${await spokesync(['clone', '--config', butaro.configFile, '--from', file])}`);
    run(rwinkwavu);
    run(butaro);
    say('rwinkwavu and butaro: `spokesync run` started (they sync with kigali every second)');

    // Changes on every node; the same person edited on both children at the same moment.
    const amina = patient('Amina', 'Uwase', 'F', '1999-07-14', 'RW-2001', 54.2);
    const eric = patient('Eric', 'Habimana', 'M', '1978-01-30', 'BU-3001', 80.1);
    const started = Date.now();
    await Promise.all([
      register(rwinkwavu, amina),
      register(butaro, eric),
      kigali.sql.query("UPDATE person SET birthdate = '1991-11-21', date_changed = NOW(), changed_by = 1 WHERE uuid = ?", [marie.person]),
      rwinkwavu.sql.query(
        "UPDATE person_name n JOIN person p USING (person_id) SET n.family_name = 'Uwimana-Habimana', n.date_changed = NOW(), n.changed_by = 1 WHERE p.uuid = ?",
        [jean.person],
      ),
      butaro.sql.query(
        "UPDATE person_name n JOIN person p USING (person_id) SET n.family_name = 'Uwimana-Mukamana', n.date_changed = NOW(), n.changed_by = 1 WHERE p.uuid = ?",
        [jean.person],
      ),
    ]);
    say('changes: Amina Uwase registered at rwinkwavu, Eric Habimana at butaro; kigali corrected Marie\'s birthdate;');
    say('         Jean Uwimana\'s family name edited at rwinkwavu (Uwimana-Habimana) and butaro (Uwimana-Mukamana) at once');

    const arrive = async (what: string, at: Site, check: () => Promise<unknown>): Promise<void> => {
      await until(`${what} at ${at.name}`, async () => ((await check()) ? true : undefined));
      say(`  ✓ ${what} reached ${at.name} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    };
    const hasPerson = (s: Site, p: Patient) => () => one(s, 'SELECT 1 AS x FROM person WHERE uuid = ?', [p.person]);
    await Promise.all([
      arrive('Amina (rwinkwavu)', kigali, hasPerson(kigali, amina)),
      arrive('Amina (rwinkwavu)', butaro, hasPerson(butaro, amina)),
      arrive('Eric (butaro)', kigali, hasPerson(kigali, eric)),
      arrive('Eric (butaro)', rwinkwavu, hasPerson(rwinkwavu, eric)),
      ...[rwinkwavu, butaro].map((s) => arrive("Marie's birthdate (kigali)", s, async () =>
        (await one<{ b: string }>(s, 'SELECT birthdate AS b FROM person WHERE uuid = ?', [marie.person]))?.b?.startsWith('1991-11-21'))),
    ]);

    say('waiting until every node holds the same rows ...');
    const dumps = await until('the nodes to converge', async () => {
      const d = await Promise.all(NAMES.map((n) => dumpByIdentity(sites[n].db, 'openmrs', TABLES)));
      return same(d[0]!, d[1]!) && same(d[0]!, d[2]!) ? d : undefined;
    }, 60_000);
    const family = await Promise.all(NAMES.map(async (n) => (await one<{ f: string }>(sites[n],
      'SELECT family_name AS f FROM person_name n JOIN person p USING (person_id) WHERE p.uuid = ?', [jean.person]))?.f));
    // every node that met the conflict records it; records of the same two writes are one conflict
    const records = await Promise.all(NAMES.map(async (n) =>
      [n, JSON.parse(await spokesync(['conflicts', '--config', sites[n].configFile, '--json'])) as ConflictRow[]] as const));
    const happened = conflictsHappened(records);
    const writes = happened[0]?.writers ?? [];
    const newest = writes[writes.length - 1]?.node;
    say(`conflict: every node now calls Jean "${family[0] ?? '?'}" (last writer wins, by hybrid clock then node id):`);
    say(`          ${happened.length} conflict${happened.length === 1 ? '' : 's'} happened` +
      (happened.length === 1 ? `: ${happened[0]!.table} of Jean, ${writes.map((v) => v.node).join("'s edit against ")}'s; ${newest ?? '?'}'s is newer and won` : ''));
    say(`          recorded by each node that met it: ${records.map(([n, r]) => `${n} ${r.length}`).join(', ')} (see \`spokesync conflicts\`)`);
    const expected = newest === 'rwinkwavu' ? 'Uwimana-Habimana' : 'Uwimana-Mukamana';
    if (new Set(family).size !== 1 || happened.length !== 1 || writes.map((v) => v.node).sort().join() !== 'butaro,rwinkwavu' || family[0] !== expected) {
      throw new Error(`the conflict was not resolved the same way everywhere, or not recorded as the one that happened: ${JSON.stringify(happened)}`);
    }
    const counts = dumpCounts(dumps[0]!);
    say(`✓ all three nodes hold the same rows: ${Object.entries(counts).map(([t, n]) => `${t} ${n}`).join(', ')}`);
    say('stopping the daemons (SIGTERM) ...');
    for (const d of daemons.reverse()) await d.stop();
    say(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } catch (e) {
    say(`demo failed: ${(e as Error).message}`);
    for (const s of Object.values(sites)) {
      const last = await tail(s.logFile, 6);
      if (last) print(`--- last lines of the ${s.name} daemon log:\n${last}`);
    }
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup.run();
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await demo();
}
