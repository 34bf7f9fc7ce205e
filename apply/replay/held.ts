// Held change sets: received from a peer whose table differs from ours in a
// way that would lose or change a value (shape-check.ts). Kept durably in
// arrival order, taken as received (acked), never applied while the shapes
// differ, never dropped; later change sets of that peer writing the same
// tables wait behind them, so each table's order is kept. They are checked
// again when this node's catalogue changes and apply by themselves, in order.
import type { Queryable } from '../core/db.js';
import { stateTable } from '../core/state-schema.js';
import type { ChangeSet } from '../core/model.js';
import type { TableShape } from '../codec/shape.js';
import type { ShapeProblem } from './shape-check.js';
import { sqlTime } from './value-compare.js';

export interface HeldRow {
  readonly id: string;
  readonly changeId: string;
  readonly fromPeer: string;
  readonly tables: readonly string[];
  readonly problem: ShapeProblem;
  readonly waitsFor: string | null;
  readonly shapes: readonly TableShape[] | null;
  readonly body: Buffer;
}

export function tablesOf(cs: ChangeSet): string[] {
  return [...new Set(cs.ops.map((o) => o.table))];
}

export async function holdChangeSet(
  tx: Queryable, stateSchema: string, cs: ChangeSet, fromPeer: string, body: string,
  problem: ShapeProblem, waitsFor: string | null, shapes: readonly TableShape[] | null, nowMs: number,
): Promise<boolean> {
  const r = await tx.exec(
    `INSERT IGNORE INTO ${stateTable(stateSchema, 'held')} (change_id, from_peer, tbl, tables, problem, waits_for, shapes, held_at, body)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [cs.id, fromPeer, problem.table.slice(0, 64), JSON.stringify(tablesOf(cs)).slice(0, 4000), JSON.stringify(problem).slice(0, 1000),
      waitsFor, shapes === null ? null : JSON.stringify(shapes), sqlTime(nowMs), body],
  );
  return (r as { affectedRows?: number }).affectedRows !== 0;
}

export async function unhold(tx: Queryable, stateSchema: string, changeId: string): Promise<void> {
  await tx.exec(`DELETE FROM ${stateTable(stateSchema, 'held')} WHERE change_id = ?`, [changeId]);
}

/** The tables of `peer` that held change sets block, each with the first change set holding it and why. */
export async function blockedTables(db: Queryable, stateSchema: string, peer: string): Promise<Map<string, { changeId: string; problem: ShapeProblem }>> {
  const rows = await db.query<{ change_id: string; tables: string; problem: string }>(
    `SELECT change_id, tables, problem FROM ${stateTable(stateSchema, 'held')} WHERE from_peer = ? ORDER BY id`, [peer],
  );
  const out = new Map<string, { changeId: string; problem: ShapeProblem }>();
  for (const r of rows) {
    for (const t of JSON.parse(r.tables) as string[]) {
      if (!out.has(t)) out.set(t, { changeId: r.change_id, problem: JSON.parse(r.problem) as ShapeProblem });
    }
  }
  return out;
}

/** Every held change set in arrival order, a page at a time. */
export async function* readHeld(db: Queryable, stateSchema: string, page = 200): AsyncGenerator<HeldRow> {
  let after = '0';
  for (;;) {
    const rows = await db.query<{
      id: string | number; change_id: string; from_peer: string; tables: string; problem: string;
      waits_for: string | null; shapes: Buffer | string | null; body: Buffer;
    }>(
      `SELECT id, change_id, from_peer, tables, problem, waits_for, shapes, body FROM ${stateTable(stateSchema, 'held')}
        WHERE id > ? ORDER BY id LIMIT ?`, [after, page],
    );
    for (const r of rows) {
      yield {
        id: String(r.id), changeId: r.change_id, fromPeer: r.from_peer, tables: JSON.parse(r.tables) as string[],
        problem: JSON.parse(r.problem) as ShapeProblem, waitsFor: r.waits_for,
        shapes: r.shapes === null ? null : JSON.parse(r.shapes.toString()) as TableShape[], body: r.body,
      };
    }
    if (rows.length < page) return;
    after = String(rows[rows.length - 1]!.id);
  }
}

export interface HeldGroup {
  readonly peer: string;
  readonly table: string;
  readonly count: number;
  readonly column: string | null;
  readonly here: string;
  readonly there: string;
  /** one line for an operator, with the fix */
  readonly message: string;
}

/** What `spokesync status` shows about held change sets: per peer and table. */
export async function heldSummary(db: Queryable, stateSchema: string): Promise<HeldGroup[]> {
  const rows = await db.query<{ from_peer: string; tbl: string; n: string | number; problem: string }>(
    `SELECT h.from_peer, h.tbl, g.n, h.problem FROM ${stateTable(stateSchema, 'held')} h
       JOIN (SELECT from_peer, tbl, COUNT(*) AS n, MIN(id) AS first FROM ${stateTable(stateSchema, 'held')} GROUP BY from_peer, tbl) g
         ON g.first = h.id
      ORDER BY h.from_peer, h.tbl`,
  );
  return rows.map((r) => {
    const p = JSON.parse(r.problem) as ShapeProblem;
    return { peer: r.from_peer, table: r.tbl, count: Number(r.n), column: p.column, here: p.here, there: p.there, message: heldMessage(Number(r.n), r.from_peer, p) };
  });
}

export function heldMessage(count: number, peer: string, p: ShapeProblem): string {
  const what = p.column === null
    ? `table \`${p.table}\` is ${p.here} here and ${p.there} at ${peer}`
    : `column \`${p.column}\` is ${p.here} here and ${p.there} at ${peer}`;
  return `held: ${count} change set${count === 1 ? '' : 's'} for \`${p.table}\` from ${peer} — ${what}; make the schemas match ` +
    '(they apply by themselves, in order, once they do)';
}
