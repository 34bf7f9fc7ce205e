// A running spokesync node: the database, the catalogue, capture, the applier,
// the exchange core, and (by role) the server for children and the client for
// the parent. Commands build one, use the parts they need, and close it.
import { Applier } from '../apply/replay/applier.js';
import { QUARANTINE_BACKOFF, backoffDelay } from './backoff.js';
import { Capture } from './capture/capture.js';
import { filterTables, syncedTables } from './config/tables.js';
import type { Config } from './config/types.js';
import { connectDb, type Db, type DbSettings } from '../apply/core/db.js';
import { SpokesyncError } from '../apply/core/errors.js';
import { ExchangeClient, type SyncResult } from './exchange/client.js';
import { ExchangeCore } from './exchange/protocol.js';
import { ExchangeServer } from './exchange/http-server.js';
import { registerDiscardRoute, reportDiscards } from './exchange/discard-report.js';
import { trimChangeSet } from './exchange/wire.js';
import type { Logger } from '../apply/core/log.js';
import { registerSnapshotRoute } from './provision/http.js';
import { registerVerifyRoute } from './verify/verify-http.js';
import { registerJoinRoute } from './join/route.js';
import { joinPending, joinUnfinished } from './join/state.js';
import { PARENT_ID_KEY, getMeta, recordContact, setMeta } from './routing/cursors.js';
import { NodeLock } from './node-lock.js';
import { LOCK_LOST_KEY, lockLostNote } from './routing/node-status.js';
import { stateTable } from '../apply/core/state-schema.js';
import { refusedFrom, routeTo, type PeerRole, type Route } from './routing/filters.js';
import { JournalReader } from './journal/reader.js';
import { loadCatalog, type Catalog } from '../apply/core/catalog.js';
import { shapeOf } from '../apply/codec/shape.js';
import { assertPreflight } from './check/preflight.js';
import { ensureStateSchema } from '../apply/core/state-schema.js';
import type { UsbDeps } from './usb/transfer.js';
import { NodeAdmin } from './admin/admin.js';
import { RowRoutes } from './rows/routes.js';

/** how long one-shot commands wait for capture to journal a backlog */
export const CATCH_UP_MS = 15 * 60_000;

export interface NodeOptions {
  /** first and longest backoff delays of the client in ms (default 1 s and 60 s) */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** take the node lock (default true): one process per node runs capture and apply */
  readonly lock?: boolean;
  /** how often the node lock is checked, and taken again once lost (default 2 s) */
  readonly lockCheckMs?: number;
  /** least time between two scans for row filter membership changes per filtered child (default 60 s) */
  readonly rowScanMs?: number;
  /** how apply waits until every local write is journaled (default: this process's capture; a command beside the daemon waits for the daemon's) */
  readonly waitForCapture?: (node: SpokesyncNode) => Promise<void>;
}

function settingsOf(config: Config): DbSettings {
  const { host, port, user, password } = config.database;
  return { host, port, user, ...(password === undefined ? {} : { password }) };
}

export class SpokesyncNode {
  readonly id: string;
  readonly stateSchema: string;
  readonly capture: Capture;
  readonly applier: Applier;
  readonly core: ExchangeCore;
  readonly reader: JournalReader;
  /** status reports, exchange history, the admin endpoints */
  readonly admin: NodeAdmin;
  /** the row filters of children with `rows` */
  readonly rows: RowRoutes;
  private server: ExchangeServer | null = null;
  private clientInstance: ExchangeClient | null = null;
  private fatalError: SpokesyncError | null = null;
  /** capture was started by this process: it is paused while the node lock is lost, and resumed after */
  private captureWanted = false;
  private closing = false;
  /** the lock-lost note in the state schema (shown by status) is written */
  private lostNoted = false;

