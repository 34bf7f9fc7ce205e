// A running spokesync node: the database, the catalogue, capture, the applier,
// the exchange core, and (by role) the server for children and the client for
// the parent. Commands build one, use the parts they need, and close it.
import { Applier } from '../apply/replay/applier.js';
import { QUARANTINE_BACKOFF, backoffDelay } from './backoff.js';
import { Capture } from './capture/capture.js';
import { filterTables, syncedTables } from './config/tables.js';
import type { Config } from './config/types.js';
import { connectDb, type Db, type DbSettings, type Queryable } from '../apply/core/db.js';
import { SpokesyncError } from '../apply/core/errors.js';
import { ExchangeClient, type SyncResult } from './exchange/client.js';
import { ExchangeCore } from './exchange/protocol.js';
import { ExchangeServer } from './exchange/http-server.js';
import { registerDiscardRoute, reportDiscards } from './exchange/discard-report.js';
import { trimChangeSet } from './exchange/wire.js';
import type { Logger } from '../apply/core/log.js';
import { registerSnapshotRoute } from './provision/http.js';
import { registerVerifyRoute } from './verify/http.js';
import { PARENT_ID_KEY, getMeta } from './routing/cursors.js';
import { refusedFrom, routeTo, type PeerRole, type Route } from './routing/filters.js';
import { JournalReader } from './journal/reader.js';
import { loadCatalog, type Catalog } from '../apply/core/catalog.js';
import { shapeOf } from '../apply/codec/shape.js';
import { assertPreflight } from './check/preflight.js';
import { ensureStateSchema } from '../apply/core/state-schema.js';
import type { UsbDeps } from './usb/transfer.js';

/** how long one-shot commands wait for capture to journal a backlog */
export const CATCH_UP_MS = 15 * 60_000;

export interface NodeOptions {
  /** first and longest backoff delays of the client in ms (default 1 s and 60 s) */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** take the node lock (default true): one process per node runs capture and apply */
  readonly lock?: boolean;
}

function settingsOf(config: Config): DbSettings {
  const { host, port, user, password } = config.database;
  return { host, port, user, ...(password === undefined ? {} : { password }) };
}

const lockName = (config: Config): string => `spokesync:${config.database.stateSchema}`;

async function releaseLock(lock: (Queryable & { release(): void }) | null, config: Config): Promise<void> {
  if (!lock) return;
  await lock.query('SELECT RELEASE_LOCK(?)', [lockName(config)]).catch(() => undefined);
  lock.release();
}

export class SpokesyncNode {
  readonly id: string;
  readonly stateSchema: string;
  readonly capture: Capture;
  readonly applier: Applier;
  readonly core: ExchangeCore;
  readonly reader: JournalReader;
  private server: ExchangeServer | null = null;
  private clientInstance: ExchangeClient | null = null;
  private fatalError: SpokesyncError | null = null;

