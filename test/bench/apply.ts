// Apply benchmark: 50,000 rows written on server A in 500 transactions of 100
// rows, captured by the real capture into change sets; then, in the same run,
// (1) spokesync apply on a fresh server B: wire batches of 200 change sets
//     decoded and applied, one change set (100 rows) per transaction, and again
//     with the default group of 20 change sets per transaction;
// (2) native replay on a fresh server C: mariadb-binlog of A's binlog files
//     piped into the mariadb client.
// All servers keep the durable settings (sync_binlog=1, flush at commit).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { openDb, type Db } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { loadCatalog } from '../../apply/core/catalog.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';
import { decodeBatch } from '../../apply/codec/batch-reader.js';
import { encodeBatch } from '../../apply/codec/batch-writer.js';
import type { BatchEntry } from '../../apply/core/model.js';
import { Applier } from '../../apply/replay/applier.js';
import { journal, makeCapture } from '../helpers/capture-fixture.js';
import { mariadbBinary, startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { serverCpuMs } from './capture.js';

const ROWS = 50_000;
const PER_TXN = 100;
const PER_BATCH = 200;
const TABLE = `CREATE TABLE bench.item (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, uuid CHAR(36) NOT NULL, k INT NOT NULL, v VARCHAR(100) NULL,
  t DATETIME(6) NOT NULL, n DECIMAL(12,2) NULL, UNIQUE KEY item_uuid (uuid)) ENGINE=InnoDB`;

export async function bench(log: (line: string) => void): Promise<void> {
  const servers: TestServer[] = [];
  const dbs: Db[] = [];
  const server = async (): Promise<{ s: TestServer; db: Db }> => {
    const s = await startServer();
    servers.push(s);
    const db = openDb({ host: s.host, port: s.port, user: 'root' });
    dbs.push(db);
    await db.exec('CREATE DATABASE bench');
    await db.exec(TABLE);
    return { s, db };
  };
  try {
    // --- the workload on A, captured ---
    const a = await server();
    await a.db.exec('FLUSH BINARY LOGS');
    const [start] = await a.db.query<{ File: string; Position: number }>('SHOW MASTER STATUS');
    const capture = await makeCapture(a.s, a.db, 'bench', ['item'], { node: 'a', startAt: { file: start!.File, pos: Number(start!.Position) } });
    const conn = await a.s.connect('bench');
    for (let i = 0; i < ROWS; i += PER_TXN) {
      const rows: unknown[][] = [];
      for (let j = i; j < i + PER_TXN; j++) {
        rows.push([`00000000-0000-4000-8000-${String(j).padStart(12, '0')}`, j, `value number ${j}`, '2026-01-02 03:04:05.123456', (j / 7).toFixed(2)]);
      }
      await conn.query('INSERT INTO item (uuid, k, v, t, n) VALUES ?', [rows]);
    }
    await a.db.exec('FLUSH BINARY LOGS');
    const files = (await a.db.query<{ Log_name: string }>('SHOW BINARY LOGS')).map((l) => l.Log_name);
    const workload = files.slice(files.indexOf(start!.File), -1).map((f) => join(a.s.datadir, f));
    await capture.start();
    await capture.caughtUp(300_000);
    await capture.stop();
    const entries: BatchEntry[] = (await journal(a.db)).map((e) => ({ seq: String(e.seq), cs: e.cs }));
    log(`workload: ${ROWS} rows in ${entries.length} transactions of ${PER_TXN} rows on A, captured into ${entries.length} change sets`);
    const batches: Buffer[] = [];
    for (let i = 0; i < entries.length; i += PER_BATCH) {
      const header = { version: 1 as const, from: 'a', to: 'b', seq: String(i / PER_BATCH + 1), ack: '0', more: i + PER_BATCH < entries.length };
      batches.push(await encodeBatch(header, entries.slice(i, i + PER_BATCH)));
    }

    // --- native replay on a fresh server C (run before and after the apply runs; the faster counts) ---
    let nativeServerMs = Infinity;
    const native = async (): Promise<number> => {
      const c = await server();
      const cpu0 = await serverCpuMs(c.s);
      const t0 = performance.now();
      await pipeline(mariadbBinary('mariadb-binlog'), ['--no-defaults', ...workload], mariadbBinary('mariadb'), ['--no-defaults', '-h127.0.0.1', `-P${c.s.port}`, '-uroot']);
      const ms = performance.now() - t0;
      nativeServerMs = Math.min(nativeServerMs, (await serverCpuMs(c.s)) - cpu0);
      const [nc] = await c.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM bench.item');
      if (Number(nc!.n) !== ROWS) throw new Error(`native replay left ${nc!.n} rows, not ${ROWS}`);
      return ms;
    };
    const nativeFirst = await native();

    // --- spokesync apply on a fresh server B ---
    const b = await server();
    await ensureStateSchema(b.db, 'spokesync');
    const runApply = async (groupSize: number): Promise<{ ms: number; applyMs: number; nodeMs: number; serverMs: number }> => {
      await b.db.exec('DELETE FROM bench.item');
      await b.db.exec('DELETE FROM spokesync.ledger');
      const applier = new Applier({
        db: b.db, catalog: await loadCatalog(b.db, 'bench'), schema: 'bench', stateSchema: 'spokesync', node: 'b',
        tables: new Set(['item']), log: silentLogger, groupSize,
      });
      let applyMs = 0;
      let nodeMs = 0;
      const server0 = await serverCpuMs(b.s);
      const t0 = performance.now();
      for (const xml of batches) {
        const { entries: got } = await decodeBatch(xml);
        const t1 = performance.now();
        const cpu1 = process.cpuUsage();
        const r = await applier.applyBatch('a', got);
        applyMs += performance.now() - t1;
        const cpu = process.cpuUsage(cpu1);
        nodeMs += (cpu.user + cpu.system) / 1000;
        if (r.applied !== got.length) throw new Error(`apply: ${JSON.stringify(r)}`);
      }
      const ms = performance.now() - t0;
      const [n] = await b.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM bench.item');
      if (Number(n!.n) !== ROWS) throw new Error(`apply left ${n!.n} rows, not ${ROWS}`);
      return { ms, applyMs, nodeMs, serverMs: (await serverCpuMs(b.s)) - server0 };
    };
    const one = await runApply(1);
    const grouped = await runApply(20);
    const nativeMs = Math.min(nativeFirst, await native());

    const rate = (ms: number): number => ROWS / (ms / 1000);
    const perRow = (ms: number): string => (1000 * ms / ROWS).toFixed(2);
    const nat = rate(nativeMs);
    log(`native replay (mariadb-binlog | mariadb): ${ROWS} rows in ${(nativeMs / 1000).toFixed(2)} s = ${Math.round(nat)} rows/s (faster of 2 runs)`);
    for (const [what, r] of [['1 change set (100 rows) per transaction', one], ['20 change sets per transaction (the default)', grouped]] as const) {
      log(`spokesync apply, ${what}: ${Math.round(rate(r.applyMs))} rows/s = ${(rate(r.applyMs) / nat).toFixed(2)}× native; ` +
        `with decoding the XML batches ${Math.round(rate(r.ms))} rows/s = ${(rate(r.ms) / nat).toFixed(2)}× native; ` +
        `CPU per row: ${perRow(r.nodeMs)} µs in the applier, ${perRow(r.serverMs)} µs in the server`);
    }
    log(`native replay's server CPU per row: ${perRow(nativeServerMs)} µs`);
    log('target: apply ≥ 0.5× native');
  } finally {
    for (const db of dbs) await db.close().catch(() => undefined);
    for (const s of servers) await s.stop();
  }
}

/** `a args | b args`, resolving when both exit 0. */
function pipeline(a: string, aArgs: string[], b: string, bArgs: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const pa = spawn(a, aArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    const pb = spawn(b, bArgs, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    pa.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    pb.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    pa.stdout.pipe(pb.stdin);
    let left = 2;
    const done = (code: number | null): void => {
      if (code !== 0) reject(new Error(`native replay failed (${code}): ${err.slice(-2000)}`));
      else if (--left === 0) resolve();
    };
    pa.on('error', reject);
    pb.on('error', reject);
    pa.on('close', done);
    pb.on('close', done);
  });
}
