// Provisioning throughput: snapshot of an OpenMRS database with a generated
// clinical load (people, names, observations) to a sealed file, as `spokesync
// snapshot` writes it, then clone of that file into an empty server, as `clone
// --from` reads it (pass one authenticates the whole file, pass two loads it).
// Figures: rows, uncompressed MB, MB/s each way, compression ratio, the time of
// pass one alone, and the peak RSS of this process (memory stays flat).
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { cloneSnapshot } from '../../agent/provision/load.js';
import type { Progress } from '../../agent/provision/progress.js';
import { openSnapshotFile, verifySnapshotFile } from '../../agent/provision/sealed.js';
import { writeSnapshot, type SnapshotResult } from '../../agent/provision/snapshot-writer.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';
import { loadOpenmrs, startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { plainRails } from '../../agent/provision/rails.js';

const PEOPLE = Number(process.env.BENCH_PEOPLE ?? 50_000);
const OBS = Number(process.env.BENCH_OBS ?? 250_000);
const TOKEN = 'bench-token-0123456789';
const quiet = (): Progress => ({ table: () => undefined, add: () => undefined, done: () => undefined });

/** People and observations of the benchmark's database (BENCH_PEOPLE, BENCH_OBS; 350,000 rows in all by default). */
export const BENCH_SIZE = { people: PEOPLE, obs: OBS };

/** The benchmark's OpenMRS database: the schema and a clinical load of people with their names and observations. */
export async function loadBenchData(server: TestServer, size: { people: number; obs: number } = BENCH_SIZE): Promise<void> {
  await loadOpenmrs(server);
  await server.query(`USE openmrs; SET foreign_key_checks = 0;
    INSERT INTO person (gender, birthdate, creator, date_created, uuid)
      SELECT IF(seq % 2, 'F', 'M'), DATE('1950-01-01') + INTERVAL seq % 20000 DAY, 1, NOW(), UUID() FROM seq_1_to_${size.people};
    INSERT INTO person_name (preferred, person_id, given_name, family_name, creator, date_created, uuid)
      SELECT 1, person_id, CONCAT('Given', person_id), CONCAT('Family', person_id % 997), 1, NOW(), UUID() FROM person;
    INSERT INTO obs (person_id, concept_id, obs_datetime, location_id, value_numeric, value_text, comments, creator, date_created, uuid)
      SELECT 2 + seq % ${size.people}, 1, NOW() - INTERVAL seq MINUTE, 1, seq / 7, IF(seq % 5 = 0, CONCAT('text value ', seq), NULL),
             IF(seq % 11 = 0, REPEAT('clinical note ', 8), NULL), 1, NOW(), UUID() FROM seq_1_to_${size.obs};`);
}

/** The bench data of `src` (openmrs) as a snapshot file for the child 'leaf'. */
export async function benchSnapshot(src: TestServer, sdb: Db, file: string): Promise<SnapshotResult> {
  await ensureStateSchema(sdb, 'spokesync');
  return writeSnapshot({
    settings: { host: src.host, port: src.port, user: 'root' }, db: sdb, schema: 'openmrs', stateSchema: 'spokesync',
    node: 'hub', log: silentLogger, progress: quiet, waitForCapture: async () => undefined, sealWith: TOKEN, rails: plainRails('leaf'),
  }, 'leaf', createWriteStream(file));
}

/** The snapshot file loaded as the child 'leaf'. */
export function benchClone(ddb: Db, file: string): ReturnType<typeof cloneSnapshot> {
  return cloneSnapshot(
    { db: ddb, schema: 'openmrs', stateSchema: 'spokesync', node: 'leaf', log: silentLogger, force: false, progress: quiet },
    () => openSnapshotFile(file, { node: 'leaf', token: TOKEN }),
  );
}

export async function bench(log: (line: string) => void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-bench-prov-'));
  const src = await startServer();
  const dst = await startServer();
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 50);
  try {
    await loadBenchData(src);
    const sdb = openDb({ host: src.host, port: src.port, user: 'root' });
    const ddb = openDb({ host: dst.host, port: dst.port, user: 'root' });
    try {
      const file = join(dir, 'bench.snapshot');
      const snap = await benchSnapshot(src, sdb, file);
      const size = (await stat(file)).size;
      const mb = snap.bytes / 1e6;
      log(`snapshot: ${snap.rows} rows in ${snap.tables} tables, ${mb.toFixed(1)} MB uncompressed → ${(size / 1e6).toFixed(1)} MB file ` +
        `(${(snap.bytes / size).toFixed(1)}x) in ${snap.seconds.toFixed(2)} s = ${(mb / snap.seconds).toFixed(1)} MB/s, ` +
        `${Math.round(snap.rows / snap.seconds)} rows/s`);
      const peakSnap = peak;
      const as = { node: 'leaf', token: TOKEN };
      const verifyStarted = Date.now();
      await verifySnapshotFile(file, as);
      const verifySeconds = (Date.now() - verifyStarted) / 1000;
      const clone = await benchClone(ddb, file);
      log(`clone:    ${clone.rows} rows, ${(clone.bytes / 1e6).toFixed(1)} MB in ${clone.seconds.toFixed(2)} s = ` +
        `${(clone.bytes / 1e6 / clone.seconds).toFixed(1)} MB/s, ${Math.round(clone.rows / clone.seconds)} rows/s ` +
        `(${(clone.seconds / snap.seconds).toFixed(1)}x the snapshot time; pass one, authenticating the ` +
        `${(size / 1e6).toFixed(1)} MB file, takes ${verifySeconds.toFixed(2)} s of it)`);
      log(`peak RSS of this process: ${(peakSnap / 1e6).toFixed(0)} MB during the snapshot, ${(peak / 1e6).toFixed(0)} MB overall ` +
        `(data: ${mb.toFixed(0)} MB)`);
    } finally {
      await sdb.close();
      await ddb.close();
    }
  } finally {
    clearInterval(sampler);
    await src.stop();
    await dst.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
