// The transactional replay of change sets received from a peer (DESIGN.md
// "Data flow": ledger check, one transaction per change set that also writes
// the ledger row, identities → local ids, conflict detection). Used by a
// parent for its children's batches and by a child for its parent's.
import type { Db } from '../core/db.js';
import { SpokesyncError, isSpokesyncError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Catalog } from '../core/catalog.js';
import { decodeChangeSet } from '../codec/decode.js';
import type { BatchEntry } from '../core/model.js';
import { DEFAULT_MAX_DRIFT_MS } from '../core/hlc.js';
import { lockNameFor, withLock } from '../core/named-lock.js';
import { changeSetXml, checkContent } from './content.js';
import { emptyCounts, runGroup, type ExecutorDeps, type GroupCounts, type GroupItem } from './executor.js';
import { Holds } from './holds.js';
import { blockedTables, heldMessage, holdChangeSet, readHeld, tablesOf, unhold } from './held.js';
import { Layers } from './layers.js';
import { readQuarantine, recordTries, type FailedTry, type QuarantineRow, type RetryDelay } from './quarantine.js';
import { Resolver } from './target-resolver.js';
import { RowMapper } from './rowmap.js';
import { badChange } from './target.js';
import { checkShape, refuseUnsynced, shapeMap, type ShapeProblem } from './shape-check.js';
import { checkHoldable, validateEntry, type PlannedEntry } from './validate.js';
import type { TableShape } from '../codec/shape.js';
import type { ChangeSet } from '../core/model.js';
import { Versions } from './versions.js';

export interface ApplierOptions {
  readonly db: Db;
  readonly catalog: Catalog;
  /** the application schema */
  readonly schema: string;
  readonly stateSchema: string;
  /** this node's id */
  readonly node: string;
  /** synced tables that may be written */
  readonly tables: ReadonlySet<string>;
  readonly log: Logger;
  readonly now?: () => number;
  /** resolves when `versions` reflects every local write (the daemon passes capture.caughtUp) */
  readonly waitForCapture?: () => Promise<void>;
  /** change sets per transaction (default 20) */
  readonly groupSize?: number;
  /** how far a stamp may be ahead of now() before its change set is held in quarantine (default 1 day) */
  readonly maxDriftMs?: number;
  /** the delay before a quarantined change set that failed `tries` times is tried again (default none: every retry) */
  readonly retryDelayMs?: RetryDelay;
  /** rejects when this process may not write now (the node lock is lost): nothing is applied */
  readonly gate?: () => Promise<void>;
  /** how long an apply waits while another process applies for this node (default 10 minutes) */
  readonly lockWaitMs?: number;
}

/** The lock every applier of a node holds while it applies or retries: one applier at a time, whatever the process. */
export const applyLockName = (stateSchema: string): string => lockNameFor(stateSchema, 'apply');
const APPLY_LOCK_WAIT_MS = 10 * 60_000;

export interface BatchOptions {
  /** ids of this node's own change sets that apply: lost when it was restored from a backup, sent back by the peer */
  readonly ownBack?: ReadonlySet<string>;
}

export interface RetryOptions {
  /** try every quarantined change set now, whatever its delay */
  readonly all?: boolean;
}

export interface ApplyReport {
  /** change sets applied now */
  readonly applied: number;
  /** already applied (ledger), already quarantined, or this node's own coming back */
  readonly duplicates: number;
  /** change sets that went to (or stayed in) quarantine */
  readonly quarantined: number;
  /** change sets held because a table differs here (held.ts) */
  readonly held?: number;
  /** conflicts logged */
  readonly conflicts: number;
  /** change sets tried again: quarantined ones retried, and groups run again after a lock conflict */
  readonly retried: number;
  /** highest entry seq of the batch, all of it durably taken ('0' when none) */
  readonly highestSeq: string;
}

const NODE_ID = /^[a-z0-9-]{1,64}$/;
/** Versions written by this applier kept in memory until capture has surely recorded them (about 100 bytes each). */
export const MAX_REMEMBERED = 25_000;

