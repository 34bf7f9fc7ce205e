// A short, fixed-seed run of the fault test (`npm run chaos` runs it longer):
// five daemon processes in a three-level tree, writes on every node for 45 s
// while daemons and mariadbd are killed with -9 and links are cut, stalled and
// dropped. It checks that, once the faults stop and the tree settles:
//   - every committed row is on every node (lost = 0), exactly once (duplicated = 0);
//   - every transaction whose COMMIT answer was lost is on all nodes or none (partial = 0);
//   - no rolled-back or deleted row and no stale or rolled-back value is anywhere (wrong = 0);
//   - every synced table is identical on every node by identity (diverged = 0);
//   - the quarantine is empty everywhere, no daemon went above 150 MB peak RSS,
//     and no daemon exited other than by the injected kills (a start refused with
//     exit 1 in its first seconds, right after a fault on its own database or daemon, is
//     retried, as systemd does, and allowed).
import t from 'tap';
import { Cleanup } from '../../deploy/demo-support.js';
import { runChaos } from '../chaos/chaos.js';

void t.test('45 s of random faults on a five-node tree: nothing lost, duplicated or diverged', async (t) => {
  const cleanup = new Cleanup();
  t.teardown(() => cleanup.run());
  const r = await runChaos({
    seconds: 45, seed: 4242, faultsPerMinute: 20, paceMs: 300, settleSeconds: 240,
    rssLimitBytes: 150 * 1024 * 1024, say: (line) => t.comment(line),
  }, cleanup);
  for (const line of r.summary) t.comment(line);
  t.ok(r.faults['daemon-kill'] + r.faults['db-crash'] + r.faults['link-cut'] + r.faults['link-stall'] + r.faults['link-down'] >= 5, 'faults were injected');
  t.ok(r.writes.committed >= 100, `writes committed (${r.writes.committed})`);
  t.not(r.convergenceMs, null, 'the tree converged');
  t.same(
    { lost: r.findings.lost, duplicated: r.findings.duplicated, partial: r.findings.partial, wrong: r.findings.wrong, diverged: r.findings.diverged, quarantined: r.findings.quarantined },
    { lost: 0, duplicated: 0, partial: 0, wrong: 0, diverged: 0, quarantined: 0 },
    r.findings.details.join('\n'),
  );
  t.same(r.exits.filter((e) => !e.refusedStart).map((e) => `${e.node}: ${e.code ?? e.signal} ${e.errorCode ?? ''}`), [],
    'no daemon exited other than by the injected kills (or refused to start while its database was down)');
  for (const [node, rss] of Object.entries(r.peakRss)) t.ok(rss > 0 && rss <= 150 * 1024 * 1024, `${node}: peak RSS ${(rss / 1048576).toFixed(0)} MB`);
  t.ok(r.ok, r.problems.join('\n'));
});
