// A bounded map that keeps what was used recently: two generations of at most
// max/2 entries each. A hit in the old generation moves the entry to the new
// one; when the new one is full it becomes the old one (the old one is
// dropped). Nothing is ever deleted from a Map, which keeps lookups fast
// (a Map used as an LRU by delete-and-set slows down on its deleted slots).

export class Lru<K, V> {
  private cur = new Map<K, V>();
  private old = new Map<K, V>();
  private readonly half: number;

  constructor(max: number) {
    if (max < 2) throw new Error('an LRU needs room for two entries');
    this.half = Math.floor(max / 2);
  }

  /** Entries held (an entry in both generations counts once). */
  get size(): number {
    let n = this.cur.size;
    for (const k of this.old.keys()) if (!this.cur.has(k)) n++;
    return n;
  }

  get(key: K): V | undefined {
    const v = this.cur.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o !== undefined) this.put(key, o);
    return o;
  }

  set(key: K, value: V): void {
    // (a value left in the old generation is never read again: the new one is found first)
    if (this.cur.has(key)) this.cur.set(key, value);
    else this.put(key, value);
  }

  clear(): void {
    this.cur = new Map();
    this.old = new Map();
  }

  private put(key: K, value: V): void {
    if (this.cur.size >= this.half) {
      this.old = this.cur;
      this.cur = new Map();
    }
    this.cur.set(key, value);
  }
}
