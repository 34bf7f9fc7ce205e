// Hybrid logical clock: 48 bits of milliseconds, 16 bits of counter, packed in a
// uint64 and written as a decimal string. Ties between nodes break on node id.

export const HLC_COUNTER_BITS = 16n;

export function packHlc(ms: number, counter: number): bigint {
  return (BigInt(ms) << HLC_COUNTER_BITS) | BigInt(counter);
}

export function unpackHlc(h: bigint): { ms: number; counter: number } {
  return { ms: Number(h >> HLC_COUNTER_BITS), counter: Number(h & 0xffffn) };
}

/** A clock that only moves forward: local events tick, received stamps are merged. */
export class Hlc {
  private last: bigint;
  constructor(private readonly now: () => number, start: bigint = 0n) {
    this.last = start;
  }
  /** Stamp for a local event at physical time now(). */
  tick(): bigint {
    const phys = packHlc(this.now(), 0);
    this.last = phys > this.last ? phys : this.last + 1n;
    return this.last;
  }
  /** Merge a stamp seen from another node, so later local stamps exceed it. */
  observe(remote: bigint): void {
    if (remote > this.last) this.last = remote;
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
