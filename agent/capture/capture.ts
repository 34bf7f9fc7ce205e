// Capture: tails the binlog from the checkpoint and journals one change set per source transaction
// (or per applied change set in it), with the checkpoint in the same InnoDB transaction as its rows.
//
// Lifecycle: start() opens the stream at the checkpoint; events are assembled into transactions
// and queued; one worker maps and writes them in groups, in order. Memory: past the budget reading
// pauses (the binlog connection's socket) until the queue is written down to half the budget; a
// pause that lasts stops the stream, which reopens where it ended. A single transaction is always
// held whole: memory grows with the largest transaction, not with the backlog. Errors: the stream
// reopens after a backoff where everything before is written; a failed write drops all that is
// not durable and rereads it from the checkpoint.
import { CARRY_TABLE } from '../../apply/replay/carry.js';
import { DEFAULT_MAX_DRIFT_MS, Hlc, hlcTime } from '../../apply/core/hlc.js';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { loadCatalog, type Catalog } from '../../apply/core/catalog.js';
import type { CaptureOptions, CaptureStatus } from './options.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';
import { TransactionAssembler, type Assembled } from './assembler.js';
import { buildGroup, type Built } from './changesets.js';
import { ddlOfInterest, recordDdl, syncedDdlTables, updateSynced } from './ddl-record.js';
import type { SourceEvent } from './events.js';
import { GROUP_LIMITS, takeGroup, type Group } from './grouping.js';
import { JournalWriter, readCheckpoint, startingCheckpoint, storedBodies, writeCheckpoint, type Checkpoint } from '../journal/writer.js';
import { comparePositions, formatPosition, type BinlogPosition } from './position.js';
import { lookupKey, type Lookup } from '../../apply/core/row-identity.js';
import { scanAhead } from './lookahead.js';
import { UnresolvedReference } from './mapper.js';
import { IdentityResolver } from './ref-resolver.js';
import { assertReadable, binlogEnd, isPurgedError, purgedNow } from './binlog-server.js';
import { BinlogSource } from './binlog-source.js';
import { LastError } from './last-error.js';
import { RowDecoder } from './row-decoder.js';
import { XmlSink } from '../../apply/codec/xml-sink.js';
import { StateSession } from './state-session.js';
import { Alarm, CaughtUpWaiters, backoffMs, interruptibleSleep } from './waiters.js';
import { ReadGate } from './budget.js';

export type { CaptureOptions, CaptureStatus } from './options.js';

/** Checkpoint after this many skipped (untracked) transactions, or this long after the last write. */
const SKIP_EVENTS = 1000;
const SKIP_MS = 5000;

export class Capture {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** ends the backoff sleep early (stop) */
  private readonly wake: () => void;
  private readonly gate: ReadGate;
  private readonly session: StateSession;
  private readonly writer: JournalWriter;
  private readonly resolver: IdentityResolver;
  private readonly assembler: TransactionAssembler;
  private readonly waiters: CaughtUpWaiters;
  private readonly skipMs: number;
  private catalog: Catalog;
  /** the synced tables: those given, then as DDL creates, renames and drops them */
  private readonly tables: Set<string>;
  private readonly syncs: (table: string) => boolean;
  private clock = new Hlc(() => 0);
  /** the commit time the clock's next tick reads: stamps follow commit order and replay identically */
  private physical = 0;
  private source: BinlogSource | null = null;
  private queue: Assembled[] = [];
  private queuedBytes = 0;
  /** queue items already in a group being mapped or written */
  private taken = 0;
  /** the write of the last group, not yet awaited */
  private inflight: Promise<void> | null = null;
  /** GTID of the last transaction taken into a group */
  private tailGtid = '';
  private durable: Checkpoint = { position: { file: '', pos: 0 }, gtid: '', hlc: '0' };
  /** every transaction before this is journaled or has nothing to journal */
  private processed: { position: BinlogPosition; gtid: string } = { position: { file: '', pos: 0 }, gtid: '' };
  private skipped = 0;
  private lastWrite = 0;
  private journaled = 0;
  private running = false;
  private reopenNeeded = false;
  /** wakes the worker to checkpoint skipped transactions */
  private readonly alarm = new Alarm();
  private failures = 0;
  private pumping: Promise<void> | null = null;
  private readonly lastError = new LastError();
  private fatal: SpokesyncError | undefined;
  /** the read-ahead questions already asked (checkpoint and rows) */
  private readonly readAheadAsked = new Set<string>();
  /** reads rows straight into canonical values where it can */
  private readonly rowDecoder = new RowDecoder();
  /** where inserts the short way are written */
  private readonly sink = new XmlSink();
  private stopping = new AbortController(); // stops a read-ahead in progress (stop())

