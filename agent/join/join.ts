// `spokesync join`: a site whose database already holds data (the same
// metadata, its own rows, never cloned) joins its parent by identity.
//  1. Capture journals every local commit; this node's cursor toward the parent
//     starts at its journal's top (what was journaled before is compared instead
//     of sent), and the parent starts its cursor for this node at the top of its
//     own journal (POST /v1/join): from here on each side's changes go by
//     ordinary sync, and rows they name are in flight, left out of the join.
//  2. Table by table, parents before the tables that refer to them, the two
//     sides are compared as `spokesync verify` does. Rows only at the parent,
//     and rows at both with other content (unless --prefer here), are brought
//     down as change sets of the parent (rows.ts); the normal conflict rules
//     decide each column (the parent's version wins over a row never written
//     since capture began here) and record the conflict. The table is compared
//     again: rows only here, and rows whose version here was kept, are carried
//     up as change sets of this node. One-way tables move one way only.
//  3. The first ordinary sync sends what was carried and brings what the parent
//     journaled meanwhile; a last comparison shows the two identical.
// Each step is safe to repeat: a join stopped anywhere is finished by running
// it again (state.ts).
import type { Catalog } from '../../apply/core/catalog.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { tableDirection } from '../config/tables.js';
import type { SyncResult } from '../exchange/client.js';
import { CATCH_UP_MS, type SpokesyncNode } from '../node.js';
import { compareSides, shapeDifference, type Comparison, type DifferingRow } from '../verify/compare.js';
import { RemoteSide } from '../verify/http.js';
import { dependencyOrder } from '../verify/repair.js';
import { parentIdOf, tablesWith } from '../verify/session.js';
import { LocalSide, type VerifySide } from '../verify/side.js';
import { askToJoin } from './route.js';
import { bringDown, carryUp, type RowMover } from './rows.js';
import { beginJoin, parentJoined, readJoinMark, refuseIfSynced, writeJoinMark, type JoinMark, type Prefer } from './state.js';

export interface TableJoin {
  readonly table: string;
  /** rows brought down from the parent (only there, or the parent's version kept) */
  readonly down: number;
  /** rows carried up to the parent (only here, or this node's version kept) */
  readonly up: number;
  /** rows at both with other content, and whose version each kept */
  readonly conflicts: { readonly parentKept: number; readonly hereKept: number };
  /** rows changed on either side during the join: ordinary sync brings them */
  readonly inFlight: number;
  /** rows left as they are, and why */
  readonly left: { readonly identity: string; readonly why: string }[];
}

export interface JoinResult {
  readonly node: string;
  readonly parent: string;
  readonly prefer: Prefer;
  /** this run finished a join begun earlier */
  readonly resumed: boolean;
  readonly mark: JoinMark;
  readonly tables: TableJoin[];
  /** change sets brought down that wait in quarantine here (a row they need is missing) */
  readonly quarantined: number;
  readonly sync: SyncResult;
  /** the two nodes compared after the first sync */
  readonly final: Comparison;
  /** bytes of the comparisons and fetches (the sync not counted) */
  readonly bytes: number;
}

interface Ctx {
  readonly node: SpokesyncNode;
  readonly catalog: Catalog;
  readonly local: VerifySide;
  readonly remote: VerifySide;
  readonly mover: RowMover;
  readonly prefer: Prefer;
  readonly signal: AbortSignal | undefined;
}

/** Refuses before anything changes when a table's shape differs, or the parent does not sync it with this node. */
async function checkShapes(here: VerifySide, there: VerifySide, tables: readonly string[], node: string, parent: string): Promise<void> {
  const [a, b] = await Promise.all([here.shapes(tables), there.shapes(tables)]);
  const problems: string[] = [];
  tables.forEach((t, i) => {
    const mine = a[i];
    const theirs = b[i];
    if (!mine) return;
    if (!theirs) problems.push(`${t}: ${parent} does not sync it with ${node}`);
    else {
      const d = shapeDifference(mine, theirs);
      if (d) problems.push(`${t}: ${d}`);
    }
  });
  if (problems.length === 0) return;
  const shown = problems.slice(0, 8).join('; ') + (problems.length > 8 ? `; and ${problems.length - 8} more tables` : '');
  throw new SpokesyncError('SPOKESYNC_E_JOIN', `${node} and ${parent} differ in ${problems.length} synced table${problems.length === 1 ? '' : 's'}, so nothing was joined: ${shown}`, {
    fix: 'Bring both to the same schema version (run the same upgrade), and give both the same tables.include/exclude ' +
      '(and children[].tables at the parent), then run join again. `spokesync verify` lists every table that differs.',
  });
}

async function journalTop(node: SpokesyncNode): Promise<string> {
  const [r] = await node.db.query<{ m: string | number | null }>(`SELECT MAX(seq) AS m FROM ${stateTable(node.stateSchema, 'journal')}`);
  return String(r?.m ?? 0);
}

const leftWhy = (d: DifferingRow, dir: string): string =>
  d.kind === 'missing here' ? (dir === 'up' ? 'only at the parent, and the table flows up only (tables.direction)' : 'only at the parent, and could not be brought here')
    : dir === 'down' ? `${d.kind === 'changed' ? 'differs' : 'only here'}, and the table flows down only (tables.direction): this node's version cannot go up`
      : 'could not be carried up';