  private constructor(
    readonly config: Config,
    readonly db: Db,
    readonly catalog: Catalog,
    readonly tables: Set<string>,
    readonly log: Logger,
    private readonly opts: NodeOptions,
    private readonly lock: NodeLock | null,
  ) {
    const { database, node } = config;
    this.id = node.id;
    this.stateSchema = database.stateSchema;
    this.capture = new Capture({
      db, settings: settingsOf(config), catalog, schema: database.schema, stateSchema: database.stateSchema,
      tables, node: node.id, serverId: database.serverId, log, memoryBytes: config.capture.memoryBytes,
      // tables created or renamed while running sync by the config's include and exclude, on both sides of the node
      syncs: (t) => filterTables([t], config.tables).length > 0,
      onTables: (now) => { tables.clear(); for (const t of now) tables.add(t); },
      ...(config.clock ? { maxClockAheadMs: config.clock.maxDrift + 60_000 } : {}),
      // After DDL on a synced table both sides of the node work from the new catalogue.
      reloadCatalog: async () => {
        const fresh = await loadCatalog(db, database.schema, { keys: config.tables.keys });
        this.applier.updateCatalog(fresh);
        return fresh;
      },
      onFatal: (e) => {
        this.fatalError = e;
        log.error('capture stopped for good', { code: e.code, error: e.message });
      },
      // the stream never opens without the node lock, confirmed on the server (a restart drops it)
      ...(lock ? { beforeOpen: () => lock.ensure() } : {}),
    });
    this.applier = new Applier({
      db, catalog, schema: database.schema, stateSchema: database.stateSchema, node: node.id, tables, log,
      waitForCapture: () => (opts.waitForCapture ? opts.waitForCapture(this) : this.capture.caughtUp()),
      ...(config.clock ? { maxDriftMs: config.clock.maxDrift } : {}),
      retryDelayMs: (tries) => backoffDelay(QUARANTINE_BACKOFF, tries),
      // confirmed on the server before each batch: a restart drops the lock, and a batch never applies without it
      ...(lock ? { gate: () => lock.ensure() } : {}),
    });
    this.reader = new JournalReader(db, database.stateSchema, trimChangeSet);
    this.rows = new RowRoutes(config, settingsOf(config), db, () => this.applier.currentCatalog(), { scanEveryMs: opts.rowScanMs, log });
    const fromChild = refusedFrom(config, 'child');
    const fromParent = refusedFrom(config, 'parent');
    this.core = new ExchangeCore({
      db, stateSchema: database.stateSchema, node: node.id, reader: this.reader, log,
      // counted per peer for /metrics
      // (every argument passed on: the own change sets a restored node takes back travel in the last one)
      applier: { applyBatch: async (...args: Parameters<Applier['applyBatch']>) => {
        const counts = await this.applier.applyBatch(...args);
        const peer = args[0];
        this.admin.metrics?.appliedFrom(peer, counts.applied);
        return counts;
      } },
      refused: (peer) => (config.children.some((c) => c.id === peer) ? fromChild : fromParent),
      children: config.children.map((c) => c.id),
      shapes: (wanted) => {
        const cat = this.applier.currentCatalog();
        return [...(wanted ?? tables)].filter((t) => tables.has(t)).flatMap((t) => { const info = cat.tables.get(t); return info ? [shapeOf(info)] : []; });
      },
      // confirmed on the server before each batch: a restart drops the lock, and a batch never applies without it
      ...(lock ? { gate: () => lock.ensure() } : {}),
    });
    this.admin = new NodeAdmin({
      config, db, reader: this.reader, log,
      captureStatus: () => this.capture.status(),
      shapes: () => this.core.allShapes(),
      fatal: () => this.fatalError,
      lockHeld: () => this.lockHeld(),
      beside: opts.lock === false,
    });
    lock?.startWatching({
      log, ...(opts.lockCheckMs === undefined ? {} : { intervalMs: opts.lockCheckMs }),
      onLost: () => this.lockLost(),
      onRegained: () => this.lockTick(),
      onTick: () => this.lockTick(),
    });
  }

  /** Whether this process may capture and apply (it holds the node lock, or runs without one). */
  lockHeld(): boolean {
    return this.lock === null || this.lock.held;
  }

  /** The node lock is gone: capture stops (apply is refused by the gate), and status is told. */
  private async lockLost(): Promise<void> {
    if (this.closing) return;
    await this.capture.stop();
    await this.lockTick();
  }