  constructor(private readonly opts: CaptureOptions) {
    this.log = opts.log.child({ part: 'capture' });
    this.now = opts.now ?? Date.now;
    const nap = interruptibleSleep();
    this.sleep = opts.sleep ?? nap.sleep;
    this.wake = nap.wake;
    this.gate = new ReadGate(opts.memoryBytes ?? 16 * 1024 * 1024, this.now);
    this.skipMs = opts.skipCheckpointMs ?? SKIP_MS;
    this.catalog = opts.catalog;
    this.session = new StateSession(opts.settings, this.log);
    this.writer = new JournalWriter(this.session, opts.stateSchema);
    this.resolver = new IdentityResolver(opts.db, () => this.catalog, opts.stateSchema, 20_000);
    this.tables = new Set(opts.tables);
    this.syncs = opts.syncs ?? ((t) => opts.tables.has(t));
    this.assembler = new TransactionAssembler({ schema: opts.schema, stateSchema: opts.stateSchema, tables: this.tables });
    this.waiters = new CaughtUpWaiters(this.now);
  }

  async start(): Promise<void> {
    if (this.running) return;
    const { db, stateSchema } = this.opts;
    await ensureStateSchema(db, stateSchema);
    const cp = await startingCheckpoint(db, stateSchema, this.opts.startAt, this.log);
    await assertReadable(db, cp.position);
    this.resetTo(cp);
    this.running = true;
    this.stopping = new AbortController();
    this.fatal = undefined;
    await this.openSource();
    this.log.info('capture started', { position: formatPosition(cp.position) });
  }

  async stop(): Promise<void> {
    const was = this.running;
    this.running = false;
    this.wake();
    this.alarm.clear();
    this.stopping.abort();
    await this.detachSource()?.stop();
    await this.pumping;
    await this.session.close().catch(() => undefined);
    if (!was) return;
    this.waiters.rejectAll(new SpokesyncError('SPOKESYNC_E_CAPTURE', 'capture stopped'));
    this.log.info('capture stopped', { position: formatPosition(this.processed.position), journaled: this.journaled });
  }

