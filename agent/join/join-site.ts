// `spokesync join`: a site whose database already holds data (the same
// metadata, its own rows, never cloned) joins its parent by identity.
//  1. Capture journals every local commit; this node's cursor toward the parent
//     starts at its journal's top (what was journaled before is compared instead
//     of sent), and the parent starts its cursor for this node at the top of its
//     own journal (POST /v1/join): from here on each side's changes go by
//     ordinary sync.
//  2. Table by table, parents before the tables that refer to them, the two
//     sides are compared as `spokesync verify` does, rows in flight included.
//     Rows only at the parent, and rows at both with other content (unless
//     --prefer here), are brought down and applied here; the normal conflict
//     rules decide each column (the parent's version wins over a row not
//     written since capture began here) and record the conflict. The table is
//     compared again: rows only here are sent up and applied at the parent at
//     once, and rows whose version here was kept are journaled here at a new
//     version (rows.ts). One-way tables move one way only. A row changed on
//     either side meanwhile is moved too when the other side lacks it (the
//     change on its way could not apply there alone); a row deleted meanwhile is
//     left to its delete.
//  3. The first ordinary sync sends what was journaled and brings what the
//     parent journaled meanwhile; a last comparison shows the two identical.
// Each step is safe to repeat: a join stopped anywhere is finished by running
// it again (state.ts).
import type { Catalog } from '../../apply/core/catalog.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { tableDirection } from '../config/tables.js';
import type { SyncResult } from '../exchange/client.js';
import { Origins } from '../exchange/origins.js';
import { CATCH_UP_MS, type SpokesyncNode } from '../node.js';
import { compareSides, shapeDifference, type Comparison, type DifferingRow } from '../verify/compare.js';
import { RemoteSide } from '../verify/verify-http.js';
import { dependencyOrder } from '../verify/repair-rows.js';
import { parentIdOf, tablesWith } from '../verify/verify-session.js';
import { LocalSide, type VerifySide } from '../verify/side.js';
import { askToJoin, sendJoinRows } from './route.js';
import { bringDown, carryUp, insertedSince, keepParents, sendUp, type RowMover } from './rows.js';
import { beginJoin, journalTop, parentJoined, readJoinMark, refuseIfSynced, writeJoinMark, type JoinMark, type Prefer } from './state.js';

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
  /** change sets of this table's rows that went to quarantine when applied (at the parent: sent up) */
  readonly quarantined: { readonly here: number; readonly parent: number };
}

export interface JoinResult {
  readonly node: string;
  readonly parent: string;
  readonly prefer: Prefer;
  /** this run finished a join begun earlier */
  readonly resumed: boolean;
  readonly mark: JoinMark;
  readonly tables: TableJoin[];
  /** change sets from the parent that wait in quarantine here after the first sync (a row they need is missing) */
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
  /** this node's journal up to here is compared, not sent */
  readonly journalFrom: string;
}

/** Refuses before anything changes when a table's shape differs, or the parent does not sync it with this node. */
async function checkShapes(here: VerifySide, there: VerifySide, tables: readonly string[], node: string, parent: string, resumed: boolean): Promise<void> {
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
  throw new SpokesyncError('SPOKESYNC_E_JOIN', `${node} and ${parent} differ in ${problems.length} synced table${problems.length === 1 ? '' : 's'}: ` +
    `the join stopped before changing anything${resumed ? ' more' : ''}: ${shown}`, {
    fix: 'Bring both to the same schema version (run the same upgrade), and give both the same tables.include/exclude ' +
      '(and children[].tables at the parent), then run join again. `spokesync verify` lists every table that differs.',
  });
}

const leftWhy = (d: DifferingRow, dir: string): string =>
  d.kind === 'missing here' ? (dir === 'up' ? 'only at the parent, and the table flows up only (tables.direction)' : 'only at the parent, and could not be brought here')
    : dir === 'down' ? 'only here, and the table flows down only (tables.direction): it cannot go up' : 'only here, and could not be sent up';

/** A row one side lacks because that side's change on its way deletes it: that change makes the two equal. */
function deletedMeanwhile(d: DifferingRow): boolean {
  const here = d.moving === 'here' || d.moving === 'both';
  const there = d.moving === 'there' || d.moving === 'both';
  return (d.kind === 'missing here' && here) || (d.kind === 'only here' && there);
}