  private constructor(
    readonly config: Config,
    readonly db: Db,
    readonly catalog: Catalog,
    readonly tables: Set<string>,
    readonly log: Logger,
    private readonly opts: NodeOptions,
    private readonly lock: (Queryable & { release(): void }) | null,
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
    });
    this.applier = new Applier({
      db, catalog, schema: database.schema, stateSchema: database.stateSchema, node: node.id, tables, log,
      waitForCapture: () => this.capture.caughtUp(),
      ...(config.clock ? { maxDriftMs: config.clock.maxDrift } : {}),
      retryDelayMs: (tries) => backoffDelay(QUARANTINE_BACKOFF, tries),
    });
    this.reader = new JournalReader(db, database.stateSchema, trimChangeSet);
    const fromChild = refusedFrom(config, 'child');
    const fromParent = refusedFrom(config, 'parent');
    this.core = new ExchangeCore({
      db, stateSchema: database.stateSchema, node: node.id, applier: this.applier, reader: this.reader, log,
      refused: (peer) => (config.children.some((c) => c.id === peer) ? fromChild : fromParent),
      children: config.children.map((c) => c.id),
      shapes: (wanted) => {
        const cat = this.applier.currentCatalog();
        return [...(wanted ?? tables)].filter((t) => tables.has(t)).flatMap((t) => { const info = cat.tables.get(t); return info ? [shapeOf(info)] : []; });
      },
    });
  }

  /** Connects, prepares the state schema, reads the catalogue, takes the node lock. */
  static async open(config: Config, log: Logger, opts: NodeOptions = {}): Promise<SpokesyncNode> {
    const db = await connectDb(settingsOf(config), { connectionLimit: 8 });
    let lock: (Queryable & { release(): void }) | null = null;
    try {
      await ensureStateSchema(db, config.database.stateSchema);
      if (opts.lock !== false) {
        lock = await db.connection();
        const [got] = await lock.query<{ ok: number | string | null }>('SELECT GET_LOCK(?, 0) AS ok', [lockName(config)]);
        if (Number(got?.ok) !== 1) {
          throw new SpokesyncError('SPOKESYNC_E_BUSY', `node ${config.node.id} (state schema ${config.database.stateSchema}) is in use by another spokesync process`);
        }
      }
      const catalog = await loadCatalog(db, config.database.schema, { keys: config.tables.keys });
      const tables = new Set(syncedTables(config, catalog));
      return new SpokesyncNode(config, db, catalog, tables, log, opts, lock);
    } catch (e) {
      await releaseLock(lock, config);
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
    return routeTo(this.config, peer, role);
  }

  /**
   * Starts capture after the preflight: a server or tables that would give wrong
   * change sets (binlog settings, grants, tables without identity) are refused,
   * every error at once with its fix (SPOKESYNC_E_PREFLIGHT).
   */
  async beginCapture(): Promise<void> {
    const warnings = await assertPreflight(this.db, this.config);
    for (const w of warnings) this.log.warn(w.message, { check: w.check, fix: w.fix });
    await this.capture.start();
  }

  /** Starts capture and waits until everything committed so far is journaled (a long backlog may take minutes). */
  async startCapture(timeoutMs = CATCH_UP_MS): Promise<void> {
    await this.beginCapture();
    await this.capture.caughtUp(timeoutMs);
  }

  /** Starts serving children (when `listen` is set); returns the server. */
  async startServer(): Promise<ExchangeServer | null> {
    if (!this.config.listen) return null;
    if (!this.server) {
      this.server = new ExchangeServer({
        listen: this.config.listen,
        children: this.config.children,
        core: this.core,
        routeFor: (c) => this.routeFor(c, 'child'),
        log: this.log,
      });
      // GET /v1/snapshot: provisioning of a child (`spokesync clone`)
      registerSnapshotRoute(this.server, { config: this.config, db: this.db, log: this.log, capture: this.capture });
      // POST /v1/discards: children report the quarantined change sets they gave up
      registerDiscardRoute(this.server, { db: this.db, stateSchema: this.stateSchema, log: this.log });
      // POST /v1/verify: children compare their synced tables with this node's (`spokesync verify`, `repair`)
      registerVerifyRoute(this.server, {
        config: this.config, db: this.db, log: this.log, capture: this.capture, catalog: () => this.applier.currentCatalog(),
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
      routeFor: (p) => this.routeFor(p, 'parent'), log: this.log,
      ...(this.opts.backoffBaseMs === undefined ? {} : { backoffBaseMs: this.opts.backoffBaseMs }),
      ...(this.opts.backoffMaxMs === undefined ? {} : { backoffMaxMs: this.opts.backoffMaxMs }),
    });
    return this.clientInstance;
  }

  /** One full exchange with the parent (quarantined change sets are retried first). */
  async syncWithParent(signal?: AbortSignal): Promise<SyncResult> {
    const client = this.client();
    if (!client) throw new SpokesyncError('SPOKESYNC_E_USAGE', 'this node has no parent in its config');
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
      routeFor: (peer, role) => this.routeFor(peer, role),
    };
  }

  /** Stops the server (requests in flight finish), then capture, then closes the database. */
  async close(): Promise<void> {
    await this.server?.stop();
    this.server = null;
    await this.capture.stop();
    await releaseLock(this.lock, this.config);
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
