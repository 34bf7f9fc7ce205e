// What a relay must forward although its binlog will not show it: a column (or a
// row's delete) that won here with the value the row already held. Such a write
// changes no bytes, so the re-captured change set would leave it out, and the
// nodes behind this one would never learn of its newer version. Apply writes
// these ops into the captured state table `carry` (inserted and deleted again in
// the change set's own transaction: the binlog keeps the row, the table stays
// empty), and capture adds them to the change set it journals.
import type { Queryable } from '../core/db.js';
import { stateTable } from '../core/state-schema.js';
import { decodeChangeSet } from '../codec/decode.js';
import { encodeChangeSet } from '../codec/encode.js';
import type { ChangeSet, Op, UpdateOp, Value } from '../core/model.js';
import { rowKey } from './target.js';

/** The captured state table apply writes carried ops into. */
export const CARRY_TABLE = 'carry';

/**
 * The start of the change_id of a carry row written by a local transaction
 * (`spokesync repair`) instead of apply: its ops join the change set captured
 * from that transaction, which gets this node's own id and stamp.
 */
export const LOCAL_CARRY = 'local:';

/** The carried ops of one change set being applied, by row. */
export class Carried {
  private readonly ops_: Op[] = [];
  private readonly updates = new Map<string, { table: string; id: string; set: Record<string, Value> }>();
  private readonly deletes = new Map<string, Op>();

  /** A column that won with the value the row already had. */
  column(table: string, id: string, col: string, value: Value): void {
    const key = rowKey(table, id);
    let u = this.updates.get(key);
    if (!u) this.updates.set(key, (u = { table, id, set: {} }));
    u.set[col] = value;
  }

  /** A delete of a row already deleted here, whose tombstone is newer than the one here. */
  deleted(table: string, id: string, digest: string): void {
    this.deletes.set(rowKey(table, id), { kind: 'delete', table, id, digest });
  }

  /** An op carried as it is (a change set made here whose binlog shows nothing: agent/rows/fill.ts). */
  whole(op: Op): void {
    this.ops_.push(op);
  }

  get empty(): boolean {
    return this.ops_.length === 0 && this.updates.size === 0 && this.deletes.size === 0;
  }

  ops(): Op[] {
    const out: Op[] = [...this.ops_];
    for (const u of this.updates.values()) out.push({ kind: 'update', table: u.table, id: u.id, set: u.set, old: u.set });
    for (const d of this.deletes.values()) out.push(d);
    return out;
  }
}

/** Writes the carried ops of `cs` where capture reads them (the binlog), leaving no row behind. */
export async function writeCarried(tx: Queryable, stateSchema: string, cs: ChangeSet, carried: Carried): Promise<void> {
  if (carried.empty) return;
  const body = encodeChangeSet({ id: cs.id, origin: cs.origin, hlc: cs.hlc, time: cs.time, ops: carried.ops() });
  const table = stateTable(stateSchema, CARRY_TABLE);
  await tx.exec(`INSERT INTO ${table} (change_id, body) VALUES (?, ?)`, [cs.id, body]);
  await tx.exec(`DELETE FROM ${table} WHERE change_id = ?`, [cs.id]);
}

/** The carried ops a `carry` row holds, for the change set `changeId`. */
export function readCarried(body: string | Buffer, changeId: string): readonly Op[] {
  const cs = decodeChangeSet(body);
  if (cs.id !== changeId) throw new Error(`carried ops of ${cs.id} found in the change set ${changeId}`);
  return cs.ops;
}

/**
 * The ops of a re-captured change set with its carried ops added: a carried
 * column joins the row's update when there is one (its own value wins there: it
 * is what the binlog shows), otherwise it becomes an update of its own; a
 * carried delete is added unless the change set deletes the row itself.
 */
export function withCarried(ops: readonly Op[], carried: readonly Op[]): Op[] {
  const out = [...ops];
  const at = new Map<string, number>();
  out.forEach((op, i) => at.set(`${op.kind}\u0000${rowKey(op.table, op.id)}`, i));
  for (const c of carried) {
    // (a row the change set deletes here needs no carried column)
    if (c.kind === 'update' && at.has(`delete\u0000${rowKey(c.table, c.id)}`)) continue;
    const key = `${c.kind}\u0000${rowKey(c.table, c.id)}`;
    const i = at.get(key);
    if (i === undefined) {
      at.set(key, out.length);
      out.push(c);
      continue;
    }
    if (c.kind !== 'update') continue;
    const u = out[i] as UpdateOp;
    out[i] = { ...u, set: { ...c.set, ...u.set }, old: { ...c.old, ...u.old } };
  }
  return out;
}

export function isLocalCarry(changeId: string): boolean {
  return changeId.startsWith(LOCAL_CARRY);
}

/**
 * Writes ops for the change set that capture makes of the current local
 * transaction (`marker` starts with LOCAL_CARRY and is unique), leaving no row
 * behind. `floor`: that change set is stamped above it.
 */
export async function writeLocalCarried(
  tx: Queryable, stateSchema: string, marker: string, node: string, ops: readonly Op[], floor = 0n,
): Promise<void> {
  if (!isLocalCarry(marker)) throw new Error(`a local carry marker starts with ${LOCAL_CARRY}`);
  const body = encodeChangeSet({ id: `${node}:0`, origin: node, hlc: String(floor), time: '1970-01-01T00:00:00Z', ops });
  const table = stateTable(stateSchema, CARRY_TABLE);
  await tx.exec(`INSERT INTO ${table} (change_id, body) VALUES (?, ?)`, [marker, body]);
  await tx.exec(`DELETE FROM ${table} WHERE change_id = ?`, [marker]);
}

/**
 * The ops of a locally captured change set with the ops a local transaction
 * carried: those first, in their order; then what the binlog shows, but for
 * inserts and updates of rows a carried insert writes whole (the carried row
 * is the row as the transaction leaves it, every column at the new version).
 */
export function withLocalCarried(ops: readonly Op[], carried: readonly Op[]): Op[] {
  const whole = new Set(carried.filter((c) => c.kind === 'insert').map((c) => rowKey(c.table, c.id)));
  return [...carried, ...ops.filter((op) => op.kind === 'delete' || !whole.has(rowKey(op.table, op.id)))];
}
