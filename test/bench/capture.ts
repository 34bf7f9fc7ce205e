// Capture benchmark: a backlog of rows in the binlog, captured into the
// journal by a capture process, against zongji alone decoding the same
// events (same run, same binlog, just counting rows; a process of its own too,
// zongji-proc.ts, zongji-decode.ts), the two in turns, five
// times, with an account that may keep capture's state writes out of the
// binlog (root); then once with the least-privilege account of
// mysql-conf/grants.sql (they are binlogged). Then a 1,000,000-row backlog for
// the capture process's peak memory (VmHWM), with node's defaults and with the
// V8 flags the daemon ships with, each after a zongji run of its own.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DAEMON_HEAP_FLAGS } from '../../agent/cli/heap-flags.js';
import { specOf } from '../../agent/config/reference.js';
import { parseBytes } from '../../apply/core/units.js';
import { startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { dbFor, spawnCapture, type CaughtUp } from '../helpers/capture-fixture.js';
import type { Db } from '../../apply/core/db.js';
import type { CaptureProcArgs } from '../helpers/capture-proc.js';
import { zongjiDecode, type DecodeRange } from './zongji-decode.js';

const run = promisify(execFile);

const ROWS = 200_000;
const CORES = availableParallelism();
const PER_TXN = 100;
const BIG_ROWS = Number(process.env.BENCH_BIG_ROWS ?? 1_000_000);
/** Turns of zongji alone and capture over the 200,000-row backlog. */
const PAIRS = Number(process.env.BENCH_PAIRS ?? 5);
/** The V8 flags the daemon runs with (agent/cli/heap-flags.ts). */
const MEM_NODE_ARGS = process.env.BENCH_NODE_ARGS === undefined ? DAEMON_HEAP_FLAGS : process.env.BENCH_NODE_ARGS.split(' ').filter((a) => a !== '');
/** Node flags of the throughput runs (node's defaults unless BENCH_CAPTURE_ARGS; BENCH_PROF=dir adds a CPU profile). */
const THROUGHPUT_ARGS = [
  ...(process.env.BENCH_CAPTURE_ARGS ?? '').split(' ').filter((a) => a !== ''),
  ...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : []),
];
/** The daemon's capture memory budget (config capture.memoryBytes, its default). */
const MEMORY_BYTES = parseBytes(String(specOf('capture.memoryBytes')!.default))!;
/** The least-privilege account (mysql-conf/grants.sql, without BINLOG ADMIN). */
const LP = { user: 'bench_lp', password: 'bench-lp-secret' };

