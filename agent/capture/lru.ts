// The resolver's memory of identities across groups: two generations of at
// most max/2 entries each, keyed by (table+column, value). A hit in the old
// generation moves the entry to the new one. The generations turn over only
// between groups (turn()): whatever a group looks up or learns stays known
// until the group is written, however much it learns, and at most max/2
// entries carry over beyond that. Nothing is deleted from a Map (a Map used as
// an LRU by delete-and-set slows down on its deleted slots).
import { Map2 } from './map2.js';

export class GroupCache {
  private cur = new Map2<string>();
  private old = new Map2<string>();
  private curSize = 0;
  private readonly half: number;

  constructor(max: number) {
    if (max < 2) throw new Error('a cache needs room for two entries');
    this.half = Math.floor(max / 2);
  }

  /** Entries in the newer generation. */
  get recent(): number {
    return this.curSize;
  }

  get(pair: string, value: string): string | undefined {
    const v = this.cur.get(pair, value);
    if (v !== undefined) return v;
    const o = this.old.get(pair, value);
    if (o !== undefined) this.put(pair, value, o);
    return o;
  }

  set(pair: string, value: string, identity: string): void {
    // (a value left in the old generation is never read again: the new one is found first)
    this.put(pair, value, identity);
  }

  /** Between groups: the newer generation becomes the older one once it holds max/2 entries. */
  turn(): void {
    if (this.curSize < this.half) return;
    this.old = this.cur;
    this.cur = new Map2();
    this.curSize = 0;
  }

  clear(): void {
    this.cur = new Map2();
    this.old = new Map2();
    this.curSize = 0;
  }

  private put(pair: string, value: string, identity: string): void {
    const inner = this.cur.inner(pair);
    const had = inner.size;
    inner.set(value, identity);
    this.curSize += inner.size - had;
  }
}
