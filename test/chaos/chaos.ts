// The fault test itself (`npm run chaos`, and a short fixed-seed run in `npm
// test`): the tree of five nodes, writes on every node while random faults hit
// daemons, databases and links, then the faults stop, everything that is down
// is started, the tree settles and the checks run (verify.ts). The result says
// what was done, what was found and whether it is all right.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup } from '../../deploy/demo-support.js';
import { logErrors, type DaemonExit } from './daemons.js';
import { Faults, FAULT_KINDS, type FaultKind } from './faults.js';
import { rng, sleep } from './rng.js';
import { Tracker } from './tracker.js';
import { startTree, type Site } from './tree.js';
import { check, counts, failures, readNode, type Findings } from './verify.js';
import { Writer } from './writer.js';

export interface ChaosOptions {
  /** how long writes and faults go on */
  readonly seconds: number;
  readonly seed: number;
  /** mean faults per minute */
  readonly faultsPerMinute: number;
  /** the kinds of fault to inject (default: all) */
  readonly faultKinds?: readonly FaultKind[];
  /** mean pause between one node's transactions */
  readonly paceMs: number;
  /** most time the tree gets to settle once the faults stop */
  readonly settleSeconds: number;
  /** peak RSS allowed per daemon */
  readonly rssLimitBytes: number;
  /** keep the configs and daemon logs even when all is well */
  readonly keepLogs?: boolean;
  readonly say: (line: string) => void;
}

export interface ChaosResult {
  readonly ok: boolean;
  readonly problems: string[];
  readonly faults: Record<FaultKind, number>;
  readonly writes: ReturnType<Tracker['counts']>;
  readonly findings: Findings;
  /** from the moment everything was up again to convergence; null when it did not converge */
  readonly convergenceMs: number | null;
  readonly peakRss: Record<string, number>;
  readonly exits: DaemonExit[];
  readonly logDir: string;
  /** the printed summary, line by line */
  readonly summary: string[];
}

const MB = 1024 * 1024;

async function settle(sites: readonly Site[], tracker: Tracker, timeoutMs: number, say: (l: string) => void): Promise<{ findings: Findings; ms: number | null }> {
  const t0 = Date.now();
  let last: Findings | null = null;
  for (let i = 0; i < 10_000 && Date.now() - t0 < timeoutMs; i++) {
    try {
      const c = await Promise.all(sites.map((s) => counts(s)));
      const quiet = c.every((x) => x === c[0]) && c[0]!.endsWith(',0');
      if (quiet || last === null || i % 10 === 0) {
        last = check(await Promise.all(sites.map((s) => readNode(s))), tracker);
        if (failures(last) === 0) return { findings: last, ms: Date.now() - t0 };
      }
    } catch (e) {
      say(`settling: ${(e as Error).message}`);
    }
    await sleep(1000);
  }
  say('the tree did not converge in time; checking it as it is');
  return { findings: check(await Promise.all(sites.map((s) => readNode(s))), tracker), ms: null };
}

