// zongji alone, in a process of its own, as the capture benchmark's measure
// (zongji-decode.ts): prints one JSON line {"rows":…,"ms":…,"cpuMs":…}. A
// fresh process, like the capture process it is compared with: neither
// starts with code the JIT has compiled already, and the timer starts, as
// capture's does, once the modules are loaded. Run from dist:
//   node dist/test/bench/zongji-proc.js '<json DecodeRange>'
import { zongjiDecode, type DecodeRange } from './zongji-decode.js';

async function main(): Promise<void> {
  const range = JSON.parse(process.argv[2] ?? '{}') as DecodeRange;
  const cpu0 = process.cpuUsage();
  const { rows, ms } = await zongjiDecode(range);
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(JSON.stringify({ rows, ms, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n');
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`zongji-proc: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
