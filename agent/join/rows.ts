// The rows a join moves, in bounded pages, each as change sets of a join
// origin of its own (`<node>--join`, joinOrigin): the normal conflict rules
// apply to them, and one of them waiting in quarantine never holds up the
// node's real change sets (or they it). Their stamps are below 2^32 (the first
// 65 seconds of 1970, which no clock gives): the lowest versions there are,
// like rows loaded by a clone, so any real write, made anywhere, wins over
// them, and no id can equal one a real node gives.
// Down: the parent's rows (only there, or kept over this site's) are fetched
// by identity and applied here through the Applier, as if they had come from
// the parent: the ledger makes capture journal them as the parent's, so they
// never go back up.
// Up: this site's rows that the parent lacks are sent to the parent, which
// applies them at once (route.ts, POST /v1/join/rows), so that a change of
// such a row made here during the join finds it there. This site's version of
// a row the parent holds with other content is journaled as an ordinary change
// set of this site at a new version, carried whole in a local transaction that
// changes nothing here (apply/replay/carry.ts), so it goes up by ordinary sync.
// The parent's version of a row whose columns here were written since capture
// began (a version the join's own loses to) is written here in the same way,
// as `spokesync repair` does: an ordinary change set of this site that takes
// the row everywhere at a new version.
import { randomBytes } from 'node:crypto';
import type { Catalog } from '../../apply/core/catalog.js';
import type { Db, Queryable } from '../../apply/core/db.js';
import { isRef, type BatchEntry, type InsertOp } from '../../apply/core/model.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { ApplyReport } from '../../apply/replay/applier.js';
import { LOCAL_CARRY, writeLocalCarried } from '../../apply/replay/carry.js';
import { recordConflict } from '../../apply/replay/conflict-rules.js';
import { jsonRow } from '../../apply/replay/value-compare.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { isoFromMs } from '../capture/assembler.js';
import { bodyXml } from '../journal/body.js';
import type { Origins } from '../exchange/origins.js';
import { LocalWriter } from '../verify/local-write.js';
import type { VerifySide } from '../verify/side.js';

/** Rows fetched per request (an answer of whole rows stays small), and ops per change set. */
const FETCH_PER_REQUEST = 500;
export const OPS_PER_CHANGE_SET = 100;
/** Stamps of the change sets a join applies are below this. */
export const JOIN_STAMPS = 2n ** 32n;

/** The origin of the change sets a join makes of `node`'s rows (a node id has at most 64 characters). */
export function joinOrigin(node: string): string {
  return `${node.slice(0, 58)}--join`;
}

function slices<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The ops in an order where a row that another op of the same table refers to
 * comes first (a self-referencing table: obs groups, parent locations); the
 * rest keep their order, and a cycle is left as it is.
 */
