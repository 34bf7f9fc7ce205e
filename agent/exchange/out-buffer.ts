// Output of the custom decoders, written into fixed pieces and counted as it
// grows: no small Buffer per token, and nothing past the limit is ever allocated.
import { SpokesyncError } from '../../apply/core/errors.js';

const PIECE = 64 * 1024;

export class BoundedOutput {
  private readonly pieces: Buffer[] = [];
  private cur = Buffer.allocUnsafe(PIECE);
  private at = 0;
  private total = 0;

  constructor(private readonly max: number) {}

  /** Counts `n` more bytes, failing once the output would pass the limit. */
  private grow(n: number): void {
    this.total += n;
    if (this.total > this.max) {
      throw new SpokesyncError('SPOKESYNC_E_BATCH_TOO_LARGE', `the inflated body is larger than ${this.max} bytes`);
    }
  }

  bytes(src: Buffer, start = 0, end = src.length): void {
    this.grow(end - start);
    while (start < end) {
      if (this.at === PIECE) this.next();
      const n = src.copy(this.cur, this.at, start, Math.min(end, start + PIECE - this.at));
      this.at += n;
      start += n;
    }
  }

  /** A string whose characters are bytes (latin1). */
  latin1(s: string): void {
    this.grow(s.length);
    for (let from = 0; from < s.length;) {
      if (this.at === PIECE) this.next();
      const n = Math.min(s.length - from, PIECE - this.at);
      this.cur.write(n === s.length ? s : s.slice(from, from + n), this.at, n, 'latin1');
      this.at += n;
      from += n;
    }
  }

  byte(b: number): void {
    this.grow(1);
    if (this.at === PIECE) this.next();
    this.cur[this.at++] = b;
  }

  private next(): void {
    this.pieces.push(this.cur);
    this.cur = Buffer.allocUnsafe(PIECE);
    this.at = 0;
  }

  /** Everything written, in one buffer. */
  done(): Buffer {
    return Buffer.concat([...this.pieces, this.cur.subarray(0, this.at)], this.total);
  }
}
