// The memory budget for decoded binlog events. Past it, reading pauses (the
// binlog connection's socket stops being read); it resumes once the queue is
// written down to half the budget. A pause that lasts is ended by closing the
// stream instead (the server drops a reader that does not read for its
// net_write_timeout). Pure: the caller pauses, resumes and closes.

/** Decoded rows take several times their binlog size in memory. */
export const HEAP_FACTOR = 8;
/** A pause longer than this closes the stream. */
export const PAUSE_MS = 15_000;

export class ReadGate {
  private pausedAt: number | null = null;

  constructor(private readonly budget: number, private readonly now: () => number) {}

  get paused(): boolean {
    return this.pausedAt !== null;
  }

  /** Estimated memory held by `queued` bytes of complete transactions and `open` bytes of the one being read. */
  static held(queued: number, open: number): number {
    return (queued + open) * HEAP_FACTOR;
  }

  /**
   * After an event: whether reading must pause now. A transaction alone over
   * the budget is read whole (it is one change set): reading pauses only when
   * there is something complete to write first.
   */
  pauseNow(queued: number, open: number): boolean {
    if (this.pausedAt !== null || queued === 0 || ReadGate.held(queued, open) <= this.budget) return false;
    this.pausedAt = this.now();
    return true;
  }

  /** After a write shrank the queue: resume reading, close the stream (paused too long), or go on waiting. */
  afterWrite(queued: number, open: number): 'resume' | 'close' | 'wait' {
    if (this.pausedAt === null) return 'wait';
    if (queued === 0 || ReadGate.held(queued, open) <= this.budget / 2) {
      this.pausedAt = null;
      return 'resume';
    }
    return this.now() - this.pausedAt > PAUSE_MS ? 'close' : 'wait';
  }

  /** A new stream starts reading. */
  reset(): void {
    this.pausedAt = null;
  }
}
