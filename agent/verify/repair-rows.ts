// Repair: makes the rows that differ between this node and its parent equal,
// as one ordinary change set of this node that is journaled and travels on, so
// the rest of the tree converges too. Every differing row goes out as an insert
// of the row that is kept, whole, at a new version (wherever the row is, it
// takes that version; wherever it is missing, it is inserted); a row that is
// kept nowhere goes out as that insert followed by its delete, so that every
// node ends without it whether it held it or not.
//   --prefer parent: the parent's rows are written here (insert, update,
//     delete) in the same transaction, and capture journals the change set
//     with the rows carried whole (apply/replay/carry.ts, local carry).
//   --prefer here: nothing changes here; the change set carries this node's
//     rows (and the parent's rows that this node does not hold, deleted).
// Never silent: every row overwritten or deleted on either side is recorded
// with both versions in the conflicts log (kind 'repair', `spokesync
// conflicts`) in the same transaction, and listed by the command.
import { randomBytes } from 'node:crypto';
import type { Catalog } from '../../apply/core/catalog.js';
import type { Db } from '../../apply/core/db.js';
import type { InsertOp, Op } from '../../apply/core/model.js';
import { rowDigest } from '../../apply/codec/digest.js';
import { LOCAL_CARRY, writeLocalCarried } from '../../apply/replay/carry.js';
import { recordConflict } from '../../apply/replay/conflict-rules.js';
import { jsonRow } from '../../apply/replay/value-compare.js';
import type { DifferingRow } from './compare.js';
import { LocalWriter } from './local-write.js';
import type { VerifySide } from './side.js';

export type Prefer = 'parent' | 'here';

export interface RepairAction {
  readonly table: string;
  readonly identity: string;
  /** what changed, and where */
  readonly action: string;
  /** whether a version of the row was overwritten or deleted (and is kept in the conflicts log) */
  readonly overwrote: boolean;
}

export interface RepairResult {
  readonly actions: RepairAction[];
  /** the change id under which the overwritten versions are recorded in the conflicts log */
  readonly marker: string;
}

export interface RepairDeps {
  readonly db: Db;
  readonly catalog: Catalog;
  readonly stateSchema: string;
  readonly node: string;
  readonly peer: string;
  readonly here: VerifySide;
  readonly there: VerifySide;
  readonly now?: () => number;
}

/** Tables in an order where every table comes after the tables it refers to (cycles broken anywhere). */
export function dependencyOrder(catalog: Catalog, tables: Iterable<string>): string[] {
  const wanted = new Set(tables);
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string): void => {
    if (state.has(name)) return;
    state.set(name, 'visiting');
    const t = catalog.tables.get(name);
    for (const fk of t?.refs.values() ?? []) if (wanted.has(fk.table) && fk.table !== name) visit(fk.table);
    state.set(name, 'done');
    out.push(name);
  };
  for (const name of [...wanted].sort()) visit(name);
  return out;
}

/** Rows fetched per request: an answer of whole rows stays small. */
const FETCH_PER_REQUEST = 500;

async function fetchAll(side: VerifySide, rows: readonly DifferingRow[]): Promise<Map<string, InsertOp>> {
  const byTable = new Map<string, string[]>();
  for (const r of rows) {
    const keys = byTable.get(r.table);
    if (keys) keys.push(r.key);
    else byTable.set(r.table, [r.key]);
  }
  const out = new Map<string, InsertOp>();
  for (const [table, keys] of byTable) {
    for (let i = 0; i < keys.length; i += FETCH_PER_REQUEST) {
      for (const op of await side.fetch(table, keys.slice(i, i + FETCH_PER_REQUEST))) out.set(`${table}\u0000${op.id}`, op);
    }
  }
  return out;
}

