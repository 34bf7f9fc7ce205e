// Hybrid logical clock: 48 bits of milliseconds, 16 bits of counter, packed in a
// uint64 and written as a decimal string. Ties between nodes break on node id.

export const HLC_COUNTER_BITS = 16n;
/** the largest stamp the encoding holds (uint64) */
export const MAX_HLC = (1n << 64n) - 1n;
/** the largest millisecond count the 48-bit field holds */
export const MAX_HLC_MS = 2 ** 48 - 1;

/** clock.maxDrift's default: how far ahead of a receiver's clock a stamp may be */
export const DEFAULT_MAX_DRIFT_MS = 86_400_000;

export function packHlc(ms: number, counter: number): bigint {
  return (BigInt(ms) << HLC_COUNTER_BITS) | BigInt(counter);
}

export function unpackHlc(h: bigint): { ms: number; counter: number } {
  return { ms: Number(h >> HLC_COUNTER_BITS), counter: Number(h & 0xffffn) };
}

/** A physical time in ms as the 48-bit field holds it (NaN and negatives are 0, beyond the field its top). */
export function hlcMs(ms: number): number {
  return Number.isFinite(ms) ? Math.min(Math.max(0, Math.floor(ms)), MAX_HLC_MS) : ms > 0 ? MAX_HLC_MS : 0;
}

/** The time a stamp stands for, for messages ('+010889-08-02T05:31:50.655Z' for the top of the range). */
export function hlcTime(h: bigint): string {
  return new Date(unpackHlc(h).ms).toISOString();
}

export interface HlcClamp {
  /** observe: a received stamp too far ahead; start: a starting value too far ahead; tick: the encoding's end */
  readonly kind: 'observe' | 'start' | 'tick';
  readonly given: bigint;
  readonly kept: bigint;
}

export interface HlcOptions {
  /** how far ahead of now() a received or starting stamp may move the clock (no bound but the encoding's when absent) */
  readonly maxAheadMs?: number;
  /** called when a stamp was clamped (to log it) */
  readonly onClamp?: (c: HlcClamp) => void;
  /** physical time at which a starting value beyond maxAheadMs is clamped (default now()) */
  readonly startAt?: number;
}

/**
 * A clock that only moves forward: local events tick, received stamps are merged.
 * Whatever it is given, it never leaves the encoding, and (with maxAheadMs) a
 * received stamp never moves it further ahead of physical time than that.
 */
export class Hlc {
  private last: bigint;
  constructor(private readonly now: () => number, start: bigint = 0n, private readonly opts: HlcOptions = {}) {
    const given = start < 0n ? 0n : start;
    const top = this.ceiling(opts.startAt ?? now());
    this.last = given > top ? top : given;
    if (this.last !== start) opts.onClamp?.({ kind: 'start', given: start, kept: this.last });
  }

  /** The highest value a merge may move the clock to at physical time nowMs. */
  private ceiling(nowMs: number): bigint {
    const ahead = this.opts.maxAheadMs;
    // without a bound, keep a counter's worth of room so ticks after a merge stay in the encoding
    if (ahead === undefined) return packHlc(MAX_HLC_MS, 0);
    return packHlc(hlcMs(nowMs + ahead), 0xffff);
  }

  /** The stamp tick() would give at physical time nowMs, without taking it. */
  next(nowMs: number): bigint {
    const phys = packHlc(hlcMs(nowMs), 0);
    const n = phys > this.last ? phys : this.last + 1n;
    return n > MAX_HLC ? MAX_HLC : n;
  }

  /** Stamp for a local event at physical time now(). */
  tick(): bigint {
    const n = this.next(this.now());
    if (n === this.last) this.opts.onClamp?.({ kind: 'tick', given: n + 1n, kept: n });
    this.last = n;
    return n;
  }

  /** Merge a stamp seen from another node, so later local stamps exceed it (within the bounds). */
  observe(remote: bigint): void {
    const top = this.ceiling(this.now());
    const kept = remote > top ? top : remote;
    if (kept !== remote) this.opts.onClamp?.({ kind: 'observe', given: remote, kept });
    if (kept > this.last) this.last = kept;
  }

  get value(): bigint {
    return this.last;
  }
}

/** Total order of versions: stamp first, node id breaks ties. Negative when a < b. */
export function compareVersions(a: { hlc: string; node: string }, b: { hlc: string; node: string }): number {
  const ha = BigInt(a.hlc);
  const hb = BigInt(b.hlc);
  if (ha !== hb) return ha < hb ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}
