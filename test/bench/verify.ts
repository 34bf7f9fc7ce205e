// verify on the snapshot benchmark's data (provision.ts: an OpenMRS database of
// people, their names and observations; 350,000 rows by default), then on
// 1,000,000 rows: a parent and a child cloned from it, the child's verify over
// HTTP when the two agree and when ten rows differ. Figures: bytes moved,
// seconds, rounds, and the bytes moved against the bytes of the synced rows' values.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, qid } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import type { Config } from '../../agent/config/types.js';
import { SpokesyncNode } from '../../agent/node.js';
import { compareWithParent } from '../../agent/verify/verify-session.js';
import { freePort, startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { BENCH_SIZE, benchClone, benchSnapshot, loadBenchData } from './provision.js';

const TABLES = ['person', 'person_name', 'person_address', 'person_attribute', 'patient', 'patient_identifier', 'visit', 'encounter', 'obs'];
const TOKEN = 'bench-verify-token-0123456789';

function config(id: string, server: TestServer, role: Partial<Pick<Config, 'listen' | 'children' | 'parent'>>): Config {
  return {
    file: '/dev/null', node: { id },
    database: { host: server.host, port: server.port, user: 'root', schema: 'openmrs', stateSchema: 'spokesync', serverId: server.serverId + 1 },
    tables: { include: TABLES, exclude: [], keys: {}, direction: {} },
    children: [], capture: { memoryBytes: 32 << 20 }, log: { level: 'warn' },
    ...role,
  };
}

/** Bytes of the values of the synced rows (what shipping them whole would move at least). */
async function dataBytes(server: TestServer): Promise<number> {
  const db = openDb({ host: server.host, port: server.port, user: 'root' });
  try {
    let total = 0;
    for (const t of TABLES) {
      const cols = await db.query<{ c: string }>(
        'SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', ['openmrs', t]);
      const sum = cols.map((c) => `COALESCE(LENGTH(${qid(c.c)}), 0)`).join(' + ');
      const [r] = await db.query<{ n: string | null }>(`SELECT SUM(${sum}) AS n FROM openmrs.${qid(t)}`);
      total += Number(r?.n ?? 0);
    }
    return total;
  } finally {
    await db.close();
  }
}

const MILLION = { people: 200_000, obs: 600_000 };

export async function bench(log: (line: string) => void): Promise<void> {
  await benchAt(BENCH_SIZE, log);
  if (BENCH_SIZE.people * 2 + BENCH_SIZE.obs < MILLION.people * 2 + MILLION.obs) await benchAt(MILLION, log);
}

async function benchAt(size: { people: number; obs: number }, log: (line: string) => void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-bench-verify-'));
  const src = await startServer();
  const dst = await startServer();
  const nodes: SpokesyncNode[] = [];
  try {
    await loadBenchData(src, size);
    const sdb = openDb({ host: src.host, port: src.port, user: 'root' });
    const ddb = openDb({ host: dst.host, port: dst.port, user: 'root' });
    try {
      const file = join(dir, 'bench.snapshot');
      await benchSnapshot(src, sdb, file);
      await benchClone(ddb, file);
    } finally {
      await sdb.close();
      await ddb.close();
    }
    const port = await freePort();
    const hub = await SpokesyncNode.open(config('hub', src, {
      listen: { host: '127.0.0.1', port, maxBodyBytes: 8 << 20, maxInflatedBytes: 8 << 20 }, children: [{ id: 'leaf', token: TOKEN }],
    }), silentLogger);
    nodes.push(hub);
    await hub.startCapture();
    await hub.startServer();
    const leaf = await SpokesyncNode.open(config('leaf', dst, {
      parent: { url: `http://127.0.0.1:${port}`, token: TOKEN, interval: 60_000, timeout: 60_000, maxTries: 1, compression: 'gzip', batch: { records: 200, bytes: 65536 } },
    }), silentLogger);
    nodes.push(leaf);
    await leaf.startCapture();
    const session = { node: leaf, ownCapture: true, caughtUp: () => leaf.capture.caughtUp(60_000) };
    const bytes = await dataBytes(src);

    const agree = await compareWithParent(session, {});
    const rows = agree.comparison.tables.reduce((n, t) => n + t.rowsHere, 0);
    const moved = agree.traffic.sent + agree.traffic.received;
    log(`${rows} rows in ${TABLES.length} synced tables, ${(bytes / 1e6).toFixed(1)} MB of values`);
    log(`sides agree:  ${moved} bytes moved (sent ${agree.traffic.sent}, received ${agree.traffic.received}) in ` +
      `${agree.comparison.rounds} rounds, ${agree.seconds.toFixed(2)} s; ${(100 * moved / bytes).toFixed(4)}% of the data's bytes ` +
      `(identical: ${agree.comparison.differing.length === 0})`);

    // ten rows made to differ at the child, behind capture's back
    await dst.query(`USE openmrs; SET sql_log_bin = 0;
      UPDATE obs SET value_numeric = value_numeric + 1 ORDER BY obs_id LIMIT 3;
      SET @o = (SELECT obs_id FROM obs ORDER BY obs_id LIMIT 1 OFFSET 10);
      UPDATE obs SET comments = 'changed' WHERE obs_id = @o;
      UPDATE person_name SET given_name = 'Changed' ORDER BY person_name_id DESC LIMIT 2;
      DELETE FROM obs ORDER BY obs_id DESC LIMIT 2;
      INSERT INTO person (gender, creator, date_created, uuid) VALUES ('F', 1, NOW(), UUID()), ('M', 1, NOW(), UUID());`);
    const differ = await compareWithParent(session, {});
    const moved10 = differ.traffic.sent + differ.traffic.received;
    log(`10 rows differ: ${moved10} bytes moved (sent ${differ.traffic.sent}, received ${differ.traffic.received}) in ` +
      `${differ.comparison.rounds} rounds, ${differ.seconds.toFixed(2)} s; ${(100 * moved10 / bytes).toFixed(4)}% of the data's bytes; ` +
      `${differ.comparison.differing.length} differing rows found`);
    if (differ.comparison.differing.length !== 10) throw new Error(`verify found ${differ.comparison.differing.length} differing rows, not 10`);
  } finally {
    for (const n of nodes.reverse()) await n.close().catch(() => undefined);
    await src.stop();
    await dst.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