export async function repairRows(d: RepairDeps, rows: readonly DifferingRow[], prefer: Prefer): Promise<RepairResult> {
  const marker = `${LOCAL_CARRY}repair-${randomBytes(8).toString('hex')}`;
  if (rows.length === 0) return { actions: [], marker };
  const [theirs, ours] = await Promise.all([fetchAll(d.there, rows), fetchAll(d.here, rows)]);
  // stamped above the parent's versions: the version kept wins there too, whatever the clocks
  const floor = await d.there.clock();
  const order = dependencyOrder(d.catalog, rows.map((r) => r.table));
  const rank = new Map(order.map((t, i) => [t, i]));
  const sorted = [...rows].sort((a, b) => rank.get(a.table)! - rank.get(b.table)!);
  const now = d.now ?? Date.now;

  return d.db.transaction(async (tx) => {
    const writer = new LocalWriter(tx, d.catalog);
    const carried: Op[] = [];
    const deletes: Op[] = [];
    const actions: RepairAction[] = [];
    const record = async (r: DifferingRow, here: InsertOp | undefined, there: InsertOp | undefined, outcome: string): Promise<void> => {
      await recordConflict(tx, d.stateSchema, now(), {
        cs: { id: marker, origin: d.node, hlc: '0', time: '', ops: [] }, table: r.table, id: r.identity, kind: 'repair',
        local: here ? { row: jsonRow(here.row) } : { absent: true },
        remote: there ? { row: jsonRow(there.row), at: d.peer } : { absent: true, at: d.peer },
        outcome,
      });
    };
    const kept = new Map<string, { here?: InsertOp; there?: InsertOp }>();
    for (const r of sorted) {
      const key = `${r.table}\u0000${r.identity}`;
      const here = ours.get(key);
      const there = theirs.get(key);
      if ((!here && !there) || (here && there && rowDigest(here.row) === rowDigest(there.row))) {
        // changed meanwhile (a change arrived): nothing to make equal
        actions.push({ table: r.table, identity: r.identity, action: 'equal by now: left alone', overwrote: false });
        continue;
      }
      kept.set(key, { ...(here ? { here } : {}), ...(there ? { there } : {}) });
      const winner = prefer === 'parent' ? there : here;
      if (winner) {
        carried.push(winner);
      } else {
        // kept nowhere: the loser goes out inserted then deleted, so every node ends without it
        const loser = (prefer === 'parent' ? here : there)!;
        carried.push(loser);
        deletes.unshift({ kind: 'delete', table: r.table, id: r.identity, digest: rowDigest(loser.row) });
      }
    }
    // this node's rows first (parents before children), then the deletes (children first)
    if (prefer === 'parent') {
      for (const r of sorted) {
        const { here, there } = kept.get(`${r.table}\u0000${r.identity}`) ?? {};
        if (there && !here) {
          await writer.insert(r.table, r.identity, there.row);
          actions.push({ table: r.table, identity: r.identity, action: 'inserted here', overwrote: false });
        } else if (there && here) {
          await writer.update(r.table, r.identity, there.row);
          await record(r, here, there, `repair --prefer parent: ${d.peer}'s version taken here`);
          actions.push({ table: r.table, identity: r.identity, action: 'updated here', overwrote: true });
        }
      }
      for (const r of [...sorted].reverse()) {
        const { here, there } = kept.get(`${r.table}\u0000${r.identity}`) ?? {};
        if (here && !there) {
          await writer.delete(r.table, r.identity);
          await record(r, here, there, `repair --prefer parent: deleted here (not at ${d.peer})`);
          actions.push({ table: r.table, identity: r.identity, action: 'deleted here', overwrote: true });
        }
      }
      if (carried.length > 0) await writeLocalCarried(tx, d.stateSchema, marker, d.node, carried, floor);
    } else {
      for (const r of sorted) {
        const { here, there } = kept.get(`${r.table}\u0000${r.identity}`) ?? {};
        if (here && !there) {
          actions.push({ table: r.table, identity: r.identity, action: `inserted at ${d.peer}`, overwrote: false });
        } else if (here && there) {
          await record(r, here, there, `repair --prefer here: this node's version replaces ${d.peer}'s`);
          actions.push({ table: r.table, identity: r.identity, action: `updated at ${d.peer}`, overwrote: true });
        } else if (there) {
          await record(r, here, there, `repair --prefer here: deleted at ${d.peer} (not here)`);
          actions.push({ table: r.table, identity: r.identity, action: `deleted at ${d.peer}`, overwrote: true });
        }
      }
      if (carried.length > 0) await writeLocalCarried(tx, d.stateSchema, marker, d.node, [...carried, ...deletes], floor);
    }
    return { actions, marker };
  });
}
