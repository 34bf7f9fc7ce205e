// Provisioning over HTTP. The parent serves GET /v1/snapshot to its configured
// children only (the exchange server authenticates the Bearer token and names
// the child); the body is the snapshot file itself, streamed as it is made, and
// the child's cursor is set just before the trailer goes out. The child fetches
// it with its parent.token and loads it as it arrives. A child that has
// exchanged before, or has change sets pending, is refused (409
// SPOKESYNC_E_WOULD_LOSE) unless it asks with ?force=1 (`clone --force`).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import got from 'got';
import type { ChildConfig, Config, ParentConfig } from '../config/types.js';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { parentRequestOptions, refusal, REFUSAL_CHARS } from '../exchange/parent-http.js';
import { viaCapture } from './cursor.js';
import { checkSnapshot, type SnapshotRails } from './rails.js';
import { childFilters } from '../rows/child.js';
import { routeTo } from '../routing/filters.js';
import { createProgress } from './progress.js';
import { writeSnapshot } from './snapshot-writer.js';

export const SNAPSHOT_PATH = '/v1/snapshot';
export const SNAPSHOT_CONTENT_TYPE = 'application/vnd.spokesync.snapshot+gzip';

export interface SnapshotRouteDeps {
  readonly config: Config;
  /** a pool on this node's server */
  readonly db: Queryable;
  readonly log: Logger;
  /** the capture running in this process (the daemon's) */
  readonly capture: { caughtUp(timeoutMs?: number): Promise<void> };
  /** rejects while this process may not capture or apply (the node lock is lost) */
  readonly gate?: () => Promise<void>;
}

/** The query parameter a child sets to re-provision itself over data the parent still has pending for it. */
export const FORCE_PARAM = 'force';

export interface RouteServer {
  addRoute(method: string, path: string, handler: (req: IncomingMessage, res: ServerResponse, child: ChildConfig) => Promise<void>): void;
}

/** Adds GET /v1/snapshot to the parent's exchange server. */
export function registerSnapshotRoute(server: RouteServer, deps: SnapshotRouteDeps): void {
  const { config } = deps;
  const { host, port, user, password, schema, stateSchema } = config.database;
  server.addRoute('GET', SNAPSHOT_PATH, async (req, res, child) => {
    const log = deps.log.child({ part: 'snapshot', child: child.id });
    // A slow child may stop reading for a while (loading a large batch of rows).
    req.socket.setTimeout(15 * 60_000);
    let opened = false;
    const force = new URL(req.url ?? '/', 'http://parent').searchParams.get(FORCE_PARAM) === '1';
    const rails: SnapshotRails = { route: routeTo(config, child.id, 'child'), force, via: 'http', by: `${child.id} over HTTP` };
    try {
      await deps.gate?.();
      await checkSnapshot(deps.db, stateSchema, config.node.id, rails);
      await writeSnapshot({
        settings: { host, port, user, ...(password === undefined ? {} : { password }) },
        db: deps.db, schema, stateSchema, node: config.node.id, log,
        waitForCapture: viaCapture(deps.capture), rails, subset: (cat) => childFilters(config, child, cat, true),
        progress: (total) => createProgress({ label: 'snapshot', totalRows: total, log, stream: nonTty, logEveryMs: 30_000 }),
        onOpen: () => {
          opened = true;
          res.writeHead(200, { 'content-type': SNAPSHOT_CONTENT_TYPE, 'cache-control': 'no-store' });
        },
      }, child.id, res);
    } catch (e) {
      log.warn('snapshot for a child failed', { code: isSpokesyncError(e) ? e.code : undefined, error: (e as Error).message });
      if (opened || res.headersSent) {
        res.destroy();
        return;
      }
      const code = isSpokesyncError(e) ? e.code : 'SPOKESYNC_E_HTTP';
      // a refusal says why (no secret in it); other failures only that it failed
      const refused = isSpokesyncError(e, 'SPOKESYNC_E_WOULD_LOSE');
      const body = `${code}: ${refused || isSpokesyncError(e, 'SPOKESYNC_E_BUSY') ? (e as Error).message : 'the parent could not make a snapshot'}\n`;
      res.writeHead(refused ? 409 : 503, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
      res.end(body);
    }
  });
}

/** The daemon never draws a bar: progress goes to its log. */
const nonTty = { isTTY: false } as NodeJS.WriteStream;

/**
 * Asks the parent for a snapshot; resolves with the body stream once the parent
 * has answered 200. `force`: this node is re-provisioned, whatever the parent
 * still has pending for it.
 */
export async function fetchSnapshot(parent: ParentConfig, signal?: AbortSignal, opts: { force?: boolean } = {}): Promise<Readable> {
  const url = `${parent.url.replace(/\/+$/, '')}${SNAPSHOT_PATH}${opts.force === true ? `?${FORCE_PARAM}=1` : ''}`;
  const stream = got.stream(url, {
    ...parentRequestOptions(parent),
    // connect and first byte within parent.timeout; then no more than that between bytes
    timeout: { connect: parent.timeout, secureConnect: parent.timeout, response: parent.timeout, socket: Math.max(parent.timeout, 60_000) },
    ...(signal ? { signal } : {}),
  });
  return new Promise<Readable>((resolve, reject) => {
    stream.once('error', (e: Error & { code?: string }) => {
      reject(new SpokesyncError('SPOKESYNC_E_HTTP', `cannot fetch a snapshot from the parent (${e.code ?? e.name} ${url.split('?')[0]})`, { cause: e }));
    });
    stream.once('response', (res: IncomingMessage) => {
      if (res.statusCode === 200) {
        resolve(stream);
        return;
      }
      let text = '';
      stream.on('data', (d: Buffer) => {
        if (text.length < REFUSAL_CHARS) text += d.toString('utf8');
      });
      stream.once('end', () => {
        reject(refusal(res.statusCode, text, {
          request: 'the snapshot request',
          fallback: res.statusCode === 401 ? 'SPOKESYNC_E_AUTH' : 'SPOKESYNC_E_HTTP',
          ...(res.statusCode === 404 ? { fix: 'The parent does not serve snapshots: update spokesync there, or bring a file made with `spokesync snapshot` and use --from.' } : {}),
          ...(res.statusCode === 409 ? {
            fix: 'This node has exchanged with the parent before. To re-provision it from the parent, send its own changes first ' +
              '(spokesync sync), then run spokesync clone --force (add --discard-local only to throw away changes not yet sent).',
          } : {}),
        }));
      });
    });
  });
}
