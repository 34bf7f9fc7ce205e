// Runs a group of change sets in one transaction: for each, its ledger row
// first, then its ops. A change set that cannot apply is quarantined in the
// same transaction and the others are neither lost nor half-applied: the
// transaction is rolled back and run again with that change set quarantined
// instead of applied. (Not savepoints: MariaDB writes every SAVEPOINT into the
// binlog inside the transaction; capture reads past them (assembler.ts), but
// failures are rare, so running a group again costs little and keeps the
// binlog free of them.) A power cut keeps the whole group or none of it. Lock
// errors run the group again.
import type { Db, Queryable } from '../core/db.js';
import { SpokesyncError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { Carried, writeCarried } from './carry.js';
import type { OpContext } from './context.js';
import type { Holds } from './holds.js';
import { applyInsertRun, splitRuns } from './inserts.js';
import { writeLedger } from './ledger.js';
import { groupLookup } from './lookup.js';
import { applyDelete, applyUpdate } from './ops.js';
import { changeSetDigest, changeSetXml, stampAhead } from './content.js';
import { ApplyProblem, dataProblem, isDuplicateKey, isTransient, type ProblemPlace } from './problems.js';
import { claim, quarantine, release, type FailedTry, type RetryDelay } from './quarantine.js';
import type { Resolver } from './target-resolver.js';
import type { RowMapper } from './rowmap.js';
import type { PlannedEntry, PlannedOp } from './validate.js';
import type { Versions } from './versions.js';

export interface GroupItem {
  readonly entry: PlannedEntry;
  readonly fromPeer: string;
  /** new: arrived in a batch; retry: taken from quarantine */
  readonly mode: 'new' | 'retry';
  /** this node's own change set, lost when it was restored from a backup and sent back by a peer: it applies */
  readonly ownBack?: boolean;
}

export interface GroupCounts {
  applied: number;
  duplicates: number;
  quarantined: number;
  conflicts: number;
  retried: number;
}

export interface ExecutorDeps {
  readonly db: Db;
  readonly schema: string;
  readonly stateSchema: string;
  readonly node: string;
  readonly log: Logger;
  readonly now: () => number;
  readonly waitForCapture: (() => Promise<void>) | undefined;
  readonly resolver: Resolver;
  readonly versions: Versions;
  rowmap: RowMapper;
  /** how far a stamp may be ahead of now() before its change set is held (clock.maxDrift) */
  readonly maxDriftMs: number;
  /** the delay before a quarantined change set is tried again */
  readonly retryDelay: RetryDelay;
}

const ATTEMPTS = 5;

export function emptyCounts(): GroupCounts {
  return { applied: 0, duplicates: 0, quarantined: 0, conflicts: 0, retried: 0 };
}

/** A change set of the group failed: run the group again with it quarantined. */
class ItemFailed extends Error {
  constructor(readonly id: string, readonly problem: ApplyProblem | 'duplicate') {
    super(problem === 'duplicate' ? 'duplicate' : problem.reason);
  }
}

/**
 * Applies the group; returns its counts, the holds after it (the input holds
 * are not changed), and the retried change sets that failed again: their
 * bookkeeping is not written in the group's transaction (quarantine.ts recordTries).
 */
export async function runGroup(
  d: ExecutorDeps, items: readonly GroupItem[], holds: Holds,
): Promise<{ counts: GroupCounts; holds: Holds; failedTries: FailedTry[] }> {
  let retries = 0;
  const failed = new Map<string, ApplyProblem | 'duplicate'>();
  for (let attempt = 1; ; ) {
    const h = holds.clone();
    const layers = [d.resolver.cache, d.versions.overlay, d.versions.noops];
    for (const l of layers) l.begin();
    const failedTries: FailedTry[] = [];
    try {
      const counts = await d.db.transaction((tx) => applyGroup(d, tx, items, h, failed, failedTries));
      for (const l of layers) l.commit();
      d.versions.noops.clear();
      counts.retried += retries;
      return { counts, holds: h, failedTries };
    } catch (e) {
      for (const l of layers) l.rollbackAll();
      if (e instanceof ItemFailed) {
        failed.set(e.id, e.problem);
        continue;
      }
      if (isTransient(e) && attempt++ < ATTEMPTS) {
        retries += items.length;
        d.log.info('apply group runs again after a lock conflict', { attempt, error: e });
        await new Promise((r) => setTimeout(r, 20 * attempt * attempt));
        continue;
      }
      if (e instanceof SpokesyncError) throw e;
      throw new SpokesyncError('SPOKESYNC_E_APPLY', `applying ${items.length} change sets failed; none of them was kept`, { cause: e });
    }
  }
}

async function applyGroup(
  d: ExecutorDeps, conn: Queryable, items: readonly GroupItem[], holds: Holds, failed: ReadonlyMap<string, ApplyProblem | 'duplicate'>,
  failedTries: FailedTry[],
): Promise<GroupCounts> {
  const tx = overlapping(conn, items.map((i) => () => changeSetDigest(i.entry.cs)));
  d.resolver.attach(tx);
  const counts = emptyCounts();
  const ids = items.map((i) => i.entry.cs.id);
  const rows = items.flatMap((i) => i.entry.ops.map((p) => [p.target.table.name, p.target.id, p.op.kind === 'insert'] as const));
  const known = await groupLookup(tx, d.stateSchema, ids, d.versions, rows);
  const done = known.ledger;
  const queued = known.quarantine;
  const seen = new Set<string>();
  for (const item of items) {
    const cs = item.entry.cs;
    if (item.mode === 'new' && ((cs.origin === d.node && item.ownBack !== true) || done.has(cs.id) || queued.has(cs.id) || seen.has(cs.id))) {
      counts.duplicates++;
      continue;
    }
    seen.add(cs.id);
    // a discard that got there first wins: never both applied and discarded
    if (item.mode === 'retry' && !(await claim(tx, d.stateSchema, cs.id))) continue;
    if (item.mode === 'retry' && done.has(cs.id)) {
      await release(tx, d.stateSchema, cs.id);
      counts.duplicates++;
      continue;
    }
    const by = holds.heldBy(item.entry);
    const ahead = stampAhead(cs, d.now(), d.maxDriftMs);
    const failure = failed.get(cs.id) ?? (ahead === null ? undefined : new ApplyProblem(ahead));
    if (failure === 'duplicate') {
      counts.duplicates++;
      continue;
    }
    if (by !== undefined || failure !== undefined) {
      const reason = failure?.reason ?? `waits behind quarantined change set ${by} of the same origin`;
      if (failure && item.mode === 'new') d.log.info('change set quarantined', { change: cs.id, reason, waitsFor: failure.waitsFor });
      const waitsFor = failure ? failure.waitsFor : by ?? null;
      if (item.mode === 'retry') failedTries.push({ changeId: cs.id, reason, waitsFor });
      else await quarantine(tx, d.stateSchema, cs, item.fromPeer, changeSetXml(cs), reason, waitsFor, d.now(), d.retryDelay);
      holds.hold(item.entry);
      counts.quarantined++;
      continue;
    }
    // The ledger row goes without waiting for its answer: the connection runs
    // the change set's first statement after it while the client builds that
    // statement; its answer is awaited before any second statement is sent.
    const ledger = settled(writeLedger(tx, d.stateSchema, cs, item.fromPeer, d.now()));
    const csTx = claimedFirst(tx, ledger);
    const ctx: OpContext = {
      tx: csTx, schema: d.schema, stateSchema: d.stateSchema, resolver: d.resolver, versions: d.versions, rowmap: d.rowmap,
      log: d.log, now: d.now, waitForCapture: d.waitForCapture, conflicts: 0, carried: new Carried(),
    };
    let place: ProblemPlace | undefined;
    try {
      let done = 0;
      for (const run of splitRuns(item.entry.ops)) {
        place = placeOf(run, done + 1, item.entry.ops.length);
        done += run.length;
        const kind = run[0]!.op.kind;
        if (kind === 'insert') await applyInsertRun(ctx, cs, run);
        else if (kind === 'update') await applyUpdate(ctx, cs, run[0]!);
        else await applyDelete(ctx, cs, run[0]!);
      }
      place = undefined;
      await writeCarried(csTx, d.stateSchema, cs, ctx.carried);
      if (item.mode === 'retry') await release(csTx, d.stateSchema, cs.id);
      await ledger.then(rethrow);
    } catch (e) {
      // a failed ledger row is the cause (the statement sent after it ran unclaimed, and is rolled back)
      const failedLedger = await ledger;
      const cause = 'error' in failedLedger ? failedLedger.error : e;
      // applied meanwhile by another path (USB and network at once): a duplicate
      if (cause !== e && isDuplicateKey(cause)) throw new ItemFailed(cs.id, 'duplicate');
      const problem = dataProblem(cause, cause === e ? place : undefined);
      if (!problem) throw cause;
      throw new ItemFailed(cs.id, problem);
    }
    counts.applied++;
    counts.conflicts += ctx.conflicts;
  }
  await d.versions.flush(tx);
  return counts;
}

/** A statement's outcome without a rejection left unhandled while it is in flight. */
function settled(p: Promise<unknown>): Promise<{ error?: unknown }> {
  return p.then(() => ({}), (error: unknown) => ({ error }));
}

function rethrow(r: { error?: unknown }): void {
  if ('error' in r) throw r.error;
}

/** `tx` whose first statement, once sent, waits for `ledger`'s answer (and fails with its error). */
function claimedFirst(tx: Queryable, ledger: Promise<{ error?: unknown }>): Queryable {
  let checked = false;
  const gate = async <T>(p: Promise<T>): Promise<T> => {
    if (!checked) {
      checked = true;
      const r = await ledger;
      if ('error' in r) {
        p.catch(() => undefined);
        throw r.error;
      }
    }
    return p;
  };
  return {
    query: (sql, params) => gate(tx.query(sql, params)),
    exec: (sql, params) => gate(tx.exec(sql, params)),
  };
}

/**
 * The transaction, running one of `tasks` (CPU work the group needs later) each
 * time a statement has been sent, so it overlaps the server's work on it. A task
 * that throws is left: the caller meets the same error where it needs the result.
 */
function overlapping(tx: Queryable, tasks: (() => unknown)[]): Queryable {
  const meanwhile = <T>(p: Promise<T>): Promise<T> => {
    const task = tasks.shift();
    try {
      task?.();
    } catch {
      // thrown again where the result is needed
    }
    return p;
  };
  return {
    query: (sql, params) => meanwhile(tx.query(sql, params)),
    exec: (sql, params) => meanwhile(tx.exec(sql, params)),
  };
}

/** The table, columns and op positions of a run of ops (one statement, or one op's statements). */
function placeOf(run: readonly PlannedOp[], firstOp: number, opCount: number): ProblemPlace {
  const columns = new Set<string>();
  for (const p of run) {
    const values = p.op.kind === 'insert' ? p.op.row : p.op.kind === 'update' ? p.op.set : {};
    for (const c of Object.keys(values)) columns.add(c);
  }
  return { table: run[0]!.target.table.name, columns: [...columns], firstOp, ops: run.length, opCount };
}