export async function bench(log: (line: string) => void): Promise<void> {
  const s = await startServer({ extraArgs: ['--innodb-buffer-pool-size=256M', '--sync-binlog=0', '--innodb-flush-log-at-trx-commit=2'] });
  const db = dbFor(s);
  try {
    await db.exec('CREATE DATABASE app');
    await db.exec(`CREATE TABLE app.kind (id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(36) NOT NULL UNIQUE, name VARCHAR(50)) ENGINE=InnoDB`);
    await db.exec(`CREATE TABLE app.item (
      id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(36) NOT NULL UNIQUE, kind_id INT NOT NULL, seq INT NOT NULL,
      value_numeric DOUBLE, note VARCHAR(100), created DATETIME NOT NULL, voided TINYINT NOT NULL DEFAULT 0,
      FOREIGN KEY (kind_id) REFERENCES app.kind (id)) ENGINE=InnoDB`);
    for (let k = 0; k < 20; k++) await db.exec('INSERT INTO app.kind (uuid, name) VALUES (UUID(), ?)', [`kind ${k}`]);
    await db.exec(`CREATE USER ${LP.user}@'%' IDENTIFIED BY '${LP.password}'`);
    await db.exec(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${LP.user}@'%'`);
    await db.exec(`GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO ${LP.user}@'%'`);
    await db.exec(`GRANT ALL PRIVILEGES ON ss_rate_lp.* TO ${LP.user}@'%'`);
    log(`capture memory budget ${MEMORY_BYTES / 1048576} MiB (the daemon's default); throughput runs with node's default flags`);

    // 1. throughput: 200,000 rows in transactions of 100. zongji alone and
    // capture run in turns, PAIRS times, each capture into a state schema of
    // its own: on a machine whose speed drifts from one second to the next,
    // the median of ratios taken side by side says more than one ratio.
    const rateStates = Array.from({ length: PAIRS }, (_, p) => `ss_rate_${p + 1}`);
    const run1 = await backlog(s, db, [...rateStates.map((st) => [st] as const), ['ss_rate_lp', LP]], ROWS, 0, log);
    const ratios: number[] = [];
    const captureRates: number[] = [];
    const raws: { rows: number; ms: number; cpuMs: number }[] = [];
    let rawServerMs = 0;
    for (let p = 0; p < PAIRS; p++) {
      const server0 = await serverCpuMs(s);
      const raw = await rawDecode(s, run1.start, run1.end);
      if (p === 0) rawServerMs = (await serverCpuMs(s)) - server0;
      raws.push(raw);
      const before = await serverCpuMs(s);
      const cap = await captureRun(s, rateStates[p]!, THROUGHPUT_ARGS);
      const serverMs = (await serverCpuMs(s)) - before;
      await checkJournal(db, rateStates[p]!, ROWS / PER_TXN, ROWS);
      const rawRate = raw.rows / (raw.ms / 1000);
      const capRate = ROWS / (cap.ms / 1000);
      ratios.push(capRate / rawRate);
      captureRates.push(capRate);
      log(`pair ${p + 1} of ${PAIRS}: zongji decode alone ${raw.rows} rows in ${(raw.ms / 1000).toFixed(2)} s = ${Math.round(rawRate)} rows/s; ` +
        `capture to committed journal, state writes kept out of the binlog (root): ${ROWS} rows (${cap.journaled} change sets) in ${(cap.ms / 1000).toFixed(2)} s = ` +
        `${Math.round(capRate)} rows/s; ratio ${(capRate / rawRate).toFixed(3)}×; state binlogged: ${String(cap.stateBinlogged)}; peak RSS ${cap.peakMb.toFixed(0)} MB; ` +
        `CPU per row: zongji ${perRow(raw.cpuMs, ROWS)} µs in node, ${perRow(rawServerMs, ROWS)} µs in the server (binlog dump); ` +
        `capture ${perRow(cap.cpuMs, ROWS)} µs in the capture process, ${perRow(serverMs, ROWS)} µs in the server`);
    }
    log(`capture/zongji, 200,000 rows: median of ${PAIRS} side-by-side ratios ${median(ratios).toFixed(3)}× (target ≥ 0.5×; ` +
      `each: ${ratios.map((r) => r.toFixed(3)).join(', ')})`);
    {
      // for comparison: zongji in this process, whose JIT the runs before have warmed (a capture process starts cold)
      const warm = await zongjiDecode({ port: s.port, schema: 'app', table: 'item', start: run1.start, end: run1.end });
      const warmRate = warm.rows / (warm.ms / 1000);
      log(`zongji decode alone in the benchmark's own process, warm: ${(warm.ms / 1000).toFixed(2)} s = ${Math.round(warmRate)} rows/s; ` +
        `the median capture rate against it ${(median(captureRates) / warmRate).toFixed(3)}×`);
    }
    const raw = raws[0]!;
    const medianRawRate = median(raws.map((r) => r.rows / (r.ms / 1000)));
    {
      const before = await serverCpuMs(s);
      const cap = await captureRun(s, 'ss_rate_lp', THROUGHPUT_ARGS, LP);
      const serverMs = (await serverCpuMs(s)) - before;
      await checkJournal(db, 'ss_rate_lp', ROWS / PER_TXN, ROWS);
      const capRate = ROWS / (cap.ms / 1000);
      log(`capture to committed journal, state writes binlogged (no BINLOG ADMIN): ${ROWS} rows in ${(cap.ms / 1000).toFixed(2)} s = ` +
        `${Math.round(capRate)} rows/s; against the median zongji rate ${(capRate / medianRawRate).toFixed(3)}×; state binlogged: ${String(cap.stateBinlogged)}; ` +
        `CPU per row: ${perRow(cap.cpuMs, ROWS)} µs in the capture process, ${perRow(serverMs, ROWS)} µs in the server`);
    }
    await stateWriteFloor(s, db, rateStates[0]!, raw, rawServerMs, log);
    await stateSize(db, rateStates[0]!, log);

    // 2. memory: a 1,000,000-row backlog, captured with node's defaults and with the daemon's flags
    await db.exec('TRUNCATE TABLE app.item');
    const run2 = await backlog(s, db, [['ss_mem'], ['ss_mem_flags']], BIG_ROWS, ROWS, log);
    // the same comparison on a backlog five times longer: less of either run is start-up and warm-up
    for (const [state, args] of [['ss_mem', []], ['ss_mem_flags', MEM_NODE_ARGS]] as const) {
      const bigRaw = await rawDecode(s, run2.start, run2.end);
      const bigRawRate = bigRaw.rows / (bigRaw.ms / 1000);
      log(`zongji decode alone, ${BIG_ROWS}-row backlog: ${(bigRaw.ms / 1000).toFixed(2)} s = ${Math.round(bigRawRate)} rows/s`);
      const big = await captureRun(s, state, args);
      await checkJournal(db, state, BIG_ROWS / PER_TXN, BIG_ROWS);
      const rate = BIG_ROWS / (big.ms / 1000);
      log(`${BIG_ROWS}-row backlog: captured in ${(big.ms / 1000).toFixed(1)} s = ${Math.round(rate)} rows/s, ratio capture/zongji ${(rate / bigRawRate).toFixed(3)}×; ` +
        `peak RSS (VmHWM) ${big.peakMb.toFixed(0)} MB with ${args.length === 0 ? "node's defaults" : `node ${args.join(' ')}`} (target ≤ 150 MB)`);
    }
  } finally {
    await db.close();
    await s.stop();
  }
}

