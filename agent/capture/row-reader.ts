// A reader of binlog row images: a buffer, a position and the end of the
// event's row bytes. Every read is checked against that end, so an image that
// does not fit its event is an error (RowImageOverrun), never a position lost.
import { SpokesyncError } from '../../apply/core/errors.js';

/** A row image reads past the end of its rows event: the event is not what its table map says. */
export class RowImageOverrun extends SpokesyncError {
  constructor(readonly at: number, readonly wanted: number, readonly end: number) {
    super('SPOKESYNC_E_BINLOG_ROW', `a row image runs past the end of its rows event (${wanted} bytes at ${at}, the event ends at ${end})`);
    this.name = 'RowImageOverrun';
  }
}

const EMPTY = Buffer.alloc(0);

export class RowReader {
  /** the bytes being read */
  buf: Buffer = EMPTY;
  /** where the next read starts */
  pos = 0;
  /** where the event's row bytes end: nothing at or after it is read */
  end = 0;

  /** Reads `buf` from `pos`, up to `end`. */
  reset(buf: Buffer, pos: number, end: number): this {
    if (end > buf.length) throw new RowImageOverrun(pos, end - pos, buf.length);
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    return this;
  }

  /** The position of the next `n` bytes, which the reader moves past. */
  take(n: number): number {
    const p = this.pos;
    const next = p + n;
    // (a NaN or negative n is caught too)
    if (!(next <= this.end && next >= p)) throw new RowImageOverrun(p, n, this.end);
    this.pos = next;
    return p;
  }

  /** One unsigned byte. */
  u8(): number {
    return this.buf[this.take(1)]!;
  }

  /** An unsigned little-endian length of `size` bytes (1 to 4). */
  length(size: number): number {
    const p = this.take(size);
    const b = this.buf;
    switch (size) {
      case 1:
        return b[p]!;
      case 2:
        return b[p]! | (b[p + 1]! << 8);
      case 3:
        return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16);
      default:
        return b.readUInt32LE(p);
    }
  }

  /**
   * Passes over one value, given its column's entry in RowPlan.sizes: its
   * size when fixed (> 0), else minus the size of its length prefix.
   */
  skip(size: number): void {
    if (size > 0) this.take(size);
    else this.take(this.length(-size));
  }
}