export class Applier {
  private readonly deps: ExecutorDeps;
  private catalog: Catalog;
  private readonly groupSize: number;
  private queue: Promise<unknown> = Promise.resolve();
  /** something was applied (or the catalogue changed) since the last retry: every quarantined change set may apply now */
  private changed = false;
  private binlogNoted = false;
  /** held change sets are checked again at start and after every catalogue change, never on a timer */
  private heldDirty = true;

  constructor(private readonly o: ApplierOptions) {
    if (o.catalog.schema !== o.schema) throw new Error(`the catalogue is of schema ${o.catalog.schema}, not ${o.schema}`);
    this.catalog = o.catalog;
    this.groupSize = Math.max(1, Math.floor(o.groupSize ?? 20));
    this.deps = {
      db: o.db, schema: o.schema, stateSchema: o.stateSchema, node: o.node, log: o.log,
      now: o.now ?? Date.now, waitForCapture: o.waitForCapture,
      resolver: new Resolver(o.schema, new Layers()),
      versions: new Versions(o.db, o.stateSchema, () => this.catalog),
      rowmap: new RowMapper(o.catalog, o.stateSchema),
      maxDriftMs: o.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS,
      retryDelay: o.retryDelayMs ?? ((): number => 0),
    };
  }

  /** Uses a reloaded catalogue from the next batch on (after DDL on a synced table). */
  updateCatalog(catalog: Catalog): void {
    if (catalog.schema !== this.o.schema) throw new Error(`the catalogue is of schema ${catalog.schema}, not ${this.o.schema}`);
    this.catalog = catalog;
    this.deps.rowmap = new RowMapper(catalog, this.o.stateSchema);
    this.changed = true;
    this.heldDirty = true;
  }

  /** The catalogue in use (the shapes this node sends come from it). */
  currentCatalog(): Catalog {
    return this.catalog;
  }

  /**
   * Validates the whole batch first (nothing runs if any entry names an unknown
   * or unsynced table or column, or is malformed), then applies in order.
   */
  applyBatch(fromPeer: string, entries: readonly BatchEntry[], shapes?: readonly TableShape[], opts: BatchOptions = {}): Promise<ApplyReport> {
    return this.serially(async () => { await this.o.gate?.(); return typed(this.apply(fromPeer, entries, shapes, opts)); });
  }

  /**
   * Retries quarantined change sets in origin order (called on every exchange):
   * those whose delay has passed, or all of them when something was applied
   * since the last retry. Nothing due: nothing is written.
   */
  retryQuarantine(opts: RetryOptions = {}): Promise<ApplyReport> {
    return this.serially(async () => { await this.o.gate?.(); return typed(this.retry(opts.all === true)); });
  }

  /** One at a time here, and across processes (a command applying a USB file beside the daemon) under the apply lock. */
  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const waitMs = this.o.lockWaitMs ?? APPLY_LOCK_WAIT_MS;
    const busy = (): SpokesyncError => new SpokesyncError('SPOKESYNC_E_BUSY',
      `another spokesync process has been applying change sets for node ${this.o.node} for ${Math.round(waitMs / 1000)} s; nothing was applied here`,
      { fix: 'A command importing a file beside the daemon takes turns with it; if none runs, see `spokesync status`. What was not applied comes again.' });
    const locked = (): Promise<T> => typed(withLock(this.o.db, applyLockName(this.o.stateSchema), waitMs, busy, fn));
    const next = this.queue.then(locked, locked);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Bounds what the versions overlay remembers: once it is large, let capture catch up and forget it. */
  private async trim(): Promise<void> {
    if (this.deps.versions.remembered < MAX_REMEMBERED) return;
    await this.o.waitForCapture?.();
    this.deps.versions.forgetWritten();
  }

  private reset(): void {
    this.deps.versions.reset();
    this.deps.rowmap.reset();
    this.deps.resolver.cache.rollbackAll();
    this.deps.resolver.cache.clear();
  }

