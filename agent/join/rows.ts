// The rows a join moves, in bounded pages.
// Down: the parent's rows (only there, or kept over this site's) are fetched by
// identity and applied here through the Applier as change sets of the parent,
// as if they had come in a batch: the ledger row makes capture journal them as
// the parent's, so they never go back up, and an existing row meets the normal
// conflict rules (recorded in the conflicts log). Their stamps are below 2^32
// (the first 65 seconds of 1970, which no clock gives): the lowest versions
// there are, like rows loaded by a clone, so any real write, made anywhere,
// wins over them, and no id can equal one the parent gives.
// Up: this site's rows (only here, or kept over the parent's) are journaled as
// ordinary change sets of this site, carried whole in local transactions that
// change nothing here (apply/replay/carry.ts), so they go up by ordinary sync.
import { randomBytes } from 'node:crypto';
import type { Catalog } from '../../apply/core/catalog.js';
import type { Db, Queryable } from '../../apply/core/db.js';
import { isRef, type BatchEntry, type InsertOp } from '../../apply/core/model.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { ApplyReport } from '../../apply/replay/applier.js';
import { LOCAL_CARRY, writeLocalCarried } from '../../apply/replay/carry.js';
import { recordConflict } from '../../apply/replay/conflict-rules.js';
import { jsonRow } from '../../apply/replay/value-compare.js';
import { isoFromMs } from '../capture/assembler.js';
import type { DifferingRow } from '../verify/compare.js';
import type { VerifySide } from '../verify/side.js';

/** Rows fetched per request (an answer of whole rows stays small), and ops per change set. */
const FETCH_PER_REQUEST = 500;
export const OPS_PER_CHANGE_SET = 100;
/** Stamps of the change sets a join applies here are below this. */
export const JOIN_STAMPS = 2n ** 32n;

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
  /** this node's applier: what the parent sends is applied through it */
  readonly applier: { applyBatch(fromPeer: string, entries: readonly BatchEntry[]): Promise<ApplyReport> };
  readonly here: VerifySide;
  readonly there: VerifySide;
  readonly now?: () => number;
}

/** The next free join stamp: above every one the ledger, the quarantine or the held change sets already name. */
async function nextStamp(db: Queryable, stateSchema: string, parent: string): Promise<bigint> {
  const [r] = await db.query<{ m: string | number | null }>(
    `SELECT GREATEST(
       COALESCE((SELECT MAX(hlc) FROM ${stateTable(stateSchema, 'ledger')} WHERE origin = ? AND hlc < ?), 0),
       COALESCE((SELECT MAX(hlc) FROM ${stateTable(stateSchema, 'quarantine')} WHERE origin = ? AND hlc < ?), 0),
       COALESCE((SELECT MAX(CAST(SUBSTRING(change_id, ?) AS UNSIGNED)) FROM ${stateTable(stateSchema, 'held')}
                  WHERE change_id LIKE ? AND LENGTH(change_id) < ?), 0)) AS m`,
    [parent, String(JOIN_STAMPS), parent, String(JOIN_STAMPS), parent.length + 2, `${parent}:%`, parent.length + 12],
  );
  return BigInt(r?.m ?? 0) + 1n;
}

export interface Brought {
  readonly applied: number;
  readonly conflicts: number;
  readonly quarantined: number;
  readonly rows: number;
}

/** Fetches the parent's version of these rows of `table` and applies it here as change sets of the parent. */
export async function bringDown(m: RowMover, table: string, keys: readonly string[], signal?: AbortSignal): Promise<Brought> {
  const total = { applied: 0, conflicts: 0, quarantined: 0, rows: 0 };
  let stamp = await nextStamp(m.db, m.stateSchema, m.parent);
  for (const page of slices(keys, FETCH_PER_REQUEST)) {
    signal?.throwIfAborted();
    const ops = referencedFirst(await m.there.fetch(table, page));
    const entries: BatchEntry[] = slices(ops, OPS_PER_CHANGE_SET).map((part) => {
      if (stamp >= JOIN_STAMPS) throw new Error('no join stamp is left');
      const hlc = String(stamp++);
      return { seq: '0', cs: { id: `${m.parent}:${hlc}`, origin: m.parent, hlc, time: isoFromMs((m.now ?? Date.now)()), ops: part } };
    });
    if (entries.length === 0) continue;
    const r = await m.applier.applyBatch(m.parent, entries);
    total.applied += r.applied;
    total.conflicts += r.conflicts;
    total.quarantined += r.quarantined;
    total.rows += ops.length;
  }
  return total;
}

/**
 * Journals this node's version of these rows of `table` as change sets of this
 * node, without changing them here. A row the parent holds too (changed) is
 * recorded in the conflicts log with both versions (kind 'join'), saying why.
 */
export async function carryUp(m: RowMover, table: string, rows: readonly DifferingRow[], why: (r: DifferingRow) => string, signal?: AbortSignal): Promise<number> {
  let carried = 0;
  const now = m.now ?? Date.now;
  for (const page of slices(rows, FETCH_PER_REQUEST)) {
    signal?.throwIfAborted();
    const ours = referencedFirst(await m.here.fetch(table, page.map((r) => r.key)));
    const changed = page.filter((r) => r.kind === 'changed');
    const theirs = new Map((changed.length > 0 ? await m.there.fetch(table, changed.map((r) => r.key)) : []).map((op) => [op.id, op]));
    const byId = new Map(page.map((r) => [r.identity, r]));
    for (const part of slices(ours, OPS_PER_CHANGE_SET)) {
      const marker = `${LOCAL_CARRY}join-${randomBytes(8).toString('hex')}`;
      await m.db.transaction(async (tx) => {
        for (const op of part) {
          const there = theirs.get(op.id);
          const r = byId.get(op.id);
          if (!there || !r) continue;
          await recordConflict(tx, m.stateSchema, now(), {
            cs: { id: marker, origin: m.node, hlc: '0', time: '', ops: [] }, table, id: op.id, kind: 'join',
            local: { row: jsonRow(op.row) }, remote: { row: jsonRow(there.row), at: m.parent }, outcome: why(r),
          });
        }
        await writeLocalCarried(tx, m.stateSchema, marker, m.node, part);
      });
      carried += part.length;
    }
  }
  return carried;
}