export function referencedFirst(ops: readonly InsertOp[]): InsertOp[] {
  const byId = new Map(ops.map((op) => [op.id, op]));
  const out: InsertOp[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (op: InsertOp): void => {
    if (state.has(op.id)) return;
    state.set(op.id, 'visiting');
    for (const v of Object.values(op.row)) {
      if (v === null || !isRef(v) || v.ref !== op.table || v.id === op.id) continue;
      const dep = byId.get(v.id);
      if (dep) visit(dep);
    }
    state.set(op.id, 'done');
    out.push(op);
  };
  for (const op of ops) visit(op);
  return out;
}

export interface RowMover {
  readonly db: Db;
  readonly stateSchema: string;
  /** this node */
  readonly node: string;
  readonly parent: string;
  readonly catalog: Catalog;
  /** whose origins each peer speaks for here: the parent's join origin is registered to it */
  readonly origins: Origins;
  /** this node's applier: what the parent sends is applied through it */
  readonly applier: { applyBatch(fromPeer: string, entries: readonly BatchEntry[]): Promise<ApplyReport> };
  readonly here: VerifySide;
  readonly there: VerifySide;
  /** sends ops of this node to the parent, which applies them at once */
  readonly push: (ops: readonly InsertOp[]) => Promise<Pushed>;
  readonly now?: () => number;
}

/** What the parent did with rows sent up. */
export interface Pushed {
  readonly applied: number;
  readonly conflicts: number;
  readonly quarantined: number;
}

/** The next free join stamp of `origin`: above every one the ledger, the quarantine or the held change sets already name. */
export async function nextStamp(db: Queryable, stateSchema: string, origin: string): Promise<bigint> {
  const [r] = await db.query<{ m: string | number | null }>(
    `SELECT GREATEST(
       COALESCE((SELECT MAX(hlc) FROM ${stateTable(stateSchema, 'ledger')} WHERE origin = ? AND hlc < ?), 0),
       COALESCE((SELECT MAX(hlc) FROM ${stateTable(stateSchema, 'quarantine')} WHERE origin = ? AND hlc < ?), 0),
       COALESCE((SELECT MAX(CAST(SUBSTRING(change_id, ?) AS UNSIGNED)) FROM ${stateTable(stateSchema, 'held')}
                  WHERE change_id LIKE ? AND LENGTH(change_id) < ?), 0)) AS m`,
    [origin, String(JOIN_STAMPS), origin, String(JOIN_STAMPS), origin.length + 2, `${origin}:%`, origin.length + 12],
  );
  return BigInt(r?.m ?? 0) + 1n;
}

/** Rows of `table` that change sets committed here after journal seq `after` insert: they go up by ordinary sync, in order. */
export async function insertedSince(db: Queryable, stateSchema: string, after: string, table: string): Promise<Set<string>> {
  const out = new Set<string>();
  let from = after;
  for (;;) {
    const rows = await db.query<{ seq: string | number; tables: string; body: Buffer }>(
      `SELECT seq, tables, body FROM ${stateTable(stateSchema, 'journal')} WHERE seq > ? AND from_peer IS NULL ORDER BY seq LIMIT 200`, [from]);
    for (const r of rows) {
      if (!r.tables.split(',').includes(table)) continue;
      for (const op of decodeChangeSet(bodyXml(r.body)).ops) if (op.kind === 'insert' && op.table === table) out.add(op.id);
    }
    if (rows.length < 200) return out;
    from = String(rows[rows.length - 1]!.seq);
  }
}

export interface Brought {
  readonly applied: number;
  readonly conflicts: number;
  readonly quarantined: number;
  readonly rows: number;
}

/** Change sets of `origin` holding the ops, OPS_PER_CHANGE_SET each, stamped from `first` on. */
export function joinChangeSets(origin: string, first: bigint, ops: readonly InsertOp[], nowMs: number): BatchEntry[] {
  let stamp = first;
  return slices(ops, OPS_PER_CHANGE_SET).map((part) => {
    if (stamp >= JOIN_STAMPS) throw new Error('no join stamp is left');
    const hlc = String(stamp++);
    return { seq: '0', cs: { id: `${origin}:${hlc}`, origin, hlc, time: isoFromMs(nowMs), ops: part } };
  });
}

/** Fetches the parent's version of these rows of `table` and applies it here as change sets of the parent's join origin. */
export async function bringDown(m: RowMover, table: string, keys: readonly string[], signal?: AbortSignal): Promise<Brought> {
  const total = { applied: 0, conflicts: 0, quarantined: 0, rows: 0 };
  const origin = joinOrigin(m.parent);
  for (const page of slices(keys, FETCH_PER_REQUEST)) {
    signal?.throwIfAborted();
    const ops = referencedFirst(await m.there.fetch(table, page));
    if (ops.length === 0) continue;
    const entries = joinChangeSets(origin, await nextStamp(m.db, m.stateSchema, origin), ops, (m.now ?? Date.now)());
    await m.origins.admit(m.parent, entries);
    const r = await m.applier.applyBatch(m.parent, entries);
    total.applied += r.applied;
    total.conflicts += r.conflicts;
    total.quarantined += r.quarantined;
    total.rows += ops.length;
  }
  return total;
}

/** Sends this node's rows of `table` with these identities (SQL form) to the parent, which applies them at once. */
export async function sendUp(m: RowMover, table: string, keys: readonly string[], signal?: AbortSignal): Promise<Brought> {
  const total = { applied: 0, conflicts: 0, quarantined: 0, rows: 0 };
  for (const page of slices(keys, FETCH_PER_REQUEST)) {
    signal?.throwIfAborted();
    const ops = referencedFirst(await m.here.fetch(table, page));
    if (ops.length === 0) continue;
    const r = await m.push(ops);
    total.applied += r.applied;
    total.conflicts += r.conflicts;
    total.quarantined += r.quarantined;
    total.rows += ops.length;
  }
  return total;
}

/**
 * Journals this node's version of these rows of `table` (rows the parent holds
 * with other content) as change sets of this node, without changing them here;
 * each is recorded in the conflicts log with both versions (kind 'join'), saying why.
 */
export async function carryUp(m: RowMover, table: string, keys: readonly string[], why: string, signal?: AbortSignal): Promise<number> {
  return rewrite(m, table, keys, 'here', why, signal);
}

/** Writes the parent's version of these rows of `table` here as a change set of this node at a new version (recorded as conflicts, kind 'join'). */
export async function keepParents(m: RowMover, table: string, keys: readonly string[], why: string, signal?: AbortSignal): Promise<number> {
  return rewrite(m, table, keys, 'parent', why, signal);
}

/** The version kept of rows at both sides, journaled here whole as a change set of this node at a new version. */
async function rewrite(m: RowMover, table: string, keys: readonly string[], kept: 'here' | 'parent', why: string, signal?: AbortSignal): Promise<number> {
  let done = 0;
  const now = m.now ?? Date.now;
  // stamped above the parent's versions: the version kept wins there too, whatever the clocks
  const floor = await m.there.clock();
  for (const page of slices(keys, FETCH_PER_REQUEST)) {
    signal?.throwIfAborted();
    const theirs = new Map((await m.there.fetch(table, page)).map((op) => [op.id, op]));
    const ours = new Map((await m.here.fetch(table, page)).map((op) => [op.id, op]));
    // a row either side no longer holds is left to the delete on its way
    const rows = referencedFirst([...(kept === 'here' ? ours : theirs).values()].filter((op) => ours.has(op.id) && theirs.has(op.id)));
    for (const part of slices(rows, OPS_PER_CHANGE_SET)) {
      const marker = `${LOCAL_CARRY}join-${randomBytes(8).toString('hex')}`;
      await m.db.transaction(async (tx) => {
        const writer = new LocalWriter(tx, m.catalog);
        for (const op of part) {
          if (kept === 'parent') await writer.update(table, op.id, op.row);
          await recordConflict(tx, m.stateSchema, now(), {
            cs: { id: marker, origin: m.node, hlc: '0', time: '', ops: [] }, table, id: op.id, kind: 'join',
            local: { row: jsonRow(ours.get(op.id)!.row) }, remote: { row: jsonRow(theirs.get(op.id)!.row), at: m.parent }, outcome: why,
          });
        }
        await writeLocalCarried(tx, m.stateSchema, marker, m.node, part, floor);
      });
      done += part.length;
    }
  }
  return done;
}