  /**
   * After each check of the node lock: while it is held, capture runs again if
   * this process had started it and the lost-lock note goes; while it is lost,
   * the note is written (the server may have been away when it was lost).
   */
  private async lockTick(): Promise<void> {
    if (this.closing || !this.lock) return;
    const ss = this.stateSchema;
    if (!this.lock.held) {
      if (!this.lostNoted) {
        await setMeta(this.db, ss, LOCK_LOST_KEY, lockLostNote(this.lock.lostSince ?? new Date()));
        this.lostNoted = true;
      }
      return;
    }
    if (this.lostNoted) {
      await this.db.exec(`DELETE FROM ${stateTable(ss, 'meta')} WHERE k = ?`, [LOCK_LOST_KEY]);
      this.lostNoted = false;
    }
    if (this.captureWanted && !this.capture.status().running && !this.fatalError) {
      try {
        await this.capture.start();
      } catch (e) {
        // tried again at the next check
        await this.capture.stop();
        throw e;
      }
    }
  }

  /** Connects, prepares the state schema, reads the catalogue, takes the node lock. */
  static async open(config: Config, log: Logger, opts: NodeOptions = {}): Promise<SpokesyncNode> {
    const db = await connectDb(settingsOf(config), { connectionLimit: 8 });
    let lock: NodeLock | null = null;
    try {
      const ss = config.database.stateSchema;
      await ensureStateSchema(db, ss);
      if (opts.lock !== false) {
        lock = await NodeLock.take(db, ss, config.node.id);
        // a note left by a process that lost the lock and then ended is no longer true
        await db.exec(`DELETE FROM ${stateTable(ss, 'meta')} WHERE k = ?`, [LOCK_LOST_KEY]);
      }
      const catalog = await loadCatalog(db, config.database.schema, { keys: config.tables.keys });
      const tables = new Set(syncedTables(config, catalog));
      return new SpokesyncNode(config, db, catalog, tables, log, opts, lock);
    } catch (e) {
      await lock?.release();
      await db.close().catch(() => undefined);
      throw e;
    }
  }

  /** The error that stopped capture for good (a purged binlog), if any. */
  fatal(): SpokesyncError | null {
    return this.fatalError;
  }

  /** The route toward a peer: the parent (by its node id) or a child. */
  routeFor(peer: string, role: PeerRole): Route {
    const route = routeTo(this.config, peer, role);
    const rows = role === 'child' ? this.rows.for(this.config.children.find((c) => c.id === peer)) : undefined;
    return rows ? { ...route, rows } : route;
  }

  /**
   * Starts capture after the preflight: a server or tables that would give wrong
   * change sets (binlog settings, grants, tables without identity) are refused,
   * every error at once with its fix (SPOKESYNC_E_PREFLIGHT).
   */
  async beginCapture(): Promise<void> {
    const warnings = await assertPreflight(this.db, this.config);
    for (const w of warnings) this.log.warn(w.message, { check: w.check, fix: w.fix });
    this.lock?.assertHeld();
    this.captureWanted = true;
    await this.capture.start();
  }

  /** Starts capture and waits until everything committed so far is journaled (a long backlog may take minutes). */
  async startCapture(timeoutMs = CATCH_UP_MS): Promise<void> {
    await this.beginCapture();
    await this.capture.caughtUp(timeoutMs);
  }

