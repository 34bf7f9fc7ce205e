// `spokesync conflicts`: the recorded conflicts, newest first, each with both
// versions, who wrote them and which side won; `review` marks them seen and
// `resolve` writes one side again as a new change that travels everywhere.
import { getConflict, listConflicts, type ConflictRow } from '../../apply/replay/conflict-rules.js';
import {
  RowChanged, markReviewed, resolveConflict, sidesOf, unknownConflict, type Drift, type ResolveResult,
} from '../../apply/replay/conflict-review.js';
import type { CommandContext, CommandSpec } from '../cli/command.js';
import { withStateDb } from './state-db.js';
import { loadCatalog } from '../../apply/core/catalog.js';
import type { Db } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { hlcTime } from '../../apply/core/hlc.js';
import { operatorName } from '../provision/rails.js';

const DEFAULT_LIMIT = 50;
const USAGE = 'spokesync conflicts --config F [--json] [--limit N] [--unreviewed] | review ID... | resolve ID --take local|remote|NODE [--force]';

export const command: CommandSpec = {
  name: 'conflicts',
  summary: 'List recorded conflicts; review one, or resolve it by taking one side',
  description:
    'Without an action: the conflicts this node recorded while applying changes from its peers, newest first. ' +
    'A conflict is an update whose old values differ from the row here, a delete of a row that changed ' +
    'here, an insert of a row that exists with other values, or a change to a row deleted here. ' +
    'Each column is decided by last writer wins (hybrid clock, then node id); a delete wins over updates. ' +
    'Both sides are kept: "here" (local) is the row before the change, "incoming" (remote) what the change ' +
    'carried, each with the node that wrote it. --unreviewed lists only those nobody has reviewed yet.\n\n' +
    '`review ID...`: mark conflicts as seen (who and when are recorded; the first review is kept).\n\n' +
    '`resolve ID --take VERSION`: write one side again, at this node, as a new change with a fresh ' +
    'version: it goes through the database like any edit, so capture journals it and it reaches every node, ' +
    'where it wins. VERSION is `local` (the row here before the change), `remote` (what the change carried), ' +
    'or the id of the node that wrote one side (refused when it wrote both). Only the conflicting columns ' +
    'are written; a side that is a whole row is inserted again, a delete deletes the row; taking the side ' +
    'that the row holds already writes nothing. The conflict is marked resolved (who, when, what) in the ' +
    'same transaction. If the row changed here since the conflict, resolve shows what changed and refuses ' +
    '(exit 1) unless --force is given; a conflict resolved before is resolved again only with --force.\n\n' +
    '--json prints the list as [{id, detectedAt, changeId, origin, table, identity, kind, local, remote, outcome, ' +
    'reviewedAt, reviewedBy, resolvedAt, resolvedBy, resolution}], bytes as {"base64": ...} and references ' +
    'as {"ref": table, "id": identity}; `local.versions` and `remote.version` name the writer of each side ' +
    '({hlc, node}).\n\n' +
    'Exit status: 0 done, 1 failure (the row changed since the conflict), 2 bad usage (an unknown id, a ' +
    'side that names nothing or cannot be taken, an option with the wrong action).',
  args: '[review ID... | resolve ID --take VERSION [--force]]',
  options: {
    json: { type: 'boolean', help: 'print as JSON' },
    limit: { type: 'string', arg: 'N', help: `how many to list, newest first (default ${DEFAULT_LIMIT})` },
    unreviewed: { type: 'boolean', help: 'list only the conflicts nobody has reviewed yet' },
    take: { type: 'string', arg: 'VERSION', help: 'with resolve: the side to write again: local, remote, or the node id that wrote it' },
    force: { type: 'boolean', help: 'with resolve: write the side taken even though the row changed since the conflict (or it was resolved before)' },
  },
  needsConfig: true,
  async run(ctx) {
    const [action, ...ids] = ctx.args;
    const o = ctx.options;
    if (action !== undefined && (o.limit !== undefined || o.unreviewed !== undefined)) throw usage('--limit and --unreviewed go with the list (no action)');
    if (action !== 'resolve' && (o.take !== undefined || o.force !== undefined)) throw usage('--take and --force go with resolve');
    if (action === undefined) {
      const limit = parseLimit(o.limit);
      return withStateDb(ctx, async (db) => {
        const rows = await listConflicts(db, ctx.config.database.stateSchema, limit, { unreviewed: o.unreviewed === true });
        ctx.out(o.json === true ? JSON.stringify(rows, null, 2) : formatConflicts(rows, o.unreviewed === true));
        return 0;
      });
    }
    if (action === 'review') {
      if (ids.length === 0) throw usage('review needs the id of a conflict (the number after # in the list)');
      const parsed = ids.map(conflictId);
      return withStateDb(ctx, (db) => review(ctx, db, parsed));
    }
    if (action === 'resolve') {
      if (ids.length !== 1) throw usage(ids.length === 0 ? 'resolve needs the id of a conflict (the number after # in the list)' : 'resolve takes one conflict id');
      const take = o.take;
      if (typeof take !== 'string' || take === '') throw usage('resolve needs --take VERSION: local, remote, or the id of the node that wrote the side to keep');
      return withStateDb(ctx, (db) => resolve(ctx, db, conflictId(ids[0]!), take, o.force === true));
    }
    throw usage(`unknown action ${JSON.stringify(action)}`);
  },
};