async function joinTable(c: Ctx, table: string): Promise<TableJoin> {
  const dir = tableDirection(c.node.config, table);
  // a one-way table keeps the version of the side it flows from
  const prefer: Prefer = dir === 'up' ? 'here' : dir === 'down' ? 'parent' : c.prefer;
  // rows in flight count too: a change on its way to a node that has never held its row cannot apply there alone
  const compare = async (): Promise<Comparison> => {
    const r = await compareSides(c.local, c.remote, [table], c.catalog, { inFlight: 'also' });
    return { ...r, differing: r.differing.filter((d) => !deletedMeanwhile(d)) };
  };
  const first = await compare();
  const changed = new Set(first.differing.filter((d) => d.kind === 'changed').map((d) => d.identity));
  const down = first.differing.filter((d) => dir !== 'up' && (d.kind === 'missing here' || (d.kind === 'changed' && prefer === 'parent')));
  const brought = down.length > 0 ? await bringDown(c.mover, table, down.map((d) => d.key), c.signal) : null;
  const second = brought ? await compare() : first;
  // a row inserted here since the join began goes up by ordinary sync, in order with what follows it, and a row
  // that turned up differing during the join with its change on the way is made equal by that change
  const inserting = second.differing.some((d) => d.kind === 'only here' && d.moving !== undefined)
    ? await insertedSince(c.node.db, c.node.stateSchema, c.journalFrom, table) : new Set<string>();
  const before = new Set(first.differing.map((d) => d.identity));
  const travels = (d: DifferingRow): boolean => inserting.has(d.identity) || (d.moving !== undefined && !before.has(d.identity));
  const send = second.differing.filter((d) => dir !== 'down' && d.kind === 'only here' && !travels(d));
  const sent = send.length > 0 ? await sendUp(c.mover, table, send.map((d) => d.key), c.signal) : null;
  // a row at both that still differs: --prefer here (or an up-only table), or a column written here since
  // capture began, whose version beats the join's: the version kept goes everywhere at a new version
  const rewrite = second.differing.filter((d) => d.kind === 'changed' && !travels(d));
  const keys = rewrite.map((d) => d.key);
  const parent = c.mover.parent;
  const rewritten = rewrite.length === 0 ? 0 : prefer === 'here'
    ? await carryUp(c.mover, table, keys, `join${c.prefer === 'here' ? ' --prefer here' : ` (${table} flows up only)`}: ${c.node.id}'s version replaces ${parent}'s`, c.signal)
    : await keepParents(c.mover, table, keys, `join: ${parent}'s version replaces ${c.node.id}'s, whose columns were written since capture began here`, c.signal);
  const moved = new Set([...send, ...rewrite].map((d) => d.identity));
  const left = second.differing.filter((d) => !moved.has(d.identity) && !travels(d)).map((d) => ({ identity: d.identity, why: leftWhy(d, dir) }));
  const unnamed = (first.unnamed[table] ?? 0) + (second.unnamed[table] ?? 0);
  if (unnamed > 0) left.push({ identity: `(${unnamed} rows)`, why: 'their identity cannot be computed (a key column refers to a missing row)' });
  const inFlight = new Set([...first.inFlight, ...second.inFlight].map((f) => f.identity)).size;
  const leftChanged = left.filter((l) => changed.has(l.identity)).length;
  const hereKept = prefer === 'here' ? changed.size - leftChanged : 0;
  const up = (sent?.rows ?? 0) + (prefer === 'here' ? rewritten : 0);
  c.node.log.info('table joined', { table, down: brought?.rows ?? 0, up, conflicts: changed.size, inFlight, left: left.length });
  return {
    table, down: brought?.rows ?? 0, up,
    conflicts: { parentKept: changed.size - leftChanged - hereKept, hereKept },
    inFlight, left, quarantined: { here: brought?.quarantined ?? 0, parent: sent?.quarantined ?? 0 },
  };
}

/** Joins this node (opened with the node lock, capture not started) to its parent; see the top of this file. */
export async function runJoin(node: SpokesyncNode, o: { prefer: Prefer; signal?: AbortSignal; log: Logger }): Promise<JoinResult> {
  const config = node.config;
  const parentConfig = config.parent;
  if (!parentConfig) throw new SpokesyncError('SPOKESYNC_E_USAGE', 'this node has no parent in its config: join needs parent.url and parent.token');
  const ss = node.stateSchema;
  let mark = await readJoinMark(node.db, ss);
  if (mark?.state === 'done') {
    throw new SpokesyncError('SPOKESYNC_E_JOIN', `${node.id} joined ${mark.parent} already (${mark.at}) and syncs as usual`, {
      fix: 'Compare it with its parent with `spokesync verify`, and make differing rows equal with `spokesync repair`.',
    });
  }
  // every local commit journaled: what came before the join's start is compared, what comes after travels
  await node.startCapture();
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
    await checkShapes(local, remote, tables, node.id, parent, resumed);
    if (mark === null) {
      await refuseIfSynced(node.db, ss, node.id, parent);
      mark = await beginJoin(node.db, ss, parent, await journalTop(node.db, ss));
    } else {
      o.log.info('an earlier join did not finish: going on', { parent, since: mark.at });
    }
    const answer = await askToJoin(parentConfig, o.log, o.signal);
    if (answer.node !== parent || answer.child !== node.id) {
      throw new SpokesyncError('SPOKESYNC_E_PEER', `the parent answered the join as ${answer.node} for child ${answer.child}, not as ${parent} for ${node.id}`);
    }
    mark = await parentJoined(node.db, ss, mark, answer.seq);
    const c: Ctx = {
      node, catalog, local, remote, prefer: o.prefer, signal: o.signal, journalFrom: mark.journalFrom,
      mover: {
        db: node.db, stateSchema: ss, node: node.id, parent, catalog, applier: node.applier, here: local, there: remote,
        origins: new Origins({ db: node.db, stateSchema: ss, node: node.id, children: config.children.map((ch) => ch.id) }),
        push: (ops) => sendJoinRows(parentConfig, o.log, ops, o.signal),
      },
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
  // brought-down rows that waited for a row the sync brought
  await node.applier.retryQuarantine({ all: true });
  await node.capture.caughtUp(CATCH_UP_MS);
  // from the first sync on, the two exchange as usual: what is left goes with the next one
  mark = { ...mark, state: 'done', at: new Date().toISOString() };
  await writeJoinMark(node.db, ss, mark);
  if (o.signal?.aborted) {
    throw new SpokesyncError('SPOKESYNC_E_PENDING', `${node.id} joined ${parent}, but was stopped during the first sync`, {
      fix: 'Start the daemon, or run `spokesync sync --config F`: what is left goes as usual. `spokesync verify` compares the two.',
    });
  }
  const [q] = await node.db.query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM ${stateTable(ss, 'quarantine')} WHERE from_peer = ?`, [parent]);
  const final = await compareSides(local, remote, tables, node.applier.currentCatalog());
  return {
    node: node.id, parent, prefer: o.prefer, resumed, mark, tables: tablesDone, quarantined: Number(q?.n ?? 0), sync, final,
    bytes: remote.traffic.sent + remote.traffic.received,
  };
}
