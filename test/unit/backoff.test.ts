// The one backoff: its delays, and p-retry waiting them when handed retryDelays().
import t from 'tap';
import pRetry from 'p-retry';
import { CAPTURE_BACKOFF, EXCHANGE_BACKOFF, backoffDelay, retryDelays, type Backoff } from '../../agent/backoff.js';
import { backoffMs } from '../../agent/capture/waiters.js';

void t.test('delays double from the first, up to the cap', async (t) => {
  const table: [number, number][] = [[1, 1000], [2, 2000], [3, 4000], [6, 32_000], [7, 60_000], [100, 60_000]];
  for (const [n, want] of table) t.equal(backoffDelay(EXCHANGE_BACKOFF, n), want, `exchange, after ${n} failures`);
  t.equal(backoffDelay({ firstMs: 10, maxMs: 15, jitter: true }, 2), 15, 'custom first delay and cap');
  for (let n = 1; n <= 40; n++) {
    t.equal(backoffMs(n), Math.min(30_000, 250 * 2 ** Math.min(n - 1, 7)), `capture, after ${n} failures: 250 ms doubling, at most 30 s`);
  }
  t.equal(backoffDelay(CAPTURE_BACKOFF, 1), 250);
});

void t.test('p-retry options: half the delay randomized ×[1, 2) with jitter, the delay itself without', async (t) => {
  t.same(retryDelays(EXCHANGE_BACKOFF), { minTimeout: 500, maxTimeout: 60_000, factor: 2, randomize: true });
  t.same(retryDelays(CAPTURE_BACKOFF), { minTimeout: 250, maxTimeout: 30_000, factor: 2, randomize: false });
});

/** Runs p-retry on an always-failing task; the times of its attempts. */
async function attempts(b: Backoff, tries: number): Promise<number[]> {
  const at: number[] = [];
  await pRetry(() => {
    at.push(performance.now());
    throw new Error('down');
  }, { retries: tries - 1, ...retryDelays(b) }).catch(() => undefined);
  return at;
}

void t.test('p-retry waits what backoffDelay says: within [50%, 100%] with jitter, exactly without', async (t) => {
  const jittered: Backoff = { firstMs: 40, maxMs: 100, jitter: true };
  const at = await attempts(jittered, 5);
  t.equal(at.length, 5, 'five attempts');
  for (let i = 1; i < at.length; i++) {
    const gap = at[i]! - at[i - 1]!;
    const most = backoffDelay(jittered, i);
    t.ok(gap >= most / 2 - 2 && gap < most + 200, `wait ${i}: ${gap.toFixed(1)} ms within [${most / 2}, ${most}]`);
  }
  const plain: Backoff = { firstMs: 20, maxMs: 50, jitter: false };
  const at2 = await attempts(plain, 4);
  for (let i = 1; i < at2.length; i++) {
    const gap = at2[i]! - at2[i - 1]!;
    t.ok(gap >= backoffDelay(plain, i) - 2 && gap < backoffDelay(plain, i) + 200, `wait ${i}: ${gap.toFixed(1)} ms, ${backoffDelay(plain, i)} planned`);
  }
});
