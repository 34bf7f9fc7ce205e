// A capture process on its own, for tests that kill it (kill -9) and for the
// benchmark that measures its memory. Run from dist:
//   node dist/test/helpers/capture-proc.js '<json CaptureProcArgs>'
// Prints one JSON line per milestone on stdout: {"ready":true} once capture
// runs; in catch-up mode {"caughtUp":true,"ms":...,"cpuMs":...,"journaled":...} and exits
// (cpuMs: the process's CPU time over all its threads, from start to caught up).
import { Capture } from '../../agent/capture/capture.js';
import { openDb } from '../../apply/core/db.js';
import { createLogger } from '../../apply/core/log.js';
import { loadCatalog } from '../../apply/core/catalog.js';

export interface CaptureProcArgs {
  readonly port: number;
  readonly schema: string;
  readonly stateSchema: string;
  readonly tables: readonly string[];
  readonly node: string;
  readonly serverId: number;
  readonly memoryBytes?: number;
  /** account to connect as (default root, no password) */
  readonly user?: string;
  readonly password?: string;
  /** run until killed, or catch up with the binlog as it is at start and exit */
  readonly mode: 'run' | 'catchup';
  readonly timeoutMs?: number;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as CaptureProcArgs;
  const settings = { host: '127.0.0.1', port: args.port, user: args.user ?? 'root', ...(args.password === undefined ? {} : { password: args.password }) };
  const db = openDb(settings);
  const log = createLogger({ level: process.env.CAPTURE_LOG === 'debug' ? 'debug' : 'warn', write: (line) => process.stderr.write(line + '\n') });
  const catalog = await loadCatalog(db, args.schema);
  const capture = new Capture({
    db, settings, catalog, log,
    schema: args.schema,
    stateSchema: args.stateSchema,
    tables: new Set(args.tables),
    node: args.node,
    serverId: args.serverId,
    ...(args.memoryBytes === undefined ? {} : { memoryBytes: args.memoryBytes }),
  });
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  await capture.start();
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  const shutdown = (): void => {
    void capture.stop().then(() => db.close()).then(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  if (args.mode === 'catchup') {
    await capture.caughtUp(args.timeoutMs ?? 600_000);
    const st = capture.status();
    const cpu = process.cpuUsage(cpu0);
    process.stdout.write(JSON.stringify({
      caughtUp: true, ms: Date.now() - started, cpuMs: (cpu.user + cpu.system) / 1000, journaled: st.journaled, stateBinlogged: st.stateBinlogged,
    }) + '\n');
    await capture.stop();
    await db.close();
    process.exit(0);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`capture-proc: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
