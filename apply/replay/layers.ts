// A map with nested layers that commit into the layer below or roll back,
// mirroring the transaction and its savepoints: anything learned inside a
// change set that is rolled back is forgotten with it.

const GONE = Symbol('gone');

export class Layers<V> {
  private readonly stack: Map<string, V | typeof GONE>[] = [new Map()];

  /** Entries in the base layer. */
  get size(): number {
    return this.stack[0]!.size;
  }

  get depth(): number {
    return this.stack.length;
  }

  /** Opens a layer on top (a transaction or savepoint begins). */
  begin(): void {
    this.stack.push(new Map());
  }

  /** Folds the top layer into the one below. */
  commit(): void {
    if (this.stack.length < 2) throw new Error('Layers.commit without begin');
    const top = this.stack.pop()!;
    const below = this.stack[this.stack.length - 1]!;
    const base = this.stack.length === 1;
    if (below.size === 0 && !base) {
      this.stack[this.stack.length - 1] = top;
      return;
    }
    for (const [k, v] of top) {
      if (v === GONE && base) below.delete(k);
      else below.set(k, v);
    }
  }

  /** Drops the top layer. */
  rollback(): void {
    if (this.stack.length < 2) throw new Error('Layers.rollback without begin');
    this.stack.pop();
  }

  /** Drops every layer above the base (the transaction failed as a whole). */
  rollbackAll(): void {
    this.stack.length = 1;
  }

  get(key: string): V | undefined {
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const v = this.stack[i]!.get(key);
      if (v === GONE) return undefined;
      if (v !== undefined) return v;
    }
    return undefined;
  }

  set(key: string, value: V): void {
    this.stack[this.stack.length - 1]!.set(key, value);
  }

  delete(key: string): void {
    this.stack[this.stack.length - 1]!.set(key, GONE);
  }

  /** Forgets every key that starts with prefix, in every layer visible from the top. */
  deletePrefix(prefix: string): void {
    const keys = new Set<string>();
    for (const layer of this.stack) for (const k of layer.keys()) if (k.startsWith(prefix)) keys.add(k);
    for (const k of keys) this.delete(k);
  }

  /** The entries of the layers above the base, merged (top wins). */
  pending(): Map<string, V> {
    const out = new Map<string, V>();
    for (let i = 1; i < this.stack.length; i++) {
      for (const [k, v] of this.stack[i]!) {
        if (v === GONE) out.delete(k);
        else out.set(k, v);
      }
    }
    return out;
  }

  /** Empties the base layer (only valid with no layer open). */
  clear(): void {
    if (this.stack.length !== 1) throw new Error('Layers.clear with layers open');
    this.stack[0]!.clear();
  }
}
