// A map keyed by two strings, without building a joined key: each part is a
// string capture already holds (a table name, a key value), whose hash V8
// keeps, where a joined key is a new string to hash for every lookup.

export class Map2<V> {
  private readonly outer = new Map<string, Map<string, V>>();

  get(a: string, b: string): V | undefined {
    return this.outer.get(a)?.get(b);
  }

  set(a: string, b: string, v: V): void {
    this.inner(a).set(b, v);
  }

  /** The map of the entries whose first key is `a` (made when missing). */
  inner(a: string): Map<string, V> {
    let inner = this.outer.get(a);
    if (!inner) this.outer.set(a, (inner = new Map()));
    return inner;
  }

  clear(): void {
    this.outer.clear();
  }

  *values(): IterableIterator<V> {
    for (const inner of this.outer.values()) yield* inner.values();
  }
}

/** The same string for the same pair, so maps keyed by it hash it once. */
export class PairNames {
  private readonly names = new Map2<string>();

  of(a: string, b: string): string {
    let n = this.names.get(a, b);
    if (n === undefined) {
      n = `${a}\u0000${b}`;
      this.names.set(a, b, n);
    }
    return n;
  }
}
