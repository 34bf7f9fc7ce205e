// zongji alone, in a process of its own, as the capture benchmark's measure:
// it decodes the events of one table between two binlog positions, counting
// rows, and prints one JSON line {"rows":…,"ms":…,"cpuMs":…}. A fresh process,
// like the capture process it is compared with: neither starts with code the
// JIT has compiled already, and the timer starts, as capture's does, once the
// modules are loaded. Run from dist:
//   node dist/test/bench/zongji-proc.js '<json ZongjiProcArgs>'
import ZongJi from '@vlasky/zongji';
import type { AnyBinlogEvent } from '@vlasky/zongji';

export interface ZongjiProcArgs {
  readonly port: number;
  readonly schema: string;
  readonly table: string;
  readonly start: { readonly file: string; readonly pos: number };
  readonly end: { readonly file: string; readonly pos: number };
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ZongjiProcArgs;
  const z = new ZongJi({ host: '127.0.0.1', port: args.port, user: 'root', dateStrings: true, supportBigNumbers: true, bigNumberStrings: true, timezone: 'Z' });
  let rows = 0;
  let file = args.start.file;
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  await new Promise<void>((resolve, reject) => {
    z.on('error', reject);
    z.on('binlog', (ev: AnyBinlogEvent) => {
      const name = ev.getEventName();
      if (name === 'rotate') file = (ev as { binlogName: string }).binlogName;
      if (name === 'writerows') rows += (ev as { rows: unknown[] }).rows.length;
      if (name === 'xid' && file === args.end.file && ev.nextPosition >= args.end.pos) resolve();
    });
    z.start({
      serverId: 6000 + Math.floor(Math.random() * 1000), filename: args.start.file, position: args.start.pos,
      includeEvents: ['rotate', 'tablemap', 'writerows', 'xid'], includeSchema: { [args.schema]: [args.table] },
    });
  });
  const ms = Date.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(JSON.stringify({ rows, ms, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n');
  z.stop();
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`zongji-proc: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
