// What the writers did, as the writers saw it: every transaction with its
// outcome (committed: COMMIT answered OK; failed: rolled back before COMMIT was
// sent; unknown: COMMIT sent, answer lost to a crash), the rows it inserted or
// deleted and the values it wrote to the tracked columns. The checks compare
// the nodes against this record.
import type { Table } from './schema.js';

export type Outcome = 'committed' | 'failed' | 'unknown';

/** A row by identity: uuid, the person's uuid for patient, the property for setting. */
export interface RowRef {
  readonly table: Table;
  readonly id: string;
}

export interface Write extends RowRef {
  readonly value: string;
  readonly node: string;
  /** network-wide order in which the writers issued it (a node's writes are in its commit order) */
  readonly seq: number;
  /** the value the row was inserted with (not an edit) */
  readonly initial: boolean;
}

export interface Txn {
  readonly node: string;
  readonly kind: string;
  outcome: Outcome;
  readonly inserts: RowRef[];
  readonly deletes: RowRef[];
  readonly writes: Write[];
}

export const rowKey = (r: RowRef): string => `${r.table}/${r.id}`;

export class Tracker {
  readonly txns: Txn[] = [];
  private seq = 0;
  /** committed rows the writers pick from for visits, encounters, obs and edits */
  readonly pools = {
    person: [] as string[],
    visit: [] as string[],
    encounter: [] as string[],
    obs: [] as string[],
    setting: [] as string[],
  };
  /** committed deletable obs, per origin node (only the origin deletes them, nobody edits them) */
  readonly scratch = new Map<string, string[]>();

  begin(node: string, kind: string): Txn {
    return { node, kind, outcome: 'failed', inserts: [], deletes: [], writes: [] };
  }

  write(t: Txn, table: Table, id: string, value: string, initial = false): void {
    t.writes.push({ table, id, value, node: t.node, seq: ++this.seq, initial });
  }

  /** Records the transaction's outcome; committed rows join the pools. */
  end(t: Txn, outcome: Outcome, pooled: ReadonlyArray<{ pool: keyof Tracker['pools'] | 'scratch'; id: string }> = []): void {
    t.outcome = outcome;
    this.txns.push(t);
    if (outcome !== 'committed') return;
    for (const p of pooled) {
      if (p.pool === 'scratch') {
        const own = this.scratch.get(t.node) ?? [];
        own.push(p.id);
        this.scratch.set(t.node, own);
      } else {
        this.pools[p.pool].push(p.id);
      }
    }
    for (const d of t.deletes) {
      const own = this.scratch.get(t.node);
      const i = own?.indexOf(d.id) ?? -1;
      if (own && i >= 0) own.splice(i, 1);
    }
  }

  /** Transactions by outcome; rows inserted, edits and deletes of the committed ones. */
  counts(): { txns: number; committed: number; failed: number; unknown: number; rows: number; edits: number; deletes: number } {
    const c = { txns: 0, committed: 0, failed: 0, unknown: 0, rows: 0, edits: 0, deletes: 0 };
    for (const t of this.txns) {
      c.txns++;
      c[t.outcome]++;
      if (t.outcome !== 'committed') continue;
      c.rows += t.inserts.length;
      c.edits += t.writes.filter((w) => !w.initial).length;
      c.deletes += t.deletes.length;
    }
    return c;
  }
}