  /** Resolves when everything committed on the server before this call is in the journal. */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    if (this.fatal) throw this.fatal;
    if (!this.running) throw new SpokesyncError('SPOKESYNC_E_CAPTURE', 'capture is not running');
    const target = (await binlogEnd(this.opts.db)).position;
    const p = this.waiters.add(target, timeoutMs, () => this.lastError.message);
    this.waiters.settle(this.processed.position);
    this.kick();
    return p;
  }

  /** Row images read by capture's own row decoder since this capture was made (the rest went through zongji's). */
  rowsDecoded(): number {
    return this.rowDecoder.decoded;
  }

  status(): CaptureStatus {
    const first = this.queue.find((i): i is Exclude<Assembled, { kind: 'skip' }> => i.kind !== 'skip');
    const lag = !this.running ? null : first ? Math.max(0, (this.now() - first.timestamp) / 1000) : 0;
    return {
      file: this.processed.position.file,
      pos: this.processed.position.pos,
      gtid: this.processed.gtid,
      journaled: this.journaled,
      lagSeconds: lag,
      running: this.running,
      ...(this.session.binlogged === undefined ? {} : { stateBinlogged: this.session.binlogged }),
      ...this.lastError.fields(),
    };
  }

  // --- the stream ---
  private async openSource(): Promise<void> {
    await this.opts.beforeOpen?.();
    const { schema, stateSchema } = this.opts;
    const src = new BinlogSource(
      {
        settings: this.opts.settings, serverId: this.opts.serverId, include: { [schema]: [...this.tables], [stateSchema]: ['ledger', CARRY_TABLE] },
        ...(this.opts.rowDecoder === false ? {} : {
          rows: { decoder: this.rowDecoder, tableInfo: (s: string, t: string) => (s === schema && this.tables.has(t) ? this.catalog.tables.get(t) : undefined) },
        }),
      },
      this.processed.position,
    );
    this.assembler.reset();
    this.source = src;
    try {
      const warn = (message: string): void => this.log.warn(message, { position: formatPosition(this.processed.position) });
      await src.start({ event: (ev) => this.onEvent(src, ev), error: (e) => this.onSourceError(src, e), warn });
    } catch (e) {
      if (this.source === src) this.source = null;
      await src.stop();
      throw e;
    }
  }

  private onEvent(src: BinlogSource, ev: SourceEvent): void {
    if (src !== this.source) return;
    let item: Assembled | null;
    try {
      item = this.assembler.push(ev);
    } catch (e) {
      this.onSourceError(src, e as Error);
      return;
    }
    if (item) {
      this.queue.push(item);
      if (item.kind === 'txn') this.queuedBytes += item.bytes;
      this.kick();
    }
    if (this.gate.pauseNow(this.queuedBytes, this.assembler.openBytes)) {
      this.log.debug('capture memory budget reached: reading pauses', { queuedBytes: this.queuedBytes });
      src.pause();
    }
  }

  /** After a write: reading resumes, or a pause that lasted closes the stream. */
  private resumeReading(): void {
    const src = this.source;
    if (!src) return;
    const next = this.gate.afterWrite(this.queuedBytes, this.assembler.openBytes);
    if (next === 'resume') src.resume();
    if (next === 'close') {
      this.log.debug('capture paused too long: the stream closes and reopens where it ended');
      this.closeSource();
    }
  }

  private onSourceError(src: BinlogSource, e: Error): void {
    if (src !== this.source) return;
    this.lastError.note(e);
    this.failures++;
    if (isSpokesyncError(e, 'SPOKESYNC_E_BINLOG_ROW')) {
      // never a shortened row list: the event is not taken, and is read again from the checkpoint
      this.log.error('a row image in the binlog cannot be read; capture restarts from its checkpoint', {
        code: e.code, error: e, position: formatPosition(this.processed.position),
      });
    } else {
      this.log.warn('binlog stream failed; it reopens from the last captured position', { error: e });
    }
    this.closeSource();
  }

  /** Stops the stream; the worker writes what is queued, then reopens it where it ended. */
  private closeSource(): void {
    const src = this.detachSource();
    this.assembler.reset();
    this.reopenNeeded = true;
    if (src) void src.stop();
    this.kick();
  }

  /** The current stream, which from now on delivers nothing. */
  private detachSource(): BinlogSource | null {
    const src = this.source;
    this.source = null;
    this.gate.reset();
    return src;
  }

  // --- the worker: groups are mapped in order; while one group's transaction
  // is written the next is mapped; writes are strictly sequential, so the
  // checkpoint only moves forward.
  private kick(): void {
    if (this.pumping || !this.running) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      if (this.running && (this.queue.length > 0 || this.reopenNeeded)) this.kick();
    });
  }

  private async pump(): Promise<void> {
    while (this.running) {
      try {
        if (this.taken < this.queue.length) {
          const head = this.queue[this.taken]!;
          if (this.isDdl(head)) {
            await this.settle();
            await this.processDdl(head as Extract<Assembled, { kind: 'statement' }>);
            continue;
          }
          const group = takeGroup(this.queue, this.taken, GROUP_LIMITS, (a) => this.isDdl(a));
          this.taken += group.count;
          const built = await this.build(group);
          // the row images are mapped: keep only where each item ends
          for (let i = this.taken - group.count; i < this.taken; i++) {
            const it = this.queue[i]!;
            if (it.kind === 'txn') this.queue[i] = { kind: 'skip', end: it.end, gtid: it.gtid };
          }
          // its bodies are compressed while the group before is written
          const bodies = built ? storedBodies(built.entries) : undefined;
          await this.settle();
          this.inflight = this.commit(group, built, bodies);
          // settle() reports a failure; until then it must not count as unhandled (the process would exit)
          this.inflight.catch(() => undefined);
          continue;
        }
        // every await below lets events in: look at the queue again before going on
        if (this.inflight) {
          await this.settle();
          continue;
        }
        if (this.skipped > 0 && (this.skipped >= SKIP_EVENTS || this.now() - this.lastWrite >= this.skipMs)) {
          await this.writeCheckpointOnly();
          continue;
        }
        if (this.reopenNeeded) {
          // the stream is closed now, so the queue is complete and written: reopen where it ends
          if (this.failures > 0) await this.sleep(backoffMs(this.failures));
          if (!this.running) return;
          await this.reopen();
          continue;
        }
        // skipped transactions are checkpointed a while after the last write even when no more
        // binlog comes to wake the worker (capture's own writes may not be in the binlog)
        if (this.skipped > 0) this.alarm.set(this.skipMs - (this.now() - this.lastWrite), () => this.kick());
        return;
      } catch (e) {
        await this.settle().catch(() => undefined);
        await this.recover(e);
      }
    }
    await this.settle().catch(() => undefined);
  }

  /** Waits for the write in flight (throws if it failed). */
  private async settle(): Promise<void> {
    const p = this.inflight;
    this.inflight = null;
    if (p) await p;
  }
  private async build(group: Group): Promise<Built | null> {
    if (group.txns.length === 0) return null;
    const setPhysical = (ms: number): void => { this.physical = ms; };
    return buildGroup(group.txns, { catalog: this.catalog, resolver: this.resolver, clock: this.clock, setPhysical, node: this.opts.node, sink: this.sink });
  }

  private async commit(group: Group, built: Built | null, bodies?: readonly Buffer[]): Promise<void> {
    const gtid = group.gtid !== '' ? group.gtid : this.tailGtid;
    this.tailGtid = gtid;
    if (built) {
      const cp: Checkpoint = { position: group.end, gtid, hlc: built.hlc };
      await this.writer.write(built.entries, built.writes, cp, bodies);
      this.durable = cp;
      this.resolver.dropAhead();
      this.journaled += built.entries.length;
      this.skipped = 0;
      this.lastWrite = this.now();
      this.failures = 0;
      this.lastError.clear();
    } else this.skipped += group.count - this.session.claimOwn(group.count);
    this.dequeue(group.count, group.bytes, { position: group.end, gtid });
  }

  private dequeue(n: number, bytes: number, processed: { position: BinlogPosition; gtid: string }): void {
    this.queue.splice(0, n);
    this.taken -= n;
    this.queuedBytes -= bytes;
    // never backwards (a marker event can carry an earlier offset than where the stream started)
    if (comparePositions(processed.position, this.processed.position) >= 0) this.processed = processed;
    this.waiters.settle(processed.position);
    this.resumeReading();
  }

  private async reopen(): Promise<void> {
    try {
      await this.openSource();
      this.reopenNeeded = false;
    } catch (e) {
      if (isPurgedError(e) || isSpokesyncError(e, 'SPOKESYNC_E_BINLOG_PURGED')) await this.checkPurged(e);
      this.failures++;
      this.lastError.note(e);
      this.log.warn('cannot open the binlog stream; retrying', { error: e, position: formatPosition(this.processed.position) });
    }
  }

  private async checkPurged(cause: unknown): Promise<void> {
    const err = await purgedNow(this.opts.db, this.processed.position, cause);
    if (err) {
      this.fatal = err;
      this.lastError.note(err);
      this.log.error('capture stopped: the binlog it needs was purged', { error: err, fix: err.fix });
      this.running = false;
      this.waiters.rejectAll(err);
      this.opts.onFatal?.(err);
    }
  }

  /** A write or mapping failed: forget everything not durable and reread it from the checkpoint. */
  private async recover(e: unknown): Promise<void> {
    this.failures++;
    this.lastError.note(e);
    this.log.error('capture failed; restarting from the checkpoint', { error: e, position: formatPosition(this.durable.position) });
    await this.detachSource()?.stop();
    const wanted = e instanceof UnresolvedReference ? [e.lookup, ...this.resolver.unresolved()] : [];
    this.resetTo(await this.storedCheckpoint());
    this.reopenNeeded = true;
    if (wanted.length > 0) await this.readAhead(wanted);
  }

  /**
   * The checkpoint to start again from: the stored one when it is further on (a
   * journal write whose commit answer was lost with the connection did commit),
   * else the last one capture knows it wrote (the database is away: it is read then).
   */
  private async storedCheckpoint(): Promise<Checkpoint> {
    try {
      const stored = await readCheckpoint(this.opts.db, this.opts.stateSchema);
      if (stored && comparePositions(stored.position, this.durable.position) > 0) {
        this.log.info('the last journal write did commit: capture goes on after it', { position: formatPosition(stored.position) });
        return stored;
      }
    } catch {
      // the server is away: the known checkpoint it is, and a replay then fails on the journal's key and comes back here
    }
    return this.durable;
  }

  /**
   * References nothing else could answer (rows deleted before capture read the
   * change): read ahead in the binlog for their last images (lookahead.ts), with
   * capture's own stream closed. The same question from the same checkpoint is
   * asked once: the binlog had no answer, and capture goes on retrying (status shows why).
   */
  private async readAhead(wanted: readonly Lookup[]): Promise<void> {
    const asked = `${formatPosition(this.durable.position)} ${[...new Set(wanted.map((l) => lookupKey(l.table, l.column, l.value)))].sort().join(' ')}`;
    if (this.readAheadAsked.has(asked)) return;
    if (this.readAheadAsked.size >= 100) this.readAheadAsked.clear();
    this.readAheadAsked.add(asked);
    const from = this.durable.position;
    try {
      const rows = await scanAhead(wanted, {
        settings: this.opts.settings, serverId: this.opts.serverId, db: this.opts.db, catalog: this.catalog, from, signal: this.stopping.signal,
      });
      this.log.info('read ahead in the binlog for rows deleted since the changes that refer to them', {
        from: formatPosition(from), asked: wanted.length, found: rows.length,
      });
      if (rows.length > 0) {
        this.resolver.addAhead(rows);
        this.failures = 0;
      }
    } catch (err) {
      this.log.warn('reading ahead in the binlog failed', { error: err, from: formatPosition(from) });
    }
  }

  private resetTo(cp: Checkpoint): void {
    this.durable = cp;
    this.processed = { position: cp.position, gtid: cp.gtid };
    this.tailGtid = cp.gtid;
    this.queue = [];
    this.taken = 0;
    this.queuedBytes = 0;
    this.skipped = 0;
    this.lastWrite = this.now();
    this.assembler.reset();
    this.resolver.forget();
    this.session.forgetOwn();
    this.clock = new Hlc(() => this.physical, BigInt(cp.hlc), {
      // applied stamps passed clock.maxDrift when they were applied; the minute covers the binlog's whole seconds
      maxAheadMs: this.opts.maxClockAheadMs ?? DEFAULT_MAX_DRIFT_MS + 60_000,
      startAt: this.now(),
      onClamp: (c) => this.log.warn('clock stamp clamped', { kind: c.kind, given: c.given.toString(), kept: c.kept.toString(), at: hlcTime(c.kept) }),
    });
  }

  private async writeCheckpointOnly(): Promise<void> {
    const cp: Checkpoint = { position: this.processed.position, gtid: this.processed.gtid, hlc: this.clock.value.toString() };
    if (comparePositions(cp.position, this.durable.position) !== 0) {
      await this.session.transaction((tx) => writeCheckpoint(tx, this.opts.stateSchema, cp));
      this.durable = cp;
    }
    this.skipped = 0;
    this.lastWrite = this.now();
  }

  private isDdl(item: Assembled): boolean {
    return item.kind === 'statement' && ddlOfInterest(item, this.opts.schema, this.tables, this.syncs).length > 0;
  }

  private async processDdl(item: Extract<Assembled, { kind: 'statement' }>): Promise<void> {
    const cp: Checkpoint = { position: item.end, gtid: this.tailGtid, hlc: this.clock.value.toString() };
    const { db, stateSchema, schema } = this.opts;
    const synced = syncedDdlTables(item, schema, this.tables);
    if (synced.length > 0) await recordDdl(this.session, stateSchema, schema, synced, item.sql, cp, this.log);
    else await this.session.transaction((tx) => writeCheckpoint(tx, stateSchema, cp));
    this.durable = cp;
    this.catalog = await (this.opts.reloadCatalog ?? (() => loadCatalog(db, schema)))();
    this.taken++;
    this.dequeue(1, 0, { position: item.end, gtid: this.tailGtid });
    if (!updateSynced(this.tables, ddlOfInterest(item, schema, this.tables, this.syncs), this.catalog, this.syncs, this.log)) return;
    this.opts.onTables?.(this.tables);
    // the stream read on with the old tables: read again from past the DDL with the new ones
    await this.detachSource()?.stop();
    this.resetTo(cp);
    this.reopenNeeded = true;
  }
}

