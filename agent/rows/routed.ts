// Row filters at routing time: what a child with `rows` receives of each
// journal row is decided at the parent, before anything is encoded for it.
// Its change sets carry only the ops whose rows belong (membership.ts); one
// left with none does not go (its cursor moves past it: nothing is lost, the
// child was never to hold those rows), and the ops kept from it are counted in
// `peers.rows_filtered` (status).
//
// A change set that went once goes the same way again (a batch sent again after
// a lost answer): what went is kept in `routed` until the child acknowledges
// it, since membership may change meanwhile and a receiver refuses an id that
// comes back with other content.
import type { Queryable } from '../../apply/core/db.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import type { ChangeSet } from '../../apply/core/model.js';
import { bodyXml, storedBody } from '../journal/body.js';
import { decodeDeleted } from '../journal/deleted.js';
import { utf8Bytes } from '../journal/writer.js';
import type { Membership, OpFacts } from './membership.js';

/** A journal row about to go: its seq, its body (already trimmed to the child's tables), what its deletes removed. */
export interface RoutedItem {
  readonly seq: string;
  readonly body: string;
  readonly deleted: string | null;
}

export interface RowRouteOptions {
  /** the state schema's database */
  readonly db: Queryable;
  readonly stateSchema: string;
  readonly peer: string;
  /** membership for this child, asked of the application schema */
  readonly membership: Membership;
}

export class RowRoute {
  private readonly routed: string;
  private readonly peers: string;
  constructor(private readonly o: RowRouteOptions) {
    this.routed = stateTable(o.stateSchema, 'routed');
    this.peers = stateTable(o.stateSchema, 'peers');
  }

  /**
   * What goes of each item: the body to send, or null when none of its ops
   * belongs. `after`: the child's acknowledged seq (what went up to it is forgotten).
   */
  async filter(after: string, items: readonly RoutedItem[]): Promise<Map<string, string | null>> {
    const { db, peer } = this.o;
    const out = new Map<string, string | null>();
    await db.exec(`DELETE FROM ${this.routed} WHERE peer = ? AND seq <= ?`, [peer, after]);
    if (items.length === 0) return out;
    const went = await db.query<{ seq: string | number; body: Buffer | null }>(
      `SELECT seq, body FROM ${this.routed} WHERE peer = ? AND seq IN (?)`, [peer, items.map((i) => i.seq)]);
    const before = new Map(went.map((w) => [String(w.seq), w.body]));
    const fresh: { item: RoutedItem; cs: ChangeSet; facts: OpFacts[] }[] = [];
    for (const item of items) {
      if (before.has(item.seq)) {
        const b = before.get(item.seq)!;
        out.set(item.seq, b === null ? item.body : bodyXml(b).toString('utf8'));
        continue;
      }
      const cs = decodeChangeSet(item.body);
      const deleted = decodeDeleted(item.deleted);
      fresh.push({ item, cs, facts: cs.ops.map((op) => ({ op, oldRefs: op.kind === 'delete' ? deleted.get(op.table)?.get(op.id) : undefined })) });
    }
    if (fresh.length === 0) return out;
    const goes = await this.o.membership.decide(fresh.flatMap((f) => f.facts));
    let i = 0;
    let filtered = 0;
    const [mark] = await db.query<{ s: string | number }>(`SELECT rows_filtered_seq AS s FROM ${this.peers} WHERE peer = ?`, [peer]);
    const counted = BigInt(mark?.s ?? 0);
    let top = counted;
    const keep: [string, string, Buffer | null][] = [];
    for (const { item, cs } of fresh) {
      const ops = cs.ops.filter(() => goes[i++]!);
      const seq = BigInt(item.seq);
      if (seq > counted) {
        filtered += cs.ops.length - ops.length;
        if (seq > top) top = seq;
      }
      if (ops.length === 0) {
        out.set(item.seq, null);
        continue;
      }
      const body = ops.length === cs.ops.length ? item.body : encodeChangeSet({ ...cs, ops });
      out.set(item.seq, body);
      keep.push([peer, item.seq, body === item.body ? null : storedBody(utf8Bytes(body))]);
    }
    if (keep.length > 0) await db.exec(`INSERT IGNORE INTO ${this.routed} (peer, seq, body) VALUES ?`, [keep]);
    if (top > counted) {
      await db.exec(
        `INSERT INTO ${this.peers} (peer, rows_filtered, rows_filtered_seq) VALUES (?, ?, ?)
         ON DUPLICATE KEY UPDATE rows_filtered = rows_filtered + IF(rows_filtered_seq < VALUES(rows_filtered_seq), VALUES(rows_filtered), 0),
                                 rows_filtered_seq = GREATEST(rows_filtered_seq, VALUES(rows_filtered_seq))`,
        [peer, filtered, String(top)],
      );
    }
    return out;
  }
}