  /** Starts serving children (when `listen` is set) and the admin endpoints (on `listen`, or `admin.listen`); returns the exchange server. */
  async startServer(): Promise<ExchangeServer | null> {
    await this.admin.start();
    if (!this.config.listen) return null;
    if (!this.server) {
      const lock = this.lock;
      const admin = this.admin;
      this.server = new ExchangeServer({
        listen: this.config.listen,
        children: this.config.children,
        core: this.core,
        routeFor: (c) => this.routeFor(c, 'child'),
        log: this.log,
        observer: admin.reporter,
        ...(admin.onListen ? { front: (req, res) => admin.routes.handle(req, res) } : {}),
      });
      // GET /v1/snapshot: provisioning of a child (`spokesync clone`)
      registerSnapshotRoute(this.server, {
        config: this.config, db: this.db, log: this.log, capture: this.capture, ...(lock ? { gate: () => lock.ensure() } : {}),
      });
      // POST /v1/discards: children report the quarantined change sets they gave up
      registerDiscardRoute(this.server, { db: this.db, stateSchema: this.stateSchema, log: this.log });
      // POST /v1/verify: children compare their synced tables with this node's (`spokesync verify`, `repair`)
      registerVerifyRoute(this.server, {
        config: this.config, db: this.db, log: this.log, capture: this.capture, catalog: () => this.applier.currentCatalog(),
        appDb: () => this.rows.appDb(),
      });
      // POST /v1/join: a child that already holds data starts its first contact (`spokesync join`)
      registerJoinRoute(this.server, {
        config: this.config, db: this.db, log: this.log, capture: this.capture, applier: this.applier,
        catalog: () => this.applier.currentCatalog(), ...(lock ? { gate: () => lock.ensure() } : {}),
      });
      await this.server.start();
    }
    return this.server;
  }

  /** The client toward the parent, or null for a root node. */
  client(): ExchangeClient | null {
    const parent = this.config.parent;
    if (!parent) return null;
    this.clientInstance ??= new ExchangeClient({
      parent, node: this.id, core: this.core, db: this.db, stateSchema: this.stateSchema,
      routeFor: (p) => this.routeFor(p, 'parent'), log: this.log, observer: this.admin.reporter,
      ...(this.opts.backoffBaseMs === undefined ? {} : { backoffBaseMs: this.opts.backoffBaseMs }),
      ...(this.opts.backoffMaxMs === undefined ? {} : { backoffMaxMs: this.opts.backoffMaxMs }),
    });
    return this.clientInstance;
  }

  /** One full exchange with the parent (quarantined change sets are retried first). */
  async syncWithParent(signal?: AbortSignal): Promise<SyncResult> {
    const client = this.client();
    if (!client) throw new SpokesyncError('SPOKESYNC_E_USAGE', 'this node has no parent in its config');
    // nothing is sent either: the parent would take our batch, and its answer could not be applied
    await this.lock?.ensure();
    // a half-done join has not carried all of this node's rows up yet
    if (await joinUnfinished(this.db, this.stateSchema)) {
      const e = joinPending(this.id);
      const parent = await this.parentId();
      if (parent) await recordContact(this.db, this.stateSchema, parent, `${e.code}: ${e.message}`);
      throw e;
    }
    await this.applier.retryQuarantine();
    await reportDiscards(this.db, this.stateSchema, this.id, this.config.parent!, this.log).catch((e: unknown) => {
      this.log.warn('discard reports could not reach the parent; they are sent at the next exchange', { error: (e as Error).message });
    });
    return client.sync(signal);
  }

  /** The parent's node id when known (learned at first contact). */
  async parentId(): Promise<string | null> {
    return this.config.parent ? getMeta(this.db, this.stateSchema, PARENT_ID_KEY) : null;
  }

  usb(): UsbDeps {
    return {
      config: this.config, db: this.db, core: this.core, log: this.log,
      routeFor: (peer, role) => this.routeFor(peer, role), reporting: this.admin.reporter,
    };
  }

  /** Stops the server (requests in flight finish), then capture, then closes the database. */
  async close(): Promise<void> {
    this.closing = true;
    await this.lock?.stopWatching();
    await this.server?.stop();
    this.server = null;
    await this.admin.stop();
    await this.capture.stop();
    await this.rows.close();
    await this.lock?.release();
    await this.db.close();
  }
}

/** Opens the node, runs `fn`, and always closes it. */
export async function withNode<T>(config: Config, log: Logger, fn: (node: SpokesyncNode) => Promise<T>, opts: NodeOptions = {}): Promise<T> {
  const node = await SpokesyncNode.open(config, log, opts);
  try {
    return await fn(node);
  } finally {
    await node.close();
  }
}