function usage(message: string): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_USAGE', `${message}; usage: ${USAGE}`);
}

/** A conflict id as listed (`12` or `#12`). */
function conflictId(v: string): string {
  const m = /^#?([1-9][0-9]{0,18})$/.exec(v);
  if (!m) throw usage(`${JSON.stringify(v)} is not a conflict id (the number after # in the list)`);
  return m[1]!;
}

function parseLimit(v: string | boolean | undefined): number {
  if (v === undefined) return DEFAULT_LIMIT;
  if (typeof v !== 'string' || !/^[1-9][0-9]{0,6}$/.test(v)) {
    throw new SpokesyncError('SPOKESYNC_E_USAGE', '--limit takes a whole number from 1 to 9999999');
  }
  return Number(v);
}


async function review(ctx: CommandContext, db: Db, ids: readonly string[]): Promise<number> {
  const ss = ctx.config.database.stateSchema;
  for (const id of ids) if (!(await getConflict(db, ss, id))) throw unknownConflict(id);
  const by = operatorName();
  const lines: string[] = [];
  const done: ConflictRow[] = [];
  for (const id of ids) {
    const fresh = await markReviewed(db, ss, id, by, Date.now());
    const r = (await getConflict(db, ss, id))!;
    done.push(r);
    lines.push(fresh ? `conflict #${id} reviewed by ${by}` : `conflict #${id} was reviewed already, by ${r.reviewedBy ?? '?'} at ${r.reviewedAt ?? '?'}`);
  }
  ctx.out(ctx.options.json === true ? JSON.stringify(done, null, 2) : lines.join('\n'));
  return 0;
}

async function resolve(ctx: CommandContext, db: Db, id: string, take: string, force: boolean): Promise<number> {
  const { schema, stateSchema } = ctx.config.database;
  const catalog = await loadCatalog(db, schema, { keys: ctx.config.tables.keys });
  let r: ResolveResult;
  try {
    r = await resolveConflict({ db, catalog, stateSchema, id, take, force, by: operatorName(), nowMs: Date.now() });
  } catch (e) {
    if (e instanceof RowChanged) ctx.out(formatDrift(e.conflict, e.drift, 'refused'));
    throw e;
  }
  ctx.log.info('conflict resolved', { conflict: id, table: r.conflict.table, took: r.taken.name, wrote: r.wrote.kind, forced: r.drift.length > 0 });
  if (ctx.options.json === true) {
    ctx.out(JSON.stringify({ id, took: r.taken.name, writers: r.taken.writers, wrote: r.wrote, drift: r.drift, resolution: r.resolution }, null, 2));
    return 0;
  }
  const lines = r.drift.length > 0 ? [formatDrift(r.conflict, r.drift, 'written over (--force)')] : [];
  lines.push(`conflict #${id} resolved: ${r.resolution}`);
  if (r.wrote.kind !== 'nothing') lines.push('the new change is journaled by capture and reaches every node with the next exchanges');
  ctx.out(lines.join('\n'));
  return 0;
}

function formatDrift(c: ConflictRow, drift: readonly Drift[], what: string): string {
  const lines = [`the ${c.table} row ${c.identity} changed here since conflict #${c.id} (${what}):`];
  for (const d of drift) {
    const by = d.writtenBy ? ` (written by ${d.writtenBy.node} at ${hlcTime(BigInt(d.writtenBy.hlc))})` : '';
    lines.push(d.column === null
      ? `  the row: after the conflict ${String(d.then)}, here now ${String(d.now)}`
      : `  ${d.column}: after the conflict ${JSON.stringify(d.then)}, here now ${JSON.stringify(d.now)}${by}`);
  }
  return lines.join('\n');
}

/** The nodes that wrote each side, for the listing ('?' when the record does not say). */
function writers(r: ConflictRow): { local: string; remote: string } {
  try {
    const s = sidesOf(r);
    return { local: s.local.writers.join(', ') || '?', remote: s.remote.writers.join(', ') || '?' };
  } catch {
    return { local: '?', remote: '?' };
  }
}

export function formatConflicts(rows: readonly ConflictRow[], unreviewed = false): string {
  const which = unreviewed ? 'unreviewed conflict' : 'most recent conflict';
  if (rows.length === 0) return unreviewed ? 'no unreviewed conflicts' : 'no conflicts recorded';
  const lines = [`${rows.length} ${which}${rows.length === 1 ? '' : 's'}, newest first:`];
  for (const r of rows) {
    const w = writers(r);
    const state = r.resolvedAt !== null ? 'resolved' : r.reviewedAt !== null ? 'reviewed' : 'unreviewed';
    lines.push('');
    lines.push(`#${r.id}  ${r.detectedAt}  ${r.kind} ${r.table} ${r.identity}  [${state}]`);
    lines.push(`  change   ${r.changeId} (origin ${r.origin})`);
    lines.push(`  outcome  ${r.outcome}`);
    lines.push(`  here     (local, written by ${w.local}) ${JSON.stringify(r.local)}`);
    lines.push(`  incoming (remote, written by ${w.remote}) ${JSON.stringify(r.remote)}`);
    if (r.reviewedAt !== null) lines.push(`  reviewed by ${r.reviewedBy ?? '?'} at ${r.reviewedAt}`);
    if (r.resolvedAt !== null) lines.push(`  resolved by ${r.resolvedBy ?? '?'} at ${r.resolvedAt}: ${r.resolution ?? ''}`);
  }
  return lines.join('\n');
}
