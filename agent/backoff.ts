// The one backoff of spokesync: the exchange client hands it to p-retry,
// capture's reconnect loop, quarantine retries and the daemon's start read its delays; all double
// from a first delay up to a cap.
import type { Options } from 'p-retry';

export interface Backoff {
  /** the delay after the first failure (its longest, with jitter) */
  readonly firstMs: number;
  /** no delay is longer */
  readonly maxMs: number;
  /** spread each delay over [50%, 100%] of its length, so that nodes failing together do not retry in step */
  readonly jitter: boolean;
}

/** The exchange client's: a parent many children retry against gets them spread out. */
export const EXCHANGE_BACKOFF: Backoff = { firstMs: 1000, maxMs: 60_000, jitter: true };

/** A quarantined change set's next try, per change set: from seconds up to an hour. */
export const QUARANTINE_BACKOFF: Backoff = { firstMs: 10_000, maxMs: 3_600_000, jitter: false };

/** The daemon's waits at start for a database that is not up yet (agent/start-wait.ts). */
export const START_BACKOFF: Backoff = { firstMs: 1000, maxMs: 60_000, jitter: false };

/** Capture's reconnects to its own server. */
export const CAPTURE_BACKOFF: Backoff = { firstMs: 250, maxMs: 30_000, jitter: false };

/** The delay after `failures` failures (1 or more), before any jitter: doubling from firstMs, capped. Pure. */
export function backoffDelay(b: Backoff, failures: number): number {
  return Math.min(b.maxMs, b.firstMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
}

/**
 * p-retry's options for a backoff. p-retry waits minTimeout × factor^(n-1),
 * times a random factor in [1, 2) when randomized, then caps it at maxTimeout:
 * half the delay randomized so is [50%, 100%] of it.
 */
export function retryDelays(b: Backoff): Required<Pick<Options, 'minTimeout' | 'maxTimeout' | 'factor' | 'randomize'>> {
  return { minTimeout: b.jitter ? b.firstMs / 2 : b.firstMs, maxTimeout: b.maxMs, factor: 2, randomize: b.jitter };
}

/** A wait that `signal` ends early, rejecting with its reason. */
export const realSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(signal?.reason as Error); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
