// The admin endpoints on their own address (admin.listen): for a node without
// `listen` (a leaf), or to keep them off the port children reach. Plain HTTP:
// bind it to a private address, or put a TLS proxy in front. The same limits as
// the exchange server's defaults: headers in time, connections per address.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { ConnectionLimiter, RefusalLog, headersDeadline, listenLimits } from '../exchange/peer-limits.js';
import { answer, type AdminRoutes } from './routes.js';

export class AdminServer {
  private readonly server: http.Server;
  private readonly log: Logger;

  constructor(private readonly o: { readonly host: string; readonly port: number; readonly routes: AdminRoutes; readonly log: Logger }) {
    this.log = o.log.child({ part: 'admin' });
    const limits = listenLimits({ host: o.host, port: o.port, maxBodyBytes: 4096, maxInflatedBytes: 4096 });
    this.server = http.createServer({ headersTimeout: limits.headersTimeout, requestTimeout: 60_000 }, (req, res) => {
      void this.handle(req, res);
    });
    this.server.maxConnections = 64;
    this.server.keepAliveTimeout = 30_000;
    new ConnectionLimiter(limits.maxConnectionsPerAddress, new RefusalLog(this.log, limits.authFailures.window)).attach(this.server);
    headersDeadline(this.server, limits.headersTimeout, false);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (!(await this.o.routes.handle(req, res))) {
        req.resume();
        answer(res, 404, 'SPOKESYNC_E_HTTP: no such path\n');
      }
    } catch (e) {
      this.log.error('admin request failed', { error: e });
      if (!res.headersSent) answer(res, 500, 'SPOKESYNC_E_HTTP: internal error\n', { connection: 'close' });
      else res.destroy();
    }
  }

  async start(): Promise<void> {
    const { host, port } = this.o;
    await new Promise<void>((resolve, reject) => {
      const failed = (e: Error): void => {
        reject(new SpokesyncError('SPOKESYNC_E_CONFIG', `cannot listen on ${host}:${port} for the admin endpoints (${(e as { code?: string }).code ?? 'error'})`, {
          cause: e, fix: 'Choose a free admin.listen port (and a host of this machine), or stop the process that holds it.',
        }));
      };
      this.server.once('error', failed);
      this.server.listen(port, host, () => {
        this.server.off('error', failed);
        resolve();
      });
    });
    this.log.info('admin endpoints listening', { host, port: this.port });
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}