async function joinTable(c: Ctx, table: string): Promise<TableJoin> {
  const dir = tableDirection(c.node.config, table);
  const compare = (): Promise<Comparison> => compareSides(c.local, c.remote, [table], c.catalog);
  const first = await compare();
  const changed = new Set(first.differing.filter((d) => d.kind === 'changed').map((d) => d.identity));
  const down = first.differing.filter((d) => dir !== 'up' && (d.kind === 'missing here' || (d.kind === 'changed' && c.prefer === 'parent')));
  const brought = down.length > 0 ? await bringDown(c.mover, table, down.map((d) => d.key), c.signal) : null;
  const second = brought ? await compare() : first;
  const up = second.differing.filter((d) => dir !== 'down' && d.kind !== 'missing here');
  const why = c.prefer === 'here' || dir === 'up'
    ? `join${c.prefer === 'here' ? ' --prefer here' : ` (${table} flows up only)`}: ${c.node.id}'s version replaces ${c.mover.parent}'s`
    : `join: ${c.node.id}'s version is newer (written since capture began there), so it replaces ${c.mover.parent}'s`;
  const carried = up.length > 0 ? await carryUp(c.mover, table, up, () => why, c.signal) : 0;
  const upIds = new Set(up.map((d) => d.identity));
  const hereKept = up.filter((d) => changed.has(d.identity)).length;
  const left = second.differing.filter((d) => !upIds.has(d.identity)).map((d) => ({ identity: d.identity, why: leftWhy(d, dir) }));
  const unnamed = (first.unnamed[table] ?? 0) + (second.unnamed[table] ?? 0);
  if (unnamed > 0) left.push({ identity: `(${unnamed} rows)`, why: 'their identity cannot be computed (a key column refers to a missing row)' });
  const inFlight = new Set([...first.inFlight, ...second.inFlight].map((f) => f.identity)).size;
  c.node.log.info('table joined', { table, down: brought?.rows ?? 0, up: carried, conflicts: changed.size, inFlight, left: left.length });
  return {
    table, down: brought?.rows ?? 0, up: carried,
    conflicts: { parentKept: Math.max(0, changed.size - hereKept - left.filter((l) => changed.has(l.identity)).length), hereKept },
    inFlight, left,
  };
}

/** Joins this node (opened with the node lock, capture not started) to its parent; see the top of this file. */
export async function runJoin(node: SpokesyncNode, o: { prefer: Prefer; signal?: AbortSignal; log: Logger }): Promise<JoinResult> {
  const config = node.config;
  const parentConfig = config.parent;
  if (!parentConfig) throw new SpokesyncError('SPOKESYNC_E_USAGE', 'this node has no parent in its config: join needs parent.url and parent.token');
  const ss = node.stateSchema;
  await node.startCapture();
  let mark = await readJoinMark(node.db, ss);
  if (mark?.state === 'done') {
    throw new SpokesyncError('SPOKESYNC_E_JOIN', `${node.id} joined ${mark.parent} already (${mark.at}) and syncs as usual`, {
      fix: 'Compare it with its parent with `spokesync verify`, and make differing rows equal with `spokesync repair`.',
    });
  }
  const resumed = mark !== null;
  const parent = mark?.parent ?? await parentIdOf(node);
  const catalog = node.applier.currentCatalog();
  const local = new LocalSide({
    db: node.db, stateSchema: ss, peer: parent,
    catalog: async () => node.applier.currentCatalog(),
    tables: (cat) => new Set(tablesWith(config, cat, parent)),
    caughtUp: () => node.capture.caughtUp(CATCH_UP_MS),
  });
  const remote = new RemoteSide(parentConfig, o.log, o.signal);
  const tables = tablesWith(config, catalog, parent);
  const tablesDone: TableJoin[] = [];
  if (mark === null || mark.state === 'started') {
    await checkShapes(local, remote, tables, node.id, parent);
    if (mark === null) {
      await refuseIfSynced(node.db, ss, node.id, parent);
      mark = await beginJoin(node.db, ss, parent, await journalTop(node));
    } else {
      o.log.info('an earlier join did not finish: going on', { parent, since: mark.at });
    }
    const answer = await askToJoin(parentConfig, o.log, o.signal);
    if (answer.node !== parent || answer.child !== node.id) {
      throw new SpokesyncError('SPOKESYNC_E_PEER', `the parent answered the join as ${answer.node} for child ${answer.child}, not as ${parent} for ${node.id}`);
    }
    mark = await parentJoined(node.db, ss, mark, answer.seq);
    const c: Ctx = {
      node, catalog, local, remote, prefer: o.prefer, signal: o.signal,
      mover: { db: node.db, stateSchema: ss, node: node.id, parent, catalog, applier: node.applier, here: local, there: remote },
    };
    for (const table of dependencyOrder(catalog, tables)) {
      o.signal?.throwIfAborted();
      tablesDone.push(await joinTable(c, table));
    }
    // a row that refers to one brought down after it (a later page, a cycle) waits in quarantine until now
    await node.applier.retryQuarantine({ all: true });
    await node.capture.caughtUp(CATCH_UP_MS);
    mark = { ...mark, state: 'applied' };
    await writeJoinMark(node.db, ss, mark);
  }
  const sync = await node.syncWithParent(o.signal);
  await node.capture.caughtUp(CATCH_UP_MS);
  mark = { ...mark, state: 'done', at: new Date().toISOString() };
  await writeJoinMark(node.db, ss, mark);
  const [q] = await node.db.query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM ${stateTable(ss, 'quarantine')} WHERE from_peer = ?`, [parent]);
  const final = await compareSides(local, remote, tables, node.applier.currentCatalog());
  return {
    node: node.id, parent, prefer: o.prefer, resumed, mark, tables: tablesDone, quarantined: Number(q?.n ?? 0), sync, final,
    bytes: remote.traffic.sent + remote.traffic.received,
  };
}