interface Pos { file: string; pos: number }

/** The run is only a measurement if capture journaled every transaction once. */
async function checkJournal(db: Db, state: string, txns: number, rows: number): Promise<void> {
  const [r] = await db.query<{ n: string; ops: string; ids: string }>(
    `SELECT COUNT(*) AS n, SUM(op_count) AS ops, COUNT(DISTINCT change_id) AS ids FROM ${state}.journal`);
  if (Number(r!.n) !== txns || Number(r!.ops) !== rows || Number(r!.ids) !== txns) {
    throw new Error(`journal of ${state} holds ${r!.n} change sets with ${r!.ops} ops; expected ${txns} with ${rows}`);
  }
}

async function masterPos(db: Db): Promise<Pos> {
  const [r] = await db.query<{ File: string; Position: number }>('SHOW MASTER STATUS');
  return { file: r!.File, pos: Number(r!.Position) };
}

type Account = { readonly user: string; readonly password: string };

/** Sets the capture checkpoints (one per state schema) at the end of the binlog, then writes `rows` rows after them. */
async function backlog(
  s: TestServer, db: Db, states: readonly (readonly [string, Account?])[], rows: number, offset: number, log: (l: string) => void,
): Promise<{ start: Pos; end: Pos }> {
  for (const [state, account] of states) {
    const init = spawnCapture(args(s, state, account));
    await init.caughtUp;
    await init.exited;
  }
  const start = await masterPos(db);
  const conn = await s.connect('app');
  const t0 = Date.now();
  for (let i = 0; i < rows; i += PER_TXN) {
    const batch: unknown[][] = [];
    for (let j = i; j < i + PER_TXN; j++) {
      const n = offset + j;
      batch.push([`00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, 1 + (n % 20), n, n / 7, `note number ${n}`, '2026-01-02 03:04:05']);
    }
    await conn.query('INSERT INTO item (uuid, kind_id, seq, value_numeric, note, created) VALUES ?', [batch]);
  }
  await conn.end();
  log(`backlog of ${rows} rows in transactions of ${PER_TXN} written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { start, end: await masterPos(db) };
}

function args(s: TestServer, state: string, account?: Account): CaptureProcArgs {
  return {
    port: s.port, schema: 'app', stateSchema: state, tables: ['item'], node: 'bench', serverId: 7000 + Math.floor(Math.random() * 1000),
    mode: 'catchup', timeoutMs: 600_000, memoryBytes: MEMORY_BYTES, ...account,
  };
}

/** Runs a capture process to the end of the binlog, sampling its memory. */
async function captureRun(
  s: TestServer, state: string, nodeArgs: readonly string[] = [], account?: Account,
): Promise<CaughtUp & { peakMb: number }> {
  const child = spawnCapture(args(s, state, account), nodeArgs);
  let peakKb = 0;
  const sample = async (): Promise<void> => {
    const status = await readFile(`/proc/${child.proc.pid}/status`, 'utf8').catch(() => '');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    if (m) peakKb = Math.max(peakKb, Number(m[1]));
  };
  const timer = setInterval(() => { void sample(); }, 50);
  try {
    const done = await child.caughtUp;
    await sample();
    if (process.env.BENCH_DEBUG) console.log(child.stderr().slice(0, 3000));
    return { ...done, peakMb: peakKb / 1024 };
  } finally {
    clearInterval(timer);
    await child.exited;
  }
}

/** zongji alone over the same events, in a fresh process as capture runs in (zongji-proc.ts): rows decoded, wall and CPU time. */
async function rawDecode(s: TestServer, start: Pos, end: Pos): Promise<{ rows: number; ms: number; cpuMs: number }> {
  const file = fileURLToPath(new URL('./zongji-proc.js', import.meta.url));
  const args: DecodeRange = { port: s.port, schema: 'app', table: 'item', start, end };
  const { stdout } = await run(process.execPath, [file, JSON.stringify(args)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as { rows: number; ms: number; cpuMs: number };
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function perRow(ms: number, rows: number): string {
  return ((ms * 1000) / rows).toFixed(2);
}

/** CPU time (user + system, all threads) the server has used so far, from /proc. */
/** CPU time mariadbd of `s` has used so far, in ms. */
export async function serverCpuMs(s: TestServer): Promise<number> {
  const pid = (await readFile(join(s.datadir, 'mysqld.pid'), 'utf8')).trim();
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux)
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The size of capture's identity state next to the table it covers (InnoDB data + indexes, as the server reports it). */
async function stateSize(db: Db, state: string, log: (l: string) => void): Promise<void> {
  await db.exec(`ANALYZE TABLE ${state}.idmap, ${state}.insert_ranges, ${state}.journal, app.item`);
  const rows = await db.query<{ s: string; t: string; n: string | number; b: string | number }>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, TABLE_ROWS AS n, DATA_LENGTH + INDEX_LENGTH AS b FROM information_schema.TABLES
      WHERE (TABLE_SCHEMA = ? AND TABLE_NAME IN ('idmap', 'insert_ranges', 'journal')) OR (TABLE_SCHEMA = 'app' AND TABLE_NAME = 'item')`, [state]);
  const mb = (t: string): string => (Number(rows.find((r) => r.t === t)?.b ?? 0) / 1048576).toFixed(1);
  const n = (t: string): number => Number(rows.find((r) => r.t === t)?.n ?? 0);
  log(`identity state after capturing ${ROWS} rows: idmap ${mb('idmap')} MB (~${n('idmap')} rows), insert_ranges ${mb('insert_ranges')} MB (~${n('insert_ranges')} rows); ` +
    `the table itself ${mb('item')} MB, the journal ${mb('journal')} MB`);
}

/**
 * What the durable state alone costs the server: capture's identity rows
 * (idmap, insert_ranges) and journal rows, copied into empty tables of the same definition by multi-row
 * INSERTs from a client in transactions of a capture group's size. With the
 * decode zongji does anyway, this bounds what capture could reach on this
 * machine if mapping and encoding cost nothing: the server and the capture
 * process share its cores, so rows/s ≤ cores / (CPU per row of decode + dump
 * + these writes).
 */
async function stateWriteFloor(
  s: TestServer, db: Db, state: string, raw: { ms: number; cpuMs: number }, rawServerMs: number, log: (l: string) => void,
): Promise<void> {
  await db.exec('CREATE DATABASE floor');
  const conn = await s.connect('floor');
  try {
    await conn.query('SET SESSION sql_log_bin = 0');
    const cost: Record<string, number> = {};
    for (const t of ['idmap', 'insert_ranges', 'journal']) {
      await conn.query(`CREATE TABLE floor.${t} LIKE ${state}.${t}`);
      const [, cols] = await conn.query(`SELECT * FROM ${state}.${t} LIMIT 0`) as unknown as [unknown, { name: string }[]];
      const names = cols.map((c) => c.name).filter((n) => n !== 'seq');
      const keyCol = t === 'idmap' ? 'tbl, local_id' : t === 'insert_ranges' ? 'tbl, lo' : 'seq';
      const total = Number(((await conn.query(`SELECT COUNT(*) AS n FROM ${state}.${t}`)) as unknown as [{ n: number }[]])[0][0]!.n);
      let spent = 0;
      const perTxn = t === 'journal' ? 50 : 5000;
      for (let off = 0; off < total; off += perTxn) {
        const [rows] = await conn.query(`SELECT ${names.join(', ')} FROM ${state}.${t} ORDER BY ${keyCol} LIMIT ${perTxn} OFFSET ${off}`) as unknown as [Record<string, unknown>[]];
        const before = await serverCpuMs(s);
        await conn.query('BEGIN');
        for (let i = 0; i < rows.length; i += 100) {
          await conn.query(`INSERT INTO floor.${t} (${names.join(', ')}) VALUES ?`, [rows.slice(i, i + 100).map((r) => names.map((n) => r[n]))]);
        }
        await conn.query('COMMIT');
        spent += (await serverCpuMs(s)) - before;
      }
      cost[t] = spent;
      log(`the ${t} rows alone (${total}), written from a client: ${(spent / 1000).toFixed(2)} s of server CPU = ${perRow(spent, ROWS)} µs per captured row`);
    }
    const identity = cost.idmap! + cost.insert_ranges!;
    const floorPerRow = (raw.cpuMs + rawServerMs + identity + cost.journal!) / ROWS;
    const ceiling = (CORES / floorPerRow) / (ROWS / raw.ms);
    log(`ceiling on ${CORES} cores with mapping and encoding free: decode + dump + identity rows + journal = ${(floorPerRow * 1000).toFixed(2)} µs of CPU per row, ` +
      `so capture/zongji ≤ ${ceiling.toFixed(2)}× (the identity rows take ${((identity / ROWS) / floorPerRow * 100).toFixed(0)}% of it)`);
  } finally {
    await conn.end();
  }
}
