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
import type { Db, Queryable } from '../../apply/core/db.js';
import type { Logger } from '../../apply/core/log.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import type { ChangeSet, Op } from '../../apply/core/model.js';
import { bodyXml, storedBody } from '../journal/body.js';
import { decodeDeleted } from '../journal/deleted.js';
import { utf8Bytes } from '../journal/writer.js';
import type { RowsLeaving } from '../config/types.js';
import type { Membership, OpFacts } from './membership.js';
import { adjusted } from './membership-sql.js';
import { joinOwners, scanMembers, type ScanResult } from './scan.js';
import { ownersOf } from './owners.js';

/** A journal row about to go: its seq, its body (already trimmed to the child's tables), what its deletes removed. */
export interface RoutedItem {
  readonly seq: string;
  readonly body: string;
  readonly deleted: string | null;
}

export interface RowRouteOptions {
  /** the state schema's database */
  readonly db: Db;
  readonly stateSchema: string;
  /** this node */
  readonly node: string;
  readonly peer: string;
  /** membership for this child, asked of the application schema */
  readonly membership: Membership;
  /** sessions whose default schema is the application's */
  readonly app: Queryable;
  /** the tables that sync with the child */
  readonly tables: ReadonlySet<string>;
  readonly leaving: RowsLeaving;
  /** least time between two scans for membership changes (scan.ts; default 60 s) */
  readonly scanEveryMs?: number;
  readonly log?: Logger;
}

const SCAN_EVERY_MS = 60_000;

/** An owner whose rows a fill carries; `seq`: the fill's journal seq (null: not journaled yet). */
interface Filling {
  readonly table: string;
  readonly identity: string;
  readonly seq: bigint | null;
}

export class RowRoute {
  private readonly routed: string;
  private readonly peers: string;
  private readonly members: string;
  private lastScan = 0;
  constructor(private readonly o: RowRouteOptions) {
    this.routed = stateTable(o.stateSchema, 'routed');
    this.peers = stateTable(o.stateSchema, 'peers');
    this.members = stateTable(o.stateSchema, 'members');
  }

  /**
   * The child's route has reached the end of the journal: every owner row
   * journaled so far went to it or not by routing, so an owner that belongs to
   * it and is not among those it holds has come to belong since (a scan, at
   * most every scanEveryMs).
   */
  async settled(): Promise<void> {
    if (Date.now() - this.lastScan >= (this.o.scanEveryMs ?? SCAN_EVERY_MS)) await this.scan();
  }

