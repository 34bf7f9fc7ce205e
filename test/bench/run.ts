// `npm run bench`: runs each benchmark once and prints what it measured.
// Usage: npm run bench [-- codec capture apply exchange provision]
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const all = ['codec', 'capture', 'apply', 'exchange', 'provision'];
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all;

let failed = 0;
for (const name of wanted) {
  const file = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  if (!existsSync(file)) {
    console.log(`\n== ${name}: no benchmark in this build`);
    continue;
  }
  console.log(`\n== ${name}`);
  const started = Date.now();
  try {
    const mod = (await import(file)) as { bench: (log: (line: string) => void) => Promise<void> };
    await mod.bench((line) => console.log(`  ${line}`));
    console.log(`  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    console.log(`  FAILED: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
