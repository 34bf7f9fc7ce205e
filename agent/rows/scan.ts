// Membership changes of one filtered child, found by comparing the owner rows
// that belong to it now (its rule, evaluated by this node's server) with those
// it holds (state table `members`, written by its snapshot, by routing, and
// here). An owner that came to belong (a patient transferred: an identifier at
// the child's clinic added here, or a rule edited in the config) gets a fill:
// its row and every row that follows it and belongs now, in an order that
// applies (fill.ts). One that stopped belonging leaves: with `rowsLeaving:
// delete` the child gets deletes of those rows, for it alone; with `keep` it
// keeps them and receives no more changes of them. Both travel through the
// journal and batches like any change set, so a slow link resumes them.
import type { Catalog } from '../../apply/core/catalog.js';
import { qid, type Db, type Queryable } from '../../apply/core/db.js';
import { identitySql } from '../verify/row-sql.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { Logger } from '../../apply/core/log.js';
import type { Op } from '../../apply/core/model.js';
import type { RowsLeaving } from '../config/types.js';
import { deletesOf, fetchRows, fillOrder, identitiesWhere, writeFill } from './fill.js';
import { adjusted, askSql, matchSql, type Filters } from './membership-sql.js';

/** Owners filled per fill (each brings its whole record). */
const OWNERS_PER_FILL = 50;

export interface ScanOptions {
  /** this node's database (state schema) */
  readonly db: Db;
  /** sessions whose default schema is the application's (rules name tables without their schema) */
  readonly app: Queryable;
  readonly catalog: Catalog;
  readonly filters: Filters;
  /** the tables that sync with the child */
  readonly tables: ReadonlySet<string>;
  readonly stateSchema: string;
  readonly node: string;
  readonly peer: string;
  readonly leaving: RowsLeaving;
  readonly log?: Logger;
}

export interface ScanResult {
  readonly joined: number;
  readonly left: number;
  /** the fill and leave change sets made */
  readonly made: readonly string[];
}

/** Writes the owner rows a child holds, from scratch (a snapshot for it), and forgets what went to it before. */
export async function startMembers(db: Queryable, stateSchema: string, peer: string, owners: ReadonlyMap<string, readonly string[]>): Promise<void> {
  const members = stateTable(stateSchema, 'members');
  await db.exec(`DELETE FROM ${stateTable(stateSchema, 'routed')} WHERE peer = ?`, [peer]);
  await db.exec(`DELETE FROM ${members} WHERE peer = ?`, [peer]);
  const rows: [string, string, string][] = [[peer, '', '']];
  for (const [table, ids] of owners) for (const id of ids) rows.push([peer, table, id]);
  for (let i = 0; i < rows.length; i += 1000) {
    await db.exec(`INSERT IGNORE INTO ${members} (peer, tbl, identity) VALUES ?`, [rows.slice(i, i + 1000)]);
  }
}

/** Finds what joined and left since the last scan and makes their fills and leaves. */
export async function scanMembers(o: ScanOptions): Promise<ScanResult> {
  const members = stateTable(o.stateSchema, 'members');
  const [known] = await o.db.query(`SELECT 1 AS k FROM ${members} WHERE peer = ? AND tbl = '' AND identity = ''`, [o.peer]);
  const made: string[] = [];
  let joined = 0;
  let left = 0;
  for (const table of o.filters.graph.owners) {
    const now = askSql(o.filters, table, 'in');
    const fresh = await identitiesWhere(o.app, o.filters, o.catalog, table,
      (id) => `${now} AND NOT EXISTS (SELECT 1 FROM ${members} m WHERE m.peer = ${esc(o.peer)} AND m.tbl = ${esc(table)} AND m.identity = ${id})`);
    if (!known) {
      // filters set on a child that holds rows already: what belongs now is taken as held
      await insertMembers(o.db, members, o.peer, table, fresh, null);
      continue;
    }
    made.push(...await joinOwners(o, table, fresh));
    joined += fresh.length;
    const gone = (await o.app.query<{ k: string }>(
      `SELECT m.identity AS k FROM ${members} m WHERE m.peer = ? AND m.tbl = ? AND NOT EXISTS (${existsSql(o, table, now)})`, [o.peer, table]))
      .map((r) => r.k);
    for (let i = 0; i < gone.length; i += OWNERS_PER_FILL) {
      const part = gone.slice(i, i + OWNERS_PER_FILL);
      if (o.leaving === 'delete') made.push(...await writeFill(o, o.peer, 'leave', await leaveOps(o, table, part)));
      await o.db.exec(`DELETE FROM ${members} WHERE peer = ? AND tbl = ? AND identity IN (?)`, [o.peer, table, part]);
      left += part.length;
    }
  }
  if (!known) await o.db.exec(`INSERT IGNORE INTO ${members} (peer, tbl, identity) VALUES (?, '', '')`, [o.peer]);
  if (joined + left > 0) o.log?.info('row filter membership changed', { peer: o.peer, joined, left, changeSets: made.length });
  return { joined, left, made };
}

