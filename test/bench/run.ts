// `npm run bench`: runs each benchmark once, prints what it measured, and
// writes the figures to BENCHMARKS.md (with the date and the machine), so the
// README can say what is measured and leave the figures to this file.
// Usage: npm run bench [-- codec capture apply exchange provision verify memory]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

const all = ['codec', 'capture', 'apply', 'exchange', 'provision', 'verify', 'memory'];
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all;
const out = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url));

/** What a benchmark printed, or why it did not finish. */
const sections = new Map<string, string[]>();
/** When each benchmark started (UTC, to the minute). */
const startedAt = new Map<string, string>();
let failed = 0;
for (const name of wanted) {
  const file = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  if (!existsSync(file)) {
    console.log(`\n== ${name}: no benchmark in this build`);
    continue;
  }
  console.log(`\n== ${name}`);
  const lines: string[] = [];
  const started = Date.now();
  startedAt.set(name, `${new Date(started).toISOString().slice(0, 16).replace('T', ' ')} UTC`);
  try {
    const mod = (await import(file)) as { bench: (log: (line: string) => void) => Promise<void> };
    await mod.bench((line) => {
      lines.push(line);
      console.log(`  ${line}`);
    });
    lines.push(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
    console.log(`  ${lines[lines.length - 1]}`);
  } catch (e) {
    failed++;
    lines.push(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
    console.log(`  FAILED: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  }
  sections.set(name, lines);
}
writeFileSync(out, benchmarksFile(sections));
console.log(`\nfigures written to ${out}`);
process.exit(failed > 0 ? 1 : 0);

/** The file: this run's sections, and the sections of benchmarks not run now kept from the file as it was. */
function benchmarksFile(now: ReadonlyMap<string, readonly string[]>): string {
  const kept = existsSync(out) ? previousSections(readFileSync(out, 'utf8')) : new Map<string, string>();
  let text = '# spokesync benchmark figures\n\n' +
    'Written by `npm run bench` (`npm run bench -- NAME ...` runs some and keeps the others as they were).\n' +
    'Each section is one run on the machine it names; absolute speeds move between machines and runs,\n' +
    'the ratios measured within one run are what the targets in the README compare.\n';
  for (const name of all) {
    const lines = now.get(name);
    if (lines) {
      text += `\n## ${name}\n\n${startedAt.get(name) ?? ''}, ${machine()}\n\n\`\`\`\n${lines.join('\n')}\n\`\`\`\n`;
    } else if (kept.has(name)) {
      text += `\n## ${name}\n${kept.get(name)}`;
    }
  }
  return text;
}

function previousSections(text: string): Map<string, string> {
  const found = new Map<string, string>();
  const parts = text.split(/^## /m).slice(1);
  for (const p of parts) {
    const nl = p.indexOf('\n');
    found.set(p.slice(0, nl).trim(), p.slice(nl));
  }
  return found;
}

function machine(): string {
  let server = 'MariaDB not found';
  for (const bin of ['mariadbd', '/usr/sbin/mariadbd']) {
    try {
      server = execFileSync(bin, ['--version'], { encoding: 'utf8' }).replace(/^.*Ver\s+/, 'MariaDB ').split(' for ')[0]!.trim();
      break;
    } catch {
      // not on PATH: the next place, or the benchmarks that need it fail and say so
    }
  }
  return `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${server}`;
}