  private async apply(fromPeer: string, entries: readonly BatchEntry[], shapes: readonly TableShape[] | undefined, opts: BatchOptions): Promise<ApplyReport> {
    if (!NODE_ID.test(fromPeer)) throw badChange('the sending peer is not a node id ([a-z0-9-]+)');
    if (this.heldDirty) await this.releaseHeld();
    const { planned, held } = await this.sortOut(fromPeer, entries, shapes);
    await checkContent(this.o.db, this.o.stateSchema, fromPeer, planned);
    await this.hold(fromPeer, held);
    this.reset();
    await this.trim();
    let holds = await this.loadHolds();
    const total = emptyCounts();
    for (let i = 0; i < planned.length; i += this.groupSize) {
      const items = planned.slice(i, i + this.groupSize).map((entry): GroupItem => ({
        entry, fromPeer, mode: 'new', ...(opts.ownBack?.has(entry.cs.id) ? { ownBack: true } : {}),
      }));
      const r = await runGroup(this.deps, items, holds);
      holds = r.holds;
      add(total, r.counts);
    }
    if (total.applied > 0) this.changed = true;
    const highestSeq = entries.reduce((m, e) => (BigInt(e.seq) > BigInt(m) ? e.seq : m), '0');
    this.o.log.info('batch applied', { from: fromPeer, entries: entries.length, ...total, held: held.length, highestSeq });
    return { ...total, held: held.length, highestSeq };
  }

  /**
   * Which entries apply now and which are held: a change set writing a table
   * that earlier held change sets of this peer block waits behind them; one
   * whose values this node's tables cannot hold exactly is held (shape-check.ts).
   */
  private async sortOut(fromPeer: string, entries: readonly BatchEntry[], shapes: readonly TableShape[] | undefined) {
    const map = shapeMap(shapes);
    const blocked = await blockedTables(this.o.db, this.o.stateSchema, fromPeer);
    const planned: PlannedEntry[] = [];
    const held: Held[] = [];
    for (const e of entries) {
      const cs = e.cs;
      refuseUnsynced(this.catalog, this.o.tables, cs);
      const tables = tablesOf(cs);
      const wait = tables.map((t) => blocked.get(t)).find((b) => b !== undefined);
      let problem: ShapeProblem;
      if (wait) problem = wait.problem;
      else {
        const v = checkShape(this.catalog, this.o.tables, cs, map);
        if (v.kind === 'ok') {
          planned.push(v.ops === cs.ops ? validateEntry(this.catalog, this.o.tables, e) : { ...validateEntry(this.catalog, this.o.tables, { seq: e.seq, cs: { ...cs, ops: v.ops } }), cs });
          continue;
        }
        problem = v.problem;
      }
      checkHoldable(e);
      held.push({ cs, problem, waitsFor: wait?.changeId ?? null, shapes: map === null ? null : tables.flatMap((t) => map.get(t) ?? []) });
      for (const t of tables) if (!blocked.has(t)) blocked.set(t, { changeId: cs.id, problem });
    }
    return { planned, held };
  }

  private async hold(fromPeer: string, held: readonly Held[]): Promise<void> {
    if (held.length === 0) return;
    const now = this.deps.now();
    await this.o.db.transaction(async (tx) => {
      for (const h of held) {
        const fresh = await holdChangeSet(tx, this.o.stateSchema, h.cs, fromPeer, changeSetXml(h.cs), h.problem, h.waitsFor, h.shapes, now);
        // said once: when a table starts to be held, not for each change set waiting behind
        if (fresh && h.waitsFor === null) {
          this.o.log.warn('change sets held', { from: fromPeer, table: h.problem.table, change: h.cs.id, message: heldMessage(1, fromPeer, h.problem) });
        }
      }
    });
  }

  /** Applies, in arrival order, every held change set whose tables now hold its values; the rest stay held. */
  private async releaseHeld(): Promise<void> {
    this.heldDirty = false;
    this.reset();
    const blocked = new Map<string, Set<string>>();
    let items: { item: GroupItem; changeId: string }[] = [];
    let released = 0;
    const flush = async (): Promise<void> => {
      if (items.length === 0) return;
      await runGroup(this.deps, items.map((i) => i.item), await this.loadHolds());
      for (const i of items) await unhold(this.o.db, this.o.stateSchema, i.changeId);
      released += items.length;
      items = [];
    };
    try {
      for await (const h of readHeld(this.o.db, this.o.stateSchema)) {
        let b = blocked.get(h.fromPeer);
        if (!b) blocked.set(h.fromPeer, (b = new Set()));
        const entry = h.tables.some((t) => b.has(t)) ? null : this.releasable(h.body, h.shapes);
        if (entry === null) {
          for (const t of h.tables) b.add(t);
          continue;
        }
        items.push({ item: { entry, fromPeer: h.fromPeer, mode: 'new' }, changeId: h.changeId });
        if (items.length >= this.groupSize) await flush();
      }
      await flush();
    } catch (e) {
      this.heldDirty = true;
      throw e;
    }
    if (released > 0) this.o.log.info('held change sets released', { released });
  }