/** Fills for owners that came to belong to the child (their rows and what follows them); they are held from now. */
export async function joinOwners(o: ScanOptions, table: string, owners: readonly string[]): Promise<string[]> {
  const made: string[] = [];
  for (let i = 0; i < owners.length; i += OWNERS_PER_FILL) {
    const part = owners.slice(i, i + OWNERS_PER_FILL);
    const ids = await writeFill(o, o.peer, 'fill', await fillOps(o, table, part));
    made.push(...ids);
    await insertMembers(o.db, stateTable(o.stateSchema, 'members'), o.peer, table, part, ids[ids.length - 1] ?? null);
  }
  return made;
}

const esc = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

async function insertMembers(db: Queryable, members: string, peer: string, table: string, ids: readonly string[], fill: string | null): Promise<void> {
  for (let i = 0; i < ids.length; i += 1000) {
    await db.exec(`INSERT INTO ${members} (peer, tbl, identity, fill_id) VALUES ? ON DUPLICATE KEY UPDATE fill_id = VALUES(fill_id)`,
      [ids.slice(i, i + 1000).map((id) => [peer, table, id, fill])]);
  }
}

/** A row of `table` named `m.identity` exists here and answers `cond`. */
function existsSql(o: ScanOptions, table: string, cond: string): string {
  const rs = identitySql(o.catalog, table);
  const same = o.filters.key(table).map((c) => `${qid(table)}.${qid(c)} = t0.${qid(c)}`).join(' AND ');
  return `SELECT 1 FROM ${rs.from} WHERE ${rs.identityColumn ?? rs.identity} = m.identity AND EXISTS (SELECT 1 FROM ${qid(o.filters.schema)}.${qid(table)} AS ${qid(table)} WHERE ${same} AND ${cond})`;
}

/** The inserts that bring these owners (newly belonging) and what follows them and belongs now. */
async function fillOps(o: ScanOptions, table: string, owners: readonly string[]): Promise<Op[]> {
  const without = adjusted(o.filters, o.catalog, new Map([[table, owners]]));
  const ops: Op[] = [];
  for (const t of fillOrder(o.filters, o.catalog)) {
    if (!o.tables.has(t)) continue;
    const role = o.filters.graph.role(t);
    let keys: string[];
    if (t === table) keys = [...owners];
    else if (role === 'follower') keys = await identitiesWhere(o.app, o.filters, o.catalog, t, () => `${matchSql(o.filters, t)} AND NOT (${matchSql(without, t)})`);
    else continue;
    ops.push(...await fetchRows(o.db, o.catalog, o.stateSchema, t, keys));
  }
  return ops;
}

/** The deletes of these owners' rows (they no longer belong) and of what follows them and belongs no more, dependents first. */
async function leaveOps(o: ScanOptions, table: string, owners: readonly string[]): Promise<Op[]> {
  const withThem = adjusted(o.filters, o.catalog, new Map(), new Map([[table, owners]]));
  const ops: Op[] = [];
  for (const t of fillOrder(o.filters, o.catalog).reverse()) {
    if (!o.tables.has(t)) continue;
    const role = o.filters.graph.role(t);
    let keys: string[];
    if (t === table) keys = [...owners];
    else if (role === 'follower') keys = await identitiesWhere(o.app, o.filters, o.catalog, t, () => `${matchSql(withThem, t)} AND NOT (${matchSql(o.filters, t)})`);
    else continue;
    ops.push(...deletesOf((await fetchRows(o.db, o.catalog, o.stateSchema, t, keys)).reverse()));
  }
  return ops;
}
