// `npm run chaos [-- --minutes 30 --seed 7 --rate 12 --pace 250 --settle 300]`:
// the randomized fault test on a five-node tree (chaos.ts). Options may also
// come from the environment (CHAOS_MINUTES, CHAOS_SEED, CHAOS_RATE, CHAOS_PACE,
// CHAOS_SETTLE, CHAOS_FAULTS). Prints its summary; exit 0 when nothing was lost, duplicated,
// diverged, quarantined, over its memory limit or crashed, 1 otherwise, 2 on bad usage.
import { parseArgs } from 'node:util';
import { Cleanup } from '../../deploy/demo-support.js';
import { runChaos } from './chaos.js';
import { FAULT_KINDS, type FaultKind } from './faults.js';

const USAGE = `usage: npm run chaos -- [--minutes N | --seconds N] [--seed N] [--rate FAULTS_PER_MINUTE]
                         [--faults KIND,...] [--pace MS_BETWEEN_WRITES] [--settle SECONDS] [--rss-limit MB] [--keep-logs]
fault kinds: ${FAULT_KINDS.join(', ')} (default: all)`;

function num(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`chaos: --${name} must be a number ≥ 0, not ${JSON.stringify(v)}\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

let values: Record<string, string | boolean | undefined>;
try {
  values = parseArgs({
    options: {
      minutes: { type: 'string' }, seconds: { type: 'string' }, seed: { type: 'string' }, rate: { type: 'string' },
      pace: { type: 'string' }, faults: { type: 'string' }, settle: { type: 'string' }, 'rss-limit': { type: 'string' }, 'keep-logs': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  }).values;
} catch (e) {
  process.stderr.write(`chaos: ${(e as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const env = process.env;
const str = (k: string): string | undefined => (typeof values[k] === 'string' ? values[k] : undefined);
const minutes = num('minutes', str('minutes') ?? env.CHAOS_MINUTES, 5);
const seconds = num('seconds', str('seconds'), minutes * 60);
const seed = Math.floor(num('seed', str('seed') ?? env.CHAOS_SEED, Math.floor(Math.random() * 1_000_000)));

const kinds = (str('faults') ?? env.CHAOS_FAULTS ?? FAULT_KINDS.join(',')).split(',').map((k) => k.trim()).filter((k) => k !== '');
const unknownKind = kinds.find((k) => !(FAULT_KINDS as readonly string[]).includes(k));
if (unknownKind !== undefined || kinds.length === 0) {
  process.stderr.write(`chaos: unknown fault kind ${JSON.stringify(unknownKind ?? '')}\n${USAGE}\n`);
  process.exit(2);
}

const cleanup = new Cleanup();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stdout.write(`${sig}: stopping every daemon, link and server ...\n`);
    void cleanup.run().finally(() => process.exit(130));
  });
}
try {
  const r = await runChaos({
    seconds, seed,
    faultsPerMinute: num('rate', str('rate') ?? env.CHAOS_RATE, 12),
    faultKinds: kinds as FaultKind[],
    paceMs: num('pace', str('pace') ?? env.CHAOS_PACE, 250),
    settleSeconds: num('settle', str('settle') ?? env.CHAOS_SETTLE, 300),
    rssLimitBytes: num('rss-limit', str('rss-limit'), 150) * 1024 * 1024,
    keepLogs: values['keep-logs'] === true,
    say: (line) => process.stdout.write(`${line}\n`),
  }, cleanup);
  process.stdout.write(`\n${r.summary.join('\n')}\n`);
  process.exit(r.ok ? 0 : 1);
} catch (e) {
  process.stderr.write(`chaos: ${(e as Error).stack ?? String(e)}\n`);
  await cleanup.run();
  process.exit(1);
}
