// A node's admin side, built from its parts (agent/node.ts): the status
// reporter (history, reports up, reports kept), the admin routes, and the
// server on admin.listen when that is set. Nothing here runs without a node.
import type { Db } from '../../apply/core/db.js';
import type { Logger } from '../../apply/core/log.js';
import type { TableShape } from '../../apply/codec/shape.js';
import { binlogBehind } from '../capture/binlog-lag.js';
import type { CaptureStatus } from '../capture/options.js';
import type { Config } from '../config/types.js';
import { Origins } from '../exchange/origins.js';
import { listenLimits } from '../exchange/peer-limits.js';
import type { JournalReader } from '../journal/reader.js';
import { lockHeld } from '../../apply/core/named-lock.js';
import { readCheckpoint } from '../journal/writer.js';
import { nodeLockName } from '../node-lock.js';
import { PARENT_ID_KEY, getMeta } from '../routing/cursors.js';
import { neededEvents } from '../routing/node-status.js';
import { nodeHealth } from './health.js';
import type { NodeMetrics } from './metrics.js';
import type { CaptureView } from './report.js';
import { StatusReporter } from './reporter.js';
import { AdminRoutes, METRICS_PATH } from './routes.js';
import { AdminServer } from './server.js';

/** What the admin side reads of a node. */
export interface AdminNode {
  readonly config: Config;
  readonly db: Db;
  readonly reader: JournalReader;
  readonly log: Logger;
  captureStatus(): CaptureStatus;
  shapes(): readonly TableShape[];
  fatal(): { readonly code: string; readonly message: string } | null;
  lockHeld(): boolean;
  /** the process runs without the node lock (a command beside the daemon): the daemon's capture is the node's */
  readonly beside?: boolean;
}

export class NodeAdmin {
  readonly reporter: StatusReporter;
  readonly routes: AdminRoutes;
  /** /metrics, made at start() when admin.token is set (prom-client is loaded only then: it costs a daemon about 13 MB) */
  metrics: NodeMetrics | null = null;
  private server: AdminServer | null = null;

  constructor(private readonly n: AdminNode) {
    const { config, db, reader, log } = n;
    const ss = config.database.stateSchema;
    const capture = (): CaptureView => {
      const s = n.captureStatus();
      return { running: s.running, file: s.file, pos: s.pos, lagSeconds: s.lagSeconds, error: s.error ?? null };
    };
    // beside the daemon, while this process captures nothing itself: the daemon's checkpoint, and whether it holds the node
    const reported = async (): Promise<CaptureView> => {
      const own = capture();
      if (own.running || !n.beside) return own;
      const at = (await readCheckpoint(db, ss))?.position;
      return { running: await lockHeld(db, nodeLockName(ss)), file: at?.file ?? '', pos: at?.pos ?? 0, lagSeconds: null, error: null };
    };
    this.reporter = new StatusReporter({
      db, log,
      onRound: (r) => this.metrics?.round(r),
      origins: new Origins({ db, stateSchema: ss, node: config.node.id, children: config.children.map((c) => c.id) }),
      source: {
        config, db, reader, capture: reported,
        behindBytes: async () => {
          const s = n.captureStatus();
          // where capture is in this process, or where its checkpoint is
          const from = s.running && s.file !== '' ? { file: s.file, pos: s.pos } : (await readCheckpoint(db, ss))?.position;
          return from ? (await binlogBehind(db, from, neededEvents(config)))?.bytes ?? null : null;
        },
        shapes: () => n.shapes(),
        parentId: async () => (config.parent ? getMeta(db, ss, PARENT_ID_KEY) : null),
      },
    });
    const limits = listenLimits(config.listen ?? { host: '', port: 0, maxBodyBytes: 0, maxInflatedBytes: 0 });
    this.routes = new AdminRoutes({
      ...(config.admin?.token === undefined ? {} : { token: config.admin.token }),
      log,
      health: () => nodeHealth({ db, capture, fatal: () => n.fatal(), lockHeld: () => n.lockHeld() }),
      status: () => this.reporter.status(),
      authFailures: limits.authFailures,
      secure: !config.admin?.listen && config.listen?.tls !== undefined,
    });
  }

  /** /metrics: prom-client loaded and the route added, once, when the endpoints are served at all (admin.token). */
  private async startMetrics(): Promise<void> {
    const { config, db, reader } = this.n;
    if (this.metrics || config.admin?.token === undefined) return;
    const { METRICS_CONTENT_TYPE, NodeMetrics } = await import('./metrics.js');
    const metrics = new NodeMetrics({ config, db, reader, status: () => this.reporter.status(), captured: () => this.n.captureStatus().journaled });
    this.metrics = metrics;
    this.routes.add('GET', METRICS_PATH, async (_req, res) => {
      const body = await metrics.scrape();
      res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
    }, { auth: true });
  }

  /** Whether the admin endpoints ride on the exchange server (no admin.listen). */
  get onListen(): boolean {
    return !this.n.config.admin?.listen;
  }

  /** Makes /metrics (with admin.token) and starts the server on admin.listen, when set. */
  async start(): Promise<AdminServer | null> {
    await this.startMetrics();
    const at = this.n.config.admin?.listen;
    if (!at) return null;
    if (!this.server) {
      const server = new AdminServer({ host: at.host, port: at.port, routes: this.routes, log: this.n.log });
      await server.start();
      this.server = server;
    }
    return this.server;
  }

  get port(): number | null {
    return this.server?.port ?? null;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = null;
  }
}