  private releasable(body: Buffer, shapes: readonly TableShape[] | null): PlannedEntry | null {
    try {
      const cs = decodeChangeSet(body);
      const v = checkShape(this.catalog, this.o.tables, cs, shapeMap(shapes ?? undefined));
      if (v.kind !== 'ok') return null;
      return { ...validateEntry(this.catalog, this.o.tables, { seq: '0', cs: { ...cs, ops: v.ops } }), cs };
    } catch {
      return null;
    }
  }

  private async retry(all: boolean): Promise<ApplyReport> {
    const everything = all || this.changed;
    this.changed = false;
    if (this.heldDirty) await this.releaseHeld();
    this.reset();
    await this.trim();
    let holds = new Holds();
    const total = emptyCounts();
    const failed: FailedTry[] = [];
    let items: GroupItem[] = [];
    const flush = async (): Promise<void> => {
      if (items.length === 0) return;
      const r = await runGroup(this.deps, items, holds);
      holds = r.holds;
      add(total, r.counts);
      failed.push(...r.failedTries);
      items = [];
    };
    for await (const q of readQuarantine(this.o.db, this.o.stateSchema, this.deps.now())) {
      const entry = this.readQuarantined(q);
      if (!everything && !q.due) {
        // not tried now, but still ahead of its origin's later change sets
        if (entry instanceof Error) holds.holdOrigin(q.origin, q.changeId);
        else holds.hold(entry);
        continue;
      }
      total.retried++;
      if (entry instanceof Error) {
        failed.push({ changeId: q.changeId, reason: `cannot be read against the schema here: ${entry.message}`, waitsFor: null });
        holds.holdOrigin(q.origin, q.changeId);
        total.quarantined++;
        continue;
      }
      items.push({ entry, fromPeer: q.fromPeer, mode: 'retry' });
      if (items.length >= this.groupSize) await flush();
    }
    await flush();
    const logged = await recordTries(this.o.db, this.o.stateSchema, failed, this.deps.now(), this.deps.retryDelay);
    if (logged && !this.binlogNoted) {
      this.binlogNoted = true;
      this.o.log.info('quarantine retries are binlogged: grant BINLOG ADMIN (SUPER on MySQL) to keep them out of the binlog');
    }
    if (total.retried > 0) this.o.log.info('quarantine retried', { ...total });
    return { ...total, highestSeq: '0' };
  }

  /** The holds of everything in quarantine now: later change sets of an origin wait behind its quarantined rows. */
  private async loadHolds(): Promise<Holds> {
    const holds = new Holds();
    for await (const q of readQuarantine(this.o.db, this.o.stateSchema, this.deps.now())) {
      const entry = this.readQuarantined(q);
      if (entry instanceof Error) holds.holdOrigin(q.origin, q.changeId);
      else holds.hold(entry);
    }
    return holds;
  }

  private readQuarantined(q: QuarantineRow): ReturnType<typeof validateEntry> | Error {
    try {
      return validateEntry(this.catalog, this.o.tables, { seq: '0', cs: decodeChangeSet(q.body) });
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  }
}

interface Held {
  readonly cs: ChangeSet;
  readonly problem: ShapeProblem;
  readonly waitsFor: string | null;
  readonly shapes: readonly TableShape[] | null;
}

/** A failure outside a group's transaction (e.g. the database went away while the quarantine was read), typed. */
async function typed<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (isSpokesyncError(e)) throw e;
    throw new SpokesyncError('SPOKESYNC_E_APPLY', `applying was interrupted (${(e as { code?: string }).code ?? (e as Error).message}); what was not committed comes again`, { cause: e });
  }
}

function add(total: GroupCounts, c: GroupCounts): void {
  total.applied += c.applied;
  total.duplicates += c.duplicates;
  total.quarantined += c.quarantined;
  total.conflicts += c.conflicts;
  total.retried += c.retried;
}
