// What the applier remembers between batches is bounded: the versions it wrote
// (kept until capture has recorded them) are forgotten once there are 25,000,
// after waiting for capture.
import t from 'tap';
import { applyEnv, changeSet, entries, personInsert, uuid } from './apply-fixture.js';

void t.test('the versions overlay stays bounded over many batches', async (t) => {
  const env = await applyEnv();
  t.teardown(() => env.close());
  let waited = 0;
  const applier = await env.applier({ waitForCapture: async () => { waited++; } });
  const overlay = (applier as unknown as { deps: { versions: { remembered: number } } }).deps.versions;
  let most = 0;
  for (let b = 0; b < 30; b++) {
    const css = Array.from({ length: 100 }, (_, i) => changeSet('there', Array.from({ length: 10 }, (_, j) =>
      personInsert(uuid(), `p ${b} ${i} ${j}`, { gender: 'F', note: 'n' })), BigInt(1e15) + BigInt(b * 1000 + i)));
    const r = await applier.applyBatch('there', entries(...css));
    if (r.applied !== 100) t.fail(`batch ${b}: applied ${r.applied}`);
    most = Math.max(most, overlay.remembered);
  }
  t.ok(waited > 0, `it waited for capture ${waited} times, then forgot`);
  t.ok(most <= 26_000, `at most ${most} versions remembered after inserting 30,000 rows`);
  t.equal(await env.count('app.person'), 30_000);
});
