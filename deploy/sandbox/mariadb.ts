// Throwaway MariaDB servers for tests, benchmarks and the demo: a fresh datadir
// (a copy of one mariadb-install-db template), binlog on with the settings
// spokesync needs, a free port on loopback, stopped and removed afterwards.
// Never a shared server.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { createReadStream, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';

const run = promisify(execFile);

export interface ServerOptions {
  /** server_id of the instance (default: random in 1000..60000) */
  serverId?: number;
  /** extra mariadbd options, e.g. ['--binlog-format=STATEMENT'] */
  extraArgs?: string[];
  /** replaces the default server settings entirely (for preflight tests) */
  defaultsFile?: string;
}

export interface TestServer {
  readonly port: number;
  readonly host: string;
  readonly datadir: string;
  readonly serverId: number;
  /** A root connection (no schema selected); closed by stop(). */
  connect(schema?: string): Promise<mysql.Connection>;
  query(sql: string, params?: unknown[]): Promise<unknown>;
  /** SIGKILL the server (power loss) and start it again on the same datadir. */
  crashAndRestart(): Promise<void>;
  /** SIGKILL the server, its datadir and port kept for up(). */
  down(): Promise<void>;
  /** Starts the server again on its datadir and port. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

export const binlogArgs = [
  '--log-bin=mysql-bin',
  '--binlog-format=ROW',
  '--binlog-row-image=FULL',
  '--binlog-row-metadata=FULL',
  '--sync-binlog=1',
  '--innodb-flush-log-at-trx-commit=1',
  '--max-allowed-packet=64M',
  '--character-set-server=utf8mb4',
  '--collation-server=utf8mb4_general_ci',
];

export function mariadbBinary(name: 'mariadbd' | 'mariadb-install-db' | 'mariadb' | 'mariadb-binlog' | 'mariadb-dump'): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin']) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`${name} not found: install Debian's mariadb-server (apt-get install -y mariadb-server mariadb-client)`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(port: number, proc: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      throw new Error(`mariadbd exited with ${proc.exitCode}:\n${log.slice(-3000)}`);
    }
    try {
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
      await c.end();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`mariadbd on port ${port} not ready after 60 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

// the redo log size the servers run with: the template is made with it so no server resizes its log at start
const LOG_FILE_SIZE = '--innodb-log-file-size=48M';

const INSTALL_ARGS = ['--auth-root-authentication-method=normal', '--skip-test-db', '--user=root', '--skip-name-resolve', LOG_FILE_SIZE];

async function installDb(datadir: string): Promise<void> {
  await run(mariadbBinary('mariadb-install-db'), ['--no-defaults', `--datadir=${datadir}`, `--tmpdir=${datadir}`, ...INSTALL_ARGS]);
}

let templatePromise: Promise<string> | undefined;

/** A datadir fresh from mariadb-install-db, made once per MariaDB version and shared read-only by every copy. */
export async function templateDatadir(): Promise<string> {
  templatePromise ??= makeTemplate();
  try {
    return await templatePromise;
  } catch (e) {
    templatePromise = undefined;
    throw e;
  }
}

async function makeTemplate(): Promise<string> {
  const { stdout } = await run(mariadbBinary('mariadbd'), ['--version']);
  const key = createHash('sha256').update(stdout).update(INSTALL_ARGS.join(' ')).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `spokesync-template-${key}`);
  const ready = join(dir, 'spokesync-template-ready');
  const lock = `${dir}.lock`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (existsSync(ready)) return dir;
    try {
      await mkdir(lock);
    } catch {
      // another process is making it; a lock older than two minutes was left by one that died
      const age = await stat(lock).then((st) => Date.now() - st.mtimeMs, () => 0);
      if (age > 120_000) await rm(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`MariaDB template ${dir} not made after 120 s (lock ${lock})`);
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    try {
      if (existsSync(ready)) return dir;
      const work = await mkdtemp(`${dir}.work-`);
      await installDb(work).catch(async (e: unknown) => {
        await rm(work, { recursive: true, force: true });
        throw e;
      });
      await writeFile(join(work, 'spokesync-template-ready'), stdout);
      await rm(dir, { recursive: true, force: true });
      await rename(work, dir);
      return dir;
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}

async function copyTemplate(datadir: string): Promise<void> {
  try {
    await run('cp', ['-a', '--reflink=auto', `${await templateDatadir()}/.`, datadir]);
  } catch {
    // the template was removed under this process (a tmp cleaner): make it again once
    templatePromise = undefined;
    await run('cp', ['-a', '--reflink=auto', `${await templateDatadir()}/.`, datadir]);
  }
  await rm(join(datadir, 'spokesync-template-ready'));
}

export async function startServer(opts: ServerOptions = {}): Promise<TestServer> {
  const datadir = await mkdtemp(join(tmpdir(), 'spokesync-db-'));
  await copyTemplate(datadir);
  const serverId = opts.serverId ?? 1000 + Math.floor(Math.random() * 59000);
  let port = 0;
  let proc: ChildProcess | undefined;
  const logFile = join(datadir, 'server.log');
  const conns: mysql.Connection[] = [];

  const launch = async (): Promise<void> => {
    port = port || (await freePort());
    const args = [
      opts.defaultsFile ? `--defaults-file=${opts.defaultsFile}` : '--no-defaults',
      `--datadir=${datadir}`, `--port=${port}`, '--bind-address=127.0.0.1',
      `--socket=${join(datadir, 'mysqld.sock')}`, `--pid-file=${join(datadir, 'mysqld.pid')}`,
      `--log-error=${logFile}`, '--user=root', '--skip-name-resolve', `--tmpdir=${datadir}`,
      '--innodb-buffer-pool-size=64M', LOG_FILE_SIZE,
      ...(opts.defaultsFile ? [] : [...binlogArgs, `--server-id=${serverId}`]),
      ...(opts.extraArgs ?? []),
    ];
    proc = spawn(mariadbBinary('mariadbd'), args, { stdio: 'ignore' });
    await waitReady(port, proc, logFile);
  };
  await launch();

  const connect = async (schema?: string): Promise<mysql.Connection> => {
    const c = await mysql.createConnection({
      host: '127.0.0.1', port, user: 'root', multipleStatements: true,
      ...(schema ? { database: schema } : {}),
      dateStrings: true, supportBigNumbers: true, bigNumberStrings: true,
    });
    conns.push(c);
    return c;
  };

  const killProc = async (signal: NodeJS.Signals): Promise<void> => {
    const p = proc;
    // a process killed by a signal has no exit code: stopping it again must not wait for an exit already past
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  };

  const closeConns = async (): Promise<void> => {
    for (const c of conns.splice(0)) c.destroy();
  };

  const down = async (): Promise<void> => {
    await closeConns();
    await killProc('SIGKILL');
  };

  return {
    get port() { return port; },
    host: '127.0.0.1',
    datadir,
    serverId,
    connect,
    async query(sql, params) {
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', multipleStatements: true });
      try { return (await c.query(sql, params))[0]; } finally { await c.end(); }
    },
    async crashAndRestart() {
      await down();
      await launch();
    },
    down,
    up: launch,
    async stop() {
      // its datadir is removed next: a clean shutdown would only flush pages about to be deleted
      await down();
      await rm(datadir, { recursive: true, force: true });
    },
  };
}

/** The OpenMRS 2.6.4 schema dump in ../shared/fixtures beside the checkout. */
export function openmrsDumpPath(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  // dist/test/helpers or test/helpers → repository root → ../shared
  for (const up of ['../../..', '../..', '../../../..']) {
    const p = join(here, up, '..', 'shared', 'fixtures', 'openmrs', 'openmrs-core-2.6.4.sql.gz');
    if (existsSync(p)) return p;
  }
  throw new Error('OpenMRS fixture not found: expected ../shared/fixtures/openmrs/openmrs-core-2.6.4.sql.gz beside the checkout');
}

/** Loads the OpenMRS schema into `schema` on the server (about a second). */
export async function loadOpenmrs(server: TestServer, schema = 'openmrs'): Promise<void> {
  // found before the client starts: a missing fixture is an error, never a client left waiting on its input
  const dump = openmrsDumpPath();
  await server.query(`CREATE DATABASE IF NOT EXISTS \`${schema}\``);
  await new Promise<void>((resolve, reject) => {
    const client = spawn(mariadbBinary('mariadb'), ['-h127.0.0.1', `-P${server.port}`, '-uroot', schema], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let err = '';
    client.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    client.on('error', reject);
    client.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`loading OpenMRS failed: ${err}`))));
    createReadStream(dump).pipe(createGunzip()).pipe(client.stdin);
  });
}

/** A backup of whole schemas, as an operator takes one: `mariadb-dump --single-transaction --databases ...`. */
export async function dumpSchemas(server: TestServer, schemas: readonly string[]): Promise<Buffer> {
  const { stdout } = await run(mariadbBinary('mariadb-dump'), [
    '-h127.0.0.1', `-P${server.port}`, '-uroot', '--single-transaction', '--databases', ...schemas,
  ], { encoding: 'buffer', maxBuffer: 1 << 30 });
  return stdout;
}

/** Runs SQL text (a dump) through the `mariadb` client, as an operator restores one. */
export async function loadSql(server: TestServer, sql: Buffer | string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const client = spawn(mariadbBinary('mariadb'), ['-h127.0.0.1', `-P${server.port}`, '-uroot'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    client.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    client.on('error', reject);
    client.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`loading SQL failed: ${err}`))));
    client.stdin.end(sql);
  });
}
