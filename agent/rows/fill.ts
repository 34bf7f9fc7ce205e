// Change sets the parent makes for one filtered child when membership changes
// (scan.ts): a *fill* carries the rows of owners that came to belong to it
// (inserts, the owner first and what follows it after, in an order that
// applies), a *leave* the deletes of rows that stopped belonging, with
// `rowsLeaving: delete`. They go through the ordinary journal and batches: each
// is one local transaction writing a ledger row of the origin `<node>--fill`
// or `<node>--leave` and carrying its ops (apply/replay/carry.ts), so capture
// journals it in commit order, and the state table `fills` names the only
// child it goes to. A leave applied at the child goes no further
// (journal/reader.ts).
//
// Versions: a fill's stamps are the lowest there are (like a clone's rows:
// any real write, made anywhere, wins over them), so it never overwrites what
// the child wrote. A leave's deletes must win over the rows the child holds,
// so a leave is stamped by this node's clock; one counter orders fills and
// leaves, so a fill after a leave (the patient came back) wins over its deletes.
import type { Catalog } from '../../apply/core/catalog.js';
import { qid, type Db, type Queryable } from '../../apply/core/db.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { ChangeSet, InsertOp, Op } from '../../apply/core/model.js';
import { rowDigest } from '../../apply/codec/digest.js';
import { writeCarried, Carried } from '../../apply/replay/carry.js';
import { writeLedger } from '../../apply/replay/ledger.js';
import { RowMapper } from '../../apply/replay/rowmap.js';
import { isoFromMs } from '../capture/assembler.js';
import { packHlc } from '../../apply/core/hlc.js';
import { referencedFirst } from '../join/rows.js';
import { byIdentitySql, identitySql, KEY_ALIAS, rowSql } from '../verify/row-sql.js';
import { canonicalIdentity } from '../verify/in-flight.js';
import type { Filters } from './membership-sql.js';
import { fillOrigin, type FillKind } from './origins.js';

const OPS_PER_CHANGE_SET = 100;
const FETCH = 500;

/** Owner and follower tables, each after the tables its rows refer to (a cycle is cut where it closes). */
export function fillOrder(f: Filters, catalog: Catalog): string[] {
  const tables = [...catalog.tables.keys()].filter((t) => f.graph.role(t) !== 'shared').sort();
  const deps = new Map(tables.map((t) => [t, new Set(catalog.table(t).foreignKeys.map((k) => k.refTable).filter((r) => r !== t && f.graph.role(r) !== 'shared'))]));
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (t: string): void => {
    if (state.has(t)) return;
    state.set(t, 'visiting');
    for (const d of deps.get(t) ?? []) visit(d);
    state.set(t, 'done');
    out.push(t);
  };
  // nearest the owner first, so a cycle is cut on its far side
  for (const t of [...tables].sort((a, b) => (f.graph.distance(a) ?? 99) - (f.graph.distance(b) ?? 99))) visit(t);
  return out;
}

/** The rows (as inserts) of a table whose identities are given (SQL form), their references in place. */
export async function fetchRows(db: Queryable, catalog: Catalog, stateSchema: string, table: string, keys: readonly string[]): Promise<InsertOp[]> {
  const out: InsertOp[] = [];
  const r = rowSql(catalog, table);
  const mapper = new RowMapper(catalog, stateSchema);
  for (let i = 0; i < keys.length; i += FETCH) {
    const { sql, params } = byIdentitySql(r, keys.slice(i, i + FETCH), 'row');
    for (const raw of await db.query<Record<string, unknown>>(sql, params)) {
      const key = raw[KEY_ALIAS];
      if (key === null || key === undefined) continue;
      out.push({ kind: 'insert', table, id: canonicalIdentity(catalog, table, String(key)), row: await mapper.toWire(db, r.table, raw) });
    }
  }
  return referencedFirst(out);
}

/** The identities (SQL form) of the rows of `table` that answer a condition on the row aliased by the table's name (given its identity's SQL). */
export async function identitiesWhere(db: Queryable, f: Filters, catalog: Catalog, table: string, where: (identity: string) => string): Promise<string[]> {
  const rs = identitySql(catalog, table);
  const same = f.key(table).map((c) => `${qid(table)}.${qid(c)} = t0.${qid(c)}`).join(' AND ');
  const rows = await db.query<{ k: string | null }>(
    `SELECT ${rs.identity} AS k FROM ${rs.from} WHERE EXISTS (SELECT 1 FROM ${qid(f.schema)}.${qid(table)} AS ${qid(table)} WHERE ${same} AND ${where(rs.identity)})`);
  return rows.flatMap((r) => (r.k === null ? [] : [String(r.k)]));
}

/** Deletes of these rows, by their content now (the digest a delete carries). */
export function deletesOf(rows: readonly InsertOp[]): Op[] {
  return rows.map((r) => ({ kind: 'delete', table: r.table, id: r.id, digest: rowDigest(r.row) }));
}

export interface FillWriter {
  /** the parent's database (state and application schemas on one server) */
  readonly db: Db;
  readonly stateSchema: string;
  readonly node: string;
  readonly now?: () => number;
}

/**
 * Journals `ops` for `peer` alone, as change sets of the fill or leave origin
 * (at most OPS_PER_CHANGE_SET ops each); returns their ids, in order.
 */
export async function writeFill(w: FillWriter, peer: string, kind: FillKind, ops: readonly Op[]): Promise<string[]> {
  const ids: string[] = [];
  const fills = stateTable(w.stateSchema, 'fills');
  for (let i = 0; i < ops.length; i += OPS_PER_CHANGE_SET) {
    const part = ops.slice(i, i + OPS_PER_CHANGE_SET);
    const origin = fillOrigin(w.node, kind);
    const id = await w.db.transaction(async (tx) => {
      // one counter for fills and leaves: a later one is a newer version of the same row
      const [top] = await tx.query<{ m: string | number | null }>(`SELECT MAX(stamp) AS m FROM ${fills} FOR UPDATE`);
      const next = BigInt(top?.m ?? 0) + 1n;
      const now = (w.now ?? Date.now)();
      const stamp = kind === 'leave' && packHlc(now, 0) > next ? packHlc(now, 0) : next;
      const cs: ChangeSet = { id: `${origin}:${stamp}`, origin, hlc: String(stamp), time: isoFromMs((w.now ?? Date.now)()), ops: part };
      await tx.exec(`INSERT INTO ${fills} (change_id, peer, stamp, made_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))`, [cs.id, peer, String(stamp)]);
      // the ledger row names the change set for capture; this node is where it was made
      await writeLedger(tx, w.stateSchema, cs, w.node, (w.now ?? Date.now)());
      await writeCarried(tx, w.stateSchema, cs, carrying(part));
      return cs.id;
    });
    ids.push(id);
  }
  return ids;
}

/** Ops to carry whole (inserts and deletes as they are). */
function carrying(ops: readonly Op[]): Carried {
  const c = new Carried();
  for (const op of ops) c.whole(op);
  return c;
}
