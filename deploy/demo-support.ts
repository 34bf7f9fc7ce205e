// Pieces of the live demo (deploy/demo.ts): spokesync processes, cleanup that
// runs whatever happens, and OpenMRS-shaped SQL for registering patients.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { DAEMON_HEAP_FLAGS } from '../agent/cli/heap-flags.js';
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { conflictKey, conflictWriters, type ConflictRow } from '../apply/replay/conflict-rules.js';
import type { Version } from '../apply/replay/versions.js';

export const MAIN = fileURLToPath(new URL('../agent/main.js', import.meta.url));
export const INSTALL = 'apt-get update && apt-get install -y mariadb-server mariadb-client';

/** True when the MariaDB server binaries are there (installing them first when we are root). */
export function ensureMariadb(say: (line: string) => void): boolean {
  const present = (): boolean => ['/usr/sbin/mariadbd', '/usr/bin/mariadbd', '/usr/local/bin/mariadbd', '/usr/local/sbin/mariadbd'].some(existsSync);
  if (present()) return true;
  if (process.getuid?.() !== 0) {
    say('The demo needs the MariaDB server binaries (mariadbd). Install them with:');
    say(`  sudo sh -c '${INSTALL}'`);
    return false;
  }
  say('mariadbd not found: installing Debian\'s mariadb-server ...');
  const r = spawnSync('sh', ['-c', INSTALL], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0 && present();
}

/** Things to undo, last first; run() is safe to call twice and never throws. */
export class Cleanup {
  private readonly steps: Array<{ what: string; fn: () => Promise<void> }> = [];
  private running: Promise<void> | null = null;
  add(what: string, fn: () => Promise<void>): void {
    this.steps.push({ what, fn });
  }
  run(): Promise<void> {
    this.running ??= (async () => {
      for (const s of this.steps.reverse()) {
        await s.fn().catch((e: unknown) => process.stderr.write(`cleanup: ${s.what}: ${(e as Error).message}\n`));
      }
    })();
    return this.running;
  }
}

/** Stops a process: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcess(p: ChildProcess, graceMs = 8000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** `spokesync run` in the background, as deploy/spokesync.service runs it (the heap flags), its logs (JSON lines) into `logFile`. */
export function startDaemon(config: string, logFile: string): ChildProcess {
  const log = createWriteStream(logFile, { flags: 'a' });
  const p = spawn(process.execPath, [...DAEMON_HEAP_FLAGS, MAIN, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout?.pipe(log);
  p.stderr?.pipe(log);
  return p;
}

/** A one-shot spokesync command; rejects with its stderr when it fails. */
export function spokesync(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => {
      if (code === 0) resolve(out.trim());
      else reject(new Error(`spokesync ${args[0] ?? ''} exited with ${code ?? 'a signal'}:\n${err.trim().split('\n').slice(-8).join('\n')}`));
    });
  });
}

/** One conflict that happened: the row, the writes set against each other (oldest first), the nodes that recorded it. */
export interface Happened {
  readonly table: string;
  readonly identity: string;
  readonly writers: readonly Version[];
  readonly recordedAt: readonly string[];
}

/**
 * The conflicts that happened in the network, from the records of every node
 * (`spokesync conflicts --json`): each node that met a conflict records it, so
 * records naming the same row and the same writes are one conflict.
 */
export function conflictsHappened(records: ReadonlyArray<readonly [string, readonly ConflictRow[]]>): Happened[] {
  const byKey = new Map<string, { table: string; identity: string; writers: Version[]; recordedAt: string[] }>();
  for (const [node, rows] of records) {
    for (const r of rows) {
      const key = conflictKey(r);
      let h = byKey.get(key);
      if (!h) byKey.set(key, (h = { table: r.table, identity: r.identity, writers: conflictWriters(r), recordedAt: [] }));
      if (!h.recordedAt.includes(node)) h.recordedAt.push(node);
    }
  }
  return [...byKey.values()];
}

export async function tail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-lines).join('\n');
}

export interface Patient {
  readonly person: string;
  readonly given: string;
  readonly family: string;
  readonly gender: 'F' | 'M';
  readonly birthdate: string;
  readonly identifier: string;
  readonly weightKg: number;
}

export function patient(given: string, family: string, gender: 'F' | 'M', birthdate: string, identifier: string, weightKg: number): Patient {
  return { person: randomUUID(), given, family, gender, birthdate, identifier, weightKg };
}

/** Metadata every node needs; made on the parent before the children are cloned. */
export const METADATA_SQL = `
INSERT INTO visit_type (name, description, creator, date_created, uuid)
  VALUES ('Outpatient', 'Walk-in visit', 1, NOW(), '7b0f5697-27e3-40c4-8bae-f4049abfb4ed');
INSERT INTO encounter_type (name, description, creator, date_created, uuid)
  VALUES ('Registration', 'First contact', 1, NOW(), '55a0d3ea-a4d7-4e88-8f01-5aceb2d3c61b');`;

/** One registration as the application writes it: one transaction, nine rows over seven tables. */
/** A patient's registration in one transaction; `location`: the uuid of the location its identifier, visit, encounter and obs are at (default location 1). */
export function registrationSql(p: Patient, site: string, location?: string): { sql: string; params: unknown[] } {
  const sql = `
SET @loc = COALESCE((SELECT location_id FROM location WHERE uuid = ?), 1);
START TRANSACTION;
INSERT INTO person (gender, birthdate, creator, date_created, uuid) VALUES (?, ?, 1, NOW(), ?);
SET @p = LAST_INSERT_ID();
INSERT INTO person_name (preferred, person_id, given_name, family_name, creator, date_created, uuid)
  VALUES (1, @p, ?, ?, 1, NOW(), UUID());
INSERT INTO person_address (person_id, preferred, address1, city_village, country, creator, date_created, uuid)
  VALUES (@p, 1, ?, ?, 'Rwanda', 1, NOW(), UUID());
INSERT INTO patient (patient_id, creator, date_created) VALUES (@p, 1, NOW());
INSERT INTO patient_identifier (patient_id, identifier, identifier_type, preferred, location_id, creator, date_created, uuid)
  VALUES (@p, ?, 1, 1, @loc, 1, NOW(), UUID());
INSERT INTO visit (patient_id, visit_type_id, date_started, location_id, creator, date_created, uuid)
  SELECT @p, visit_type_id, NOW(), @loc, 1, NOW(), UUID() FROM visit_type WHERE name = 'Outpatient';
SET @v = LAST_INSERT_ID();
INSERT INTO encounter (encounter_type, patient_id, location_id, encounter_datetime, creator, date_created, uuid, visit_id)
  SELECT encounter_type_id, @p, @loc, NOW(), 1, NOW(), UUID(), @v FROM encounter_type WHERE name = 'Registration';
INSERT INTO obs (person_id, concept_id, encounter_id, obs_datetime, location_id, value_numeric, creator, date_created, uuid)
  VALUES (@p, 1, LAST_INSERT_ID(), NOW(), @loc, ?, 1, NOW(), UUID());
COMMIT;`;
  return { sql, params: [location ?? null, p.gender, p.birthdate, p.person, p.given, p.family, `${site} health centre`, site, p.identifier, p.weightKg] };
}
