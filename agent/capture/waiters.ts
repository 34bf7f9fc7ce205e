// caughtUp() callers waiting for capture to pass a binlog position.
import { CAPTURE_BACKOFF, backoffDelay } from '../backoff.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { comparePositions, formatPosition, type BinlogPosition } from './position.js';

interface Waiter {
  readonly target: BinlogPosition;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class CaughtUpWaiters {
  private waiters: Waiter[] = [];

  constructor(private readonly now: () => number) {}

  /** `why` explains a timeout (the last capture error, if any). */
  add(target: BinlogPosition, timeoutMs: number, why: () => string | undefined = () => undefined): Promise<void> {
    const started = this.now();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        const last = why();
        reject(new SpokesyncError(
          'SPOKESYNC_E_CAPTURE',
          `capture did not reach ${formatPosition(target)} within ${Math.round((this.now() - started) / 1000)} s` +
            (last === undefined ? '' : ` (last error: ${last})`),
        ));
      }, timeoutMs);
      timer.unref();
      this.waiters.push({ target, resolve, reject, timer });
    });
  }

  /** Everything before `processed` is journaled: release the waiters it satisfies. */
  settle(processed: BinlogPosition): void {
    if (this.waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of this.waiters) {
      if (comparePositions(processed, w.target) >= 0) {
        clearTimeout(w.timer);
        w.resolve();
      } else {
        keep.push(w);
      }
    }
    this.waiters = keep;
  }

  rejectAll(e: Error): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(e);
    }
    this.waiters = [];
  }
}

/** A sleep that wake() ends early. */
export function interruptibleSleep(): { sleep: (ms: number) => Promise<void>; wake: () => void } {
  let wakeUp: () => void = () => undefined;
  return {
    sleep: (ms) => new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    }),
    wake: () => wakeUp(),
  };
}

/** One pending wake-up at a time; it never keeps the process alive. */
export class Alarm {
  private timer: NodeJS.Timeout | null = null;

  /** Calls fn in `ms` (at least 10 ms), unless a wake-up is pending already. */
  set(ms: number, fn: () => void): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      fn();
    }, Math.max(10, ms));
    this.timer.unref();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** The wait before capture reconnects after `failures` failures. */
export const backoffMs = (failures: number): number => backoffDelay(CAPTURE_BACKOFF, failures);