export async function runChaos(o: ChaosOptions, cleanup = new Cleanup()): Promise<ChaosResult> {
  const t0 = Date.now();
  const say = (line: string): void => o.say(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const logDir = await mkdtemp(join(tmpdir(), 'spokesync-chaos-'));
  let keep = o.keepLogs === true;
  cleanup.add('remove the log directory', async () => { if (!keep) await rm(logDir, { recursive: true, force: true }); });
  try {
    const sites = await startTree({ dir: logDir, cleanup, say, restartDelayMs: 2000 });
    const sampler = setInterval(() => { for (const s of sites) s.daemon.sample(); }, 1000);
    cleanup.add('stop sampling memory', async () => clearInterval(sampler));

    const tracker = new Tracker();
    const writers = sites.map((s) => new Writer({
      node: s.id, index: s.index, port: () => s.server.port, tracker, rng: rng(o.seed * 31 + s.index), paceMs: o.paceMs,
    }));
    cleanup.add('stop the writers', async () => { await Promise.all(writers.map((w) => w.stop())); });
    const faults = new Faults(sites, rng(o.seed), o.faultsPerMinute, say, o.faultKinds ?? FAULT_KINDS);
    say(`writing on every node and injecting faults for ${o.seconds} s (seed ${o.seed}, ${o.faultsPerMinute} faults/min) ...`);
    const end = Date.now() + o.seconds * 1000;
    for (const w of writers) w.start();
    faults.start(end);
    while (Date.now() < end) await sleep(Math.min(1000, end - Date.now()));
    await Promise.all(writers.map((w) => w.stop()));
    await faults.heal();
    say(`faults stopped after ${faults.events.length}; writes stopped; every daemon and link up again; settling ...`);
    const settled = await settle(sites, tracker, o.settleSeconds * 1000, say);
    for (const s of sites) s.daemon.sample();

    const findings = settled.findings;
    const peakRss = Object.fromEntries(sites.map((s) => [s.id, s.daemon.peakRss]));
    // a refused start is allowed only right after a fault on that node's database or daemon
    const exits = sites.flatMap((s) => s.daemon.exits).map((e) => ({
      ...e,
      refusedStart: e.refusedStart && faults.events.some((f) => f.node === e.node && (f.kind === 'db-crash' || f.kind === 'daemon-kill') &&
        f.at >= e.at - e.uptimeMs - 10_000 && f.at <= e.at),
    }));
    const writes = tracker.counts();
    const problems: string[] = [];
    if (failures(findings) > 0) problems.push(...findings.details);
    if (settled.ms === null) problems.push(`no convergence within ${o.settleSeconds} s`);
    for (const [node, rss] of Object.entries(peakRss)) {
      if (rss > o.rssLimitBytes) problems.push(`${node}: peak RSS ${(rss / MB).toFixed(0)} MB above ${(o.rssLimitBytes / MB).toFixed(0)} MB`);
    }
    for (const e of exits.filter((x) => !x.refusedStart)) {
      problems.push(`${e.node}: daemon exited on its own (${e.code ?? e.signal}${e.errorCode ? `, ${e.errorCode}` : ''}${e.crash ? ', crash' : ''}) at ${((e.at - t0) / 1000).toFixed(1)} s, ${(e.uptimeMs / 1000).toFixed(1)} s after its start`);
    }
    if (writes.committed === 0) problems.push('no transaction committed: the writers did not run');
    const ok = problems.length === 0;
    keep ||= !ok;

    const fc = faults.counts();
    await writeFile(join(logDir, 'faults.log'), faults.events.map((e) =>
      `${new Date(e.at).toISOString()} ${e.kind} ${e.node} ${e.detail}`).join('\n') + '\n');
    const errorLines: string[] = [];
    for (const s of sites) {
      const errs = [...(await logErrors(s.daemon.logFile))].sort((a, b) => b[1] - a[1]);
      if (errs.length > 0) errorLines.push(`  ${s.id}: ${errs.slice(0, 4).map(([m, k]) => `${k}× ${m}`).join('; ')}`);
    }
    const summary = [
      `spokesync chaos: seed ${o.seed}; tree p ← m ← (l1, l2), p ← l3; ${o.seconds} s of writes and faults at ${o.faultsPerMinute}/min (${(o.faultKinds ?? FAULT_KINDS).join(', ')})`,
      `faults: ${faults.events.length} (${FAULT_KINDS.map((k) => `${k} ${fc[k]}`).join(', ')})`,
      `writes: ${writes.txns} transactions (${writes.committed} committed, ${writes.failed} rolled back, ${writes.unknown} commit unknown); committed: ${writes.rows} rows inserted, ${writes.edits} edits, ${writes.deletes} deletes`,
      `convergence: ${settled.ms === null ? `none within ${o.settleSeconds} s` : `${(settled.ms / 1000).toFixed(1)} s after the faults stopped`}`,
      `lost ${findings.lost}, duplicated ${findings.duplicated}, diverged ${findings.diverged}, partial ${findings.partial}, wrong ${findings.wrong}, quarantined ${findings.quarantined} (conflicts recorded: ${findings.conflicts})`,
      ...(findings.lost > 0 ? [`lost, by node: ${Object.entries(findings.lostOn).map(([k, v]) => `${k} ${v}`).join(', ')}`] : []),
      ...(findings.diverged > 0 ? [`diverged, by table: ${Object.entries(findings.divergedIn).map(([k, v]) => `${k} ${v}`).join(', ')}`] : []),
      `peak RSS (limit ${(o.rssLimitBytes / MB).toFixed(0)} MB): ${sites.map((s) => `${s.id} ${(s.daemon.peakRss / MB).toFixed(0)} MB`).join(', ')}`,
      `daemon starts: ${sites.map((s) => `${s.id} ${s.daemon.starts}`).join(', ')}; exits not injected: ${exits.length} (crashes ${exits.filter((e) => e.crash).length}; starts refused (node still held, or its database lost mid-start), restarted: ${exits.filter((e) => e.refusedStart).length}, ${exits.filter((e) => e.refusedStart && e.unnamed).length} of them as "unexpected error")`,
      `error-level log lines (reported, not failures): ${errorLines.length === 0 ? 'none' : ''}`,
      ...errorLines,
      ok ? 'result: OK' : `result: FAILED (${problems.length} problems; logs kept in ${logDir})`,
      ...problems.slice(0, 30).map((p) => `  ${p}`),
    ];
    for (const e of exits.filter((x) => !x.refusedStart).slice(0, 3)) summary.push(`  ${e.node} log before its exit:`, ...e.logTail.split('\n').slice(-12).map((l) => `    ${l.slice(0, 400)}`));
    return { ok, problems, faults: fc, writes, findings, convergenceMs: settled.ms, peakRss, exits, logDir, summary };
  } catch (e) {
    keep = true;
    throw e;
  } finally {
    await cleanup.run();
  }
}
