// Which rows of each origin are held by a quarantined change set (pure). A
// later change set of that origin touching one of them (writing it, or
// referencing it) must wait behind it; other change sets go on.
import type { PlannedEntry } from './validate.js';

export class Holds {
  private readonly rows = new Map<string, Map<string, string>>();
  /** origins whose quarantined change sets could not be read: everything of theirs waits */
  private readonly whole = new Map<string, string>();

  /** The quarantined change id that entry must wait behind, if any. */
  heldBy(e: PlannedEntry): string | undefined {
    const all = this.whole.get(e.cs.origin);
    if (all !== undefined) return all;
    const rows = this.rows.get(e.cs.origin);
    if (!rows) return undefined;
    for (const k of e.touches) {
      const by = rows.get(k);
      if (by !== undefined) return by;
    }
    return undefined;
  }

  /** entry is in quarantine: hold the rows it writes. */
  hold(e: PlannedEntry): void {
    let rows = this.rows.get(e.cs.origin);
    if (!rows) this.rows.set(e.cs.origin, (rows = new Map()));
    for (const k of e.writes) if (!rows.has(k)) rows.set(k, e.cs.id);
  }

  holdOrigin(origin: string, changeId: string): void {
    if (!this.whole.has(origin)) this.whole.set(origin, changeId);
  }

  clone(): Holds {
    const c = new Holds();
    for (const [o, m] of this.rows) c.rows.set(o, new Map(m));
    for (const [o, id] of this.whole) c.whole.set(o, id);
    return c;
  }
}
