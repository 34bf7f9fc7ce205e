// The owner rows behind ops that go to a filtered child: an op on an owner
// table is its own owner; a follower's row leads to its owners through its
// edges (graph.ts), hop by hop, one pair of statements per table and edge per
// batch. Routing compares them with what the child holds (`members`): an owner
// it does not hold, whose own insert is not among the ops, has come to belong
// (scan.ts makes its fill).
import type { Catalog } from '../../apply/core/catalog.js';
import { qid, type Queryable } from '../../apply/core/db.js';
import { isRef } from '../../apply/core/model.js';
import { identitySql } from '../verify/row-sql.js';
import type { OpFacts } from './membership.js';
import type { Filters } from './membership-sql.js';

const CHUNK = 500;

/** table → identities */
export type RowIds = Map<string, Set<string>>;

function add(m: RowIds, table: string, id: string): void {
  let s = m.get(table);
  if (!s) m.set(table, (s = new Set()));
  s.add(id);
}

/** The owner rows (by owner table) that the ops' rows follow, as they are now (or, for inserts and deletes, as the op names them). */
export async function ownersOf(db: Queryable, catalog: Catalog, f: Filters, ops: readonly OpFacts[]): Promise<RowIds> {
  const owners: RowIds = new Map();
  let next: RowIds = new Map();
  for (const { op, oldRefs } of ops) {
    const role = f.graph.role(op.table);
    if (role === 'owner') add(owners, op.table, op.id);
    if (role !== 'follower') continue;
    if (op.kind === 'update') {
      add(next, op.table, op.id);
      continue;
    }
    const values = op.kind === 'insert' ? op.row : oldRefs ?? {};
    const rule = catalog.tables.get(op.table)?.identity;
    for (const e of f.graph.edges(op.table)) {
      const v = rule?.kind === 'shared' && rule.column === e.column ? { ref: rule.refTable, id: op.id } : values[e.column];
      if (v !== undefined && v !== null && isRef(v)) add(f.graph.role(e.refTable) === 'owner' ? owners : next, e.refTable, v.id);
    }
  }
  // follower rows: one hop along their edges at a time, until every row reached is an owner's
  for (let depth = 0; next.size > 0 && depth < 16; depth++) {
    const further: RowIds = new Map();
    for (const [table, ids] of next) {
      for (const [refTable, refIds] of await hop(db, catalog, f, table, [...ids])) {
        for (const id of refIds) add(f.graph.role(refTable) === 'owner' ? owners : further, refTable, id);
      }
    }
    next = further;
  }
  return owners;
}

/** The rows the edges of these rows of `table` name, by table. */
async function hop(db: Queryable, catalog: Catalog, f: Filters, table: string, ids: readonly string[]): Promise<RowIds> {
  const out: RowIds = new Map();
  const rs = identitySql(catalog, table);
  const edges = f.graph.edges(table);
  for (let i = 0; i < ids.length; i += CHUNK) {
    const part = ids.slice(i, i + CHUNK);
    const rows = await db.query<Record<string, unknown>>(
      `SELECT ${edges.map((e) => `t0.${qid(e.column)}`).join(', ')} FROM ${rs.from} WHERE ${rs.identityColumn ?? rs.identity} IN (?)`, [part]);
    for (const e of edges) {
      const values = [...new Set(rows.map((r) => r[e.column]).filter((v) => v !== null && v !== undefined))];
      if (values.length === 0) continue;
      const to = identitySql(catalog, e.refTable);
      const named = await db.query<{ k: string | null }>(`SELECT ${to.identity} AS k FROM ${to.from} WHERE t0.${qid(e.refColumn)} IN (?)`, [values]);
      for (const n of named) if (n.k !== null) add(out, e.refTable, String(n.k));
    }
  }
  return out;
}
