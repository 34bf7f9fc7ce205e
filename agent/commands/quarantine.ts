// `spokesync quarantine`: the change sets that could not apply here, to look
// at (list, show), try again now (retry) or give up on the record (discard).
// Listing and showing read the state schema (they work while the daemon runs);
// retry applies at once when no daemon runs and marks the change sets due
// for the running daemon's next tick otherwise; a discard is kept, shown by
// `spokesync status` and reported to the parent.
import type { CommandContext, CommandSpec } from '../cli/command.js';
import { withStateDb } from './state-db.js';
import type { Db } from '../../apply/core/db.js';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import { isRef, type ChangeSet, type Op, type Value } from '../../apply/core/model.js';
import {
  discard, inQuarantine, listQuarantine, makeDue, quarantined, type QuarantineItem,
} from '../../apply/replay/quarantine.js';
import { CATCH_UP_MS, SpokesyncNode } from '../node.js';
import { operatorName } from '../provision/rails.js';

const USAGE = 'spokesync quarantine --config F [--json] | show ID | retry ID|--all | discard ID --reason TEXT';

export const command: CommandSpec = {
  name: 'quarantine',
  summary: 'List quarantined change sets; show, retry or discard one',
  description:
    'Without an action: every change set that could not apply here, in origin order, with the peer it came ' +
    'from, the tables it writes, the reason (table, column and op position, never a value), its first and last ' +
    'try, how many tries and when it is tried again (each failure doubles the delay, from 10 s up to an hour; ' +
    'a batch that applies something makes them all due).\n\n' +
    '`show ID`: its operations decoded, values as they would be applied. `retry ID` or `retry --all`: try ' +
    'now; with the daemon (`spokesync run`) running they are made due and the daemon tries them at its next ' +
    'tick, otherwise they are applied at once. `discard ID --reason TEXT`: give it up; it leaves quarantine, ' +
    'is kept in the state schema with who, when and why, is shown by `spokesync status`, and is reported to ' +
    'the parent at the next exchange, so no discard is silent.\n\n' +
    '--json prints the list as [{changeId, origin, fromPeer, tables, reason, waitsFor, firstTry, lastTry, tries, ' +
    'nextTry}], `show` as {…, ops: [{kind, table, id, row | set, old | digest}]}.\n\n' +
    'Exit status: 0 done, 1 failure, 2 bad usage (an unknown id, a missing --reason, both ID and --all).',
  args: '[show ID | retry ID|--all | discard ID --reason TEXT]',
  options: {
    json: { type: 'boolean', help: 'print as JSON' },
    all: { type: 'boolean', help: 'with retry: every quarantined change set' },
    reason: { type: 'string', arg: 'TEXT', help: 'with discard: why it is given up (recorded and reported)' },
  },
  needsConfig: true,
  async run(ctx) {
    const [action, id, ...extra] = ctx.args;
    if (extra.length > 0) throw usage(`unexpected argument ${JSON.stringify(extra[0])}`);
    if (action !== 'retry' && ctx.options.all !== undefined) throw usage('--all goes with retry');
    if (action !== 'discard' && ctx.options.reason !== undefined) throw usage('--reason goes with discard');
    if (action === undefined) return withStateDb(ctx, (db) => list(ctx, db));
    if (action === 'show') return withStateDb(ctx, (db) => show(ctx, db, needId(id, action)));
    if (action === 'retry') {
      if (id !== undefined && ctx.options.all === true) throw usage('retry takes an ID or --all, not both');
      if (id === undefined && ctx.options.all !== true) throw usage('retry takes an ID or --all');
      return retry(ctx, id);
    }
    if (action === 'discard') {
      const why = ctx.options.reason;
      const changeId = needId(id, action);
      if (typeof why !== 'string' || why.trim() === '') throw usage('discard needs --reason TEXT: why the change set is given up (it is recorded and reported)');
      return withStateDb(ctx, (db) => discardOne(ctx, db, changeId, why.trim()));
    }
    throw usage(`unknown action ${JSON.stringify(action)}`);
  },
};

function usage(message: string): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_USAGE', `${message}; usage: ${USAGE}`);
}

function needId(id: string | undefined, action: string): string {
  if (id === undefined || id === '') throw usage(`${action} needs the id of a quarantined change set (see \`spokesync quarantine --config F\`)`);
  return id;
}

function unknownId(id: string): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_USAGE', `no change set ${JSON.stringify(id)} is in quarantine here`, {
    fix: 'List the quarantined change sets with `spokesync quarantine --config F`.',
  });
}


async function list(ctx: CommandContext, db: Db): Promise<number> {
  const items = await listQuarantine(db, ctx.config.database.stateSchema);
  ctx.out(ctx.options.json === true ? JSON.stringify(items, null, 2) : formatList(items));
  return 0;
}

export function formatList(items: readonly QuarantineItem[]): string {
  if (items.length === 0) return 'nothing in quarantine';
  const lines = [`${items.length} change set${items.length === 1 ? '' : 's'} in quarantine, in origin order:`];
  for (const q of items) {
    lines.push('');
    lines.push(`${q.changeId}  origin ${q.origin}, from ${q.fromPeer}, tables ${q.tables.join(', ') || '?'}`);
    lines.push(`  reason   ${q.reason}${q.waitsFor ? ` (waits for ${q.waitsFor})` : ''}`);
    lines.push(`  tries    ${q.tries}: first ${q.firstTry}, last ${q.lastTry}, next ${q.nextTry ?? 'at the next retry'}`);
  }
  return lines.join('\n');
}