  /** Looks for membership changes now (fills and leaves for this child). */
  async scan(): Promise<ScanResult> {
    this.lastScan = Date.now();
    const { membership: m } = this.o;
    return scanMembers({ ...this.o, catalog: m.catalog, filters: m.filters });
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
    let goes = await this.decide(after, fresh);
    // owners that came to belong since (a transfer): their fill goes first, what these change sets did to their rows with it
    if (await this.joined(fresh, goes)) goes = await this.decide(after, fresh);
    let filtered = 0;
    const [mark] = await db.query<{ s: string | number }>(`SELECT rows_filtered_seq AS s FROM ${this.peers} WHERE peer = ?`, [peer]);
    const counted = BigInt(mark?.s ?? 0);
    let top = counted;
    const keep: [string, string, Buffer | null][] = [];
    const joined: [string, string, string][] = [];
    const gone: Op[] = [];
    fresh.forEach(({ item, cs }, n) => {
      const ops = cs.ops.filter((_, i) => goes[n]![i]!);
      for (const op of ops) {
        if (this.o.membership.filters.graph.role(op.table) !== 'owner') continue;
        if (op.kind === 'delete') gone.push(op);
        else joined.push([peer, op.table, op.id]);
      }
      const seq = BigInt(item.seq);
      if (seq > counted) {
        filtered += cs.ops.length - ops.length;
        if (seq > top) top = seq;
      }
      if (ops.length === 0) {
        out.set(item.seq, null);
        return;
      }
      const body = ops.length === cs.ops.length ? item.body : encodeChangeSet({ ...cs, ops });
      out.set(item.seq, body);
      keep.push([peer, item.seq, body === item.body ? null : storedBody(utf8Bytes(body))]);
    });
    if (keep.length > 0) await db.exec(`INSERT IGNORE INTO ${this.routed} (peer, seq, body) VALUES ?`, [keep]);
    // the owner rows it now holds (or no longer does)
    if (joined.length > 0) await db.exec(`INSERT IGNORE INTO ${this.members} (peer, tbl, identity) VALUES ?`, [joined]);
    for (const op of gone) await db.exec(`DELETE FROM ${this.members} WHERE peer = ? AND tbl = ? AND identity = ?`, [peer, op.table, op.id]);
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

  /**
   * For each item, which of its ops go. An owner whose fill is on its way
   * counts as not matching in the change sets before that fill (the fill
   * carries their effect, and its rows must arrive first); the delete of an
   * owner row goes where the child holds that row.
   */
  private async decide(after: string, fresh: readonly { item: RoutedItem; facts: OpFacts[] }[]): Promise<boolean[][]> {
    const filling = await this.filling(after);
    const held = await this.held(fresh.flatMap((f) => f.facts.map((x) => x.op)));
    const groups = new Map<string, { excluded: Map<string, string[]>; at: number[] }>();
    fresh.forEach(({ item }, n) => {
      const seq = BigInt(item.seq);
      const excluded = new Map<string, string[]>();
      for (const f of filling) {
        if (f.seq !== null && f.seq <= seq) continue;
        let ids = excluded.get(f.table);
        if (!ids) excluded.set(f.table, (ids = []));
        ids.push(f.identity);
      }
      const key = JSON.stringify([...excluded]);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { excluded, at: [] }));
      g.at.push(n);
    });
    const out: boolean[][] = fresh.map((f) => f.facts.map(() => false));
    const m = this.o.membership;
    for (const g of groups.values()) {
      const asked = g.excluded.size === 0 ? m : m.withFilters(adjusted(m.filters, m.catalog, g.excluded));
      const facts = g.at.flatMap((n) => fresh[n]!.facts);
      const goes = await asked.decide(facts);
      let i = 0;
      for (const n of g.at) {
        out[n] = fresh[n]!.facts.map((x) => goes[i++]! || (x.op.kind === 'delete' && held.has(`${x.op.table}\u0000${x.op.id}`)));
      }
    }
    return out;
  }

  /**
   * Makes fills for owners behind the ops that go whom the child does not
   * hold and whose own insert is not among them; true when there were any.
   */
  private async joined(fresh: readonly { facts: OpFacts[] }[], goes: readonly (readonly boolean[])[]): Promise<boolean> {
    const m = this.o.membership;
    const kept = fresh.flatMap((f, n) => f.facts.filter((_, i) => goes[n]![i]));
    // until a first scan has said what the child holds (scan.ts), nothing is compared
    if (kept.length === 0 || !(await this.known())) return false;
    const owners = await ownersOf(this.o.db, m.catalog, m.filters, kept);
    const inserted = new Set(kept.filter((x) => x.op.kind === 'insert').map((x) => `${x.op.table}\u0000${x.op.id}`));
    let any = false;
    for (const [table, ids] of owners) {
      const candidates = [...ids].filter((id) => !inserted.has(`${table}\u0000${id}`));
      if (candidates.length === 0) continue;
      const heldRows = await this.o.db.query<{ identity: string }>(
        `SELECT identity FROM ${this.members} WHERE peer = ? AND tbl = ? AND identity IN (?)`, [this.o.peer, table, candidates]);
      const held = new Set(heldRows.map((r) => r.identity));
      const come = candidates.filter((id) => !held.has(id));
      if (come.length === 0) continue;
      await joinOwners({ ...this.o, catalog: m.catalog, filters: m.filters }, table, come);
      any = true;
    }
    return any;
  }

  private isKnown = false;

  /** Whether the owner rows the child holds are known (a snapshot or a first scan wrote them). */
  private async known(): Promise<boolean> {
    if (this.isKnown) return true;
    const [r] = await this.o.db.query(`SELECT 1 AS k FROM ${this.members} WHERE peer = ? AND tbl = '' AND identity = ''`, [this.o.peer]);
    return (this.isKnown = r !== undefined);
  }

  /** Owners whose fill the child has not acknowledged (those it has are done with). */
  private async filling(after: string): Promise<Filling[]> {
    const rows = await this.o.db.query<{ tbl: string; identity: string; seq: string | number | null }>(
      `SELECT m.tbl, m.identity, j.seq FROM ${this.members} m LEFT JOIN ${stateTable(this.o.stateSchema, 'journal')} j ON j.change_id = m.fill_id
        WHERE m.peer = ? AND m.fill_id IS NOT NULL`, [this.o.peer]);
    const done = rows.filter((r) => r.seq !== null && BigInt(r.seq) <= BigInt(after));
    for (const r of done) {
      await this.o.db.exec(`UPDATE ${this.members} SET fill_id = NULL WHERE peer = ? AND tbl = ? AND identity = ?`, [this.o.peer, r.tbl, r.identity]);
    }
    return rows.filter((r) => !done.includes(r)).map((r) => ({ table: r.tbl, identity: r.identity, seq: r.seq === null ? null : BigInt(r.seq) }));
  }

  /** The owner rows among these deletes' that the child holds. */
  private async held(ops: readonly Op[]): Promise<Set<string>> {
    const owners = ops.filter((op) => op.kind === 'delete' && this.o.membership.filters.graph.role(op.table) === 'owner');
    if (owners.length === 0) return new Set();
    const rows = await this.o.db.query<{ tbl: string; identity: string }>(
      `SELECT tbl, identity FROM ${this.members} WHERE peer = ? AND (tbl, identity) IN (${owners.map(() => '(?, ?)').join(', ')})`,
      [this.o.peer, ...owners.flatMap((op) => [op.table, op.id])]);
    return new Set(rows.map((r) => `${r.tbl}\u0000${r.identity}`));
  }
}