async function show(ctx: CommandContext, db: Db, id: string): Promise<number> {
  const q = await quarantined(db, ctx.config.database.stateSchema, id);
  if (!q) throw unknownId(id);
  const { cs, ...rest } = q;
  if (ctx.options.json === true) {
    ctx.out(JSON.stringify({ ...rest, ...(cs instanceof Error ? { unreadable: cs.message } : { hlc: cs.hlc, time: cs.time, ops: cs.ops.map(opJson) }) }, null, 2));
    return 0;
  }
  const lines = formatList([rest]).split('\n').slice(2);
  if (cs instanceof Error) lines.push(`  body cannot be read: ${cs.message}`);
  else lines.push(...formatOps(cs));
  ctx.out(lines.join('\n'));
  return 0;
}

function formatOps(cs: ChangeSet): string[] {
  const lines = [`  stamp    ${cs.hlc} (${cs.time})`, `  ops      ${cs.ops.length}:`];
  cs.ops.forEach((op, i) => {
    lines.push(`  ${i + 1}. ${op.kind} ${op.table} ${op.id}`);
    const j = opJson(op);
    for (const k of ['row', 'set', 'old'] as const) {
      const v = j[k];
      if (v !== undefined) for (const [c, x] of Object.entries(v)) lines.push(`       ${k === 'old' ? 'was ' : ''}${c} = ${JSON.stringify(x)}`);
    }
    if (op.kind === 'delete') lines.push(`       row digest ${op.digest}`);
  });
  return lines;
}

type Shown = Record<string, unknown>;

function opJson(op: Op): { kind: string; table: string; id: string; row?: Shown; set?: Shown; old?: Shown; digest?: string } {
  if (op.kind === 'insert') return { kind: op.kind, table: op.table, id: op.id, row: values(op.row) };
  if (op.kind === 'update') return { kind: op.kind, table: op.table, id: op.id, set: values(op.set), old: values(op.old) };
  return { kind: op.kind, table: op.table, id: op.id, digest: op.digest };
}

/** Values as apply writes them: text as is, bytes as base64, references as the identity they resolve to. */
function values(row: Readonly<Record<string, Value>> | undefined): Shown {
  const out: Shown = {};
  for (const [k, v] of Object.entries(row ?? {})) {
    out[k] = v === null || typeof v === 'string' ? v : Buffer.isBuffer(v) ? { base64: v.toString('base64') } : isRef(v) ? { ref: v.ref, id: v.id } : v;
  }
  return out;
}

async function retry(ctx: CommandContext, id: string | undefined): Promise<number> {
  const stateSchema = ctx.config.database.stateSchema;
  let node: SpokesyncNode;
  try {
    node = await SpokesyncNode.open(ctx.config, ctx.log);
  } catch (e) {
    if (!isSpokesyncError(e) || e.code !== 'SPOKESYNC_E_BUSY') throw e;
    // the daemon runs: it tries what is due at its next tick
    return withStateDb(ctx, async (db) => {
      if (id !== undefined && !(await inQuarantine(db, stateSchema, [id])).has(id)) throw unknownId(id);
      const n = await makeDue(db, stateSchema, id === undefined ? undefined : [id]);
      ctx.out(`${n} change set${n === 1 ? '' : 's'} made due: the running daemon tries ${n === 1 ? 'it' : 'them'} at its next tick (see \`spokesync quarantine --config F\`)`);
      return 0;
    });
  }
  try {
    if (id !== undefined && !(await inQuarantine(node.db, stateSchema, [id])).has(id)) throw unknownId(id);
    await node.startCapture();
    await makeDue(node.db, stateSchema, id === undefined ? undefined : [id]);
    const r = await node.applier.retryQuarantine();
    await node.capture.caughtUp(CATCH_UP_MS);
    const left = id === undefined ? null : (await inQuarantine(node.db, stateSchema, [id])).has(id);
    ctx.out(`retried ${r.retried}: applied ${r.applied}, still quarantined ${r.quarantined}, duplicates ${r.duplicates}` +
      (left === null ? '' : left ? `; ${id} is still in quarantine (see \`spokesync quarantine --config F show ${id}\`)` : `; ${id} applied`));
    return 0;
  } finally {
    await node.close();
  }
}

async function discardOne(ctx: CommandContext, db: Db, id: string, why: string): Promise<number> {
  const by = operatorName();
  const done = await discard(db, ctx.config.database.stateSchema, ctx.config.node.id, id, by, why, Date.now());
  if (!done) throw unknownId(id);
  ctx.log.warn('quarantined change set discarded', { change: id, by, why });
  ctx.out(`discarded ${id} (by ${by}: ${why}); it is kept in the state schema, shown by \`spokesync status\`` +
    (ctx.config.parent ? ' and reported to the parent at the next exchange' : ''));
  return 0;
}
