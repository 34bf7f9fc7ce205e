// The parent side of the exchange: node:http (or node:https when listen.tls).
// POST /v1/exchange takes a child's batch and answers with a batch for it.
// Every failure answers 4xx/5xx with a short `CODE: message` body, applies
// nothing, and leaves the server serving.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import type { ChildConfig, ListenConfig } from '../config/types.js';
import { SpokesyncError, isSpokesyncError, type ErrorCode } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import type { Route } from '../routing/filters.js';
import type { Caps } from '../journal/reader.js';
import {
  ACCEPTED_CODINGS, ByteLimit, type Encoding, compress, decompress, decompressor, inflateError, isWholeBody, negotiate, parseContentEncoding,
} from './compression.js';
import {
  CAP_BYTES_HEADER, CAP_RECORDS_HEADER, DEFAULT_CAPS, EXCHANGE_PATH, HEALTH_PATH, INCARNATION_HEADER, NODE_HEADER, PEER_PATH, REPORTS_HEADER, REPORT_HEADER,
  SHAPES_HEADER, type ExchangeCore, type RoundRecord,
} from './protocol.js';
import {
  ANSWER_HAVE_HEADER, ANSWER_HEADER, HAVE_HEADER, OFFSET_HEADER, RESUMABLE_BYTES, RESUME_HEADER, UPLOAD_HEADER, UploadStore,
  parseAnswerHave, parseOffset, parseUploadId, uploadDigest, uploadId,
} from './resume.js';
import {
  AuthThrottle, ConnectionLimiter, RefusalLog, addressKey, headersDeadline, listenLimits, watchBody, type ListenLimits,
} from './peer-limits.js';
import { batchBuffer, collectBatch } from './wire.js';
import { DEFAULT_MAX_ELEMENTS, DecodeBudget } from '../../apply/codec/decode-limits.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, child: ChildConfig) => Promise<void>;

export interface ExchangeServerOptions {
  readonly listen: ListenConfig;
  readonly children: readonly ChildConfig[];
  readonly core: ExchangeCore;
  /** the route toward a child (table filters) */
  readonly routeFor: (child: string) => Route;
  readonly log: Logger;
  /** most change sets accepted in one request (default 10000) */
  readonly maxRecords?: number;
  /** the largest answer a child may ask for (default 1000 records, 1 MiB) */
  readonly maxCaps?: Caps;
  /** requests it answers before any other (the admin endpoints, agent/admin/routes.ts); false: not its path */
  readonly front?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  /** where rounds and refused tokens are told (agent/admin/reporter.ts); it also keeps the children's status reports */
  readonly observer?: ServerObserver;
}

/** A round with a child as the parent saw it: the record, where it came from, and the status report it carried. */
export interface ServedRound extends RoundRecord {
  readonly address: string;
  /** the report header's value, when the child sent one */
  readonly report?: string;
}

export interface ServerObserver {
  /** called after the answer went out; its failure is logged, never the child's */
  round(r: ServedRound): Promise<void>;
  /** a wrong token came from `address`, from a node that says it is `claimed` (called at most once per window per address and name) */
  refusedToken(claimed: string | null, address: string): Promise<void>;
}

/** Room for a child's status report (agent/admin/report-wire.ts) besides the usual headers. */
const MAX_HEADER_BYTES = 32 * 1024;

const STATUS: Partial<Record<ErrorCode, number>> = {
  SPOKESYNC_E_AUTH: 401,
  SPOKESYNC_E_PEER: 403,
  SPOKESYNC_E_XML: 400,
  SPOKESYNC_E_XML_DTD: 400,
  SPOKESYNC_E_BATCH_TOO_LARGE: 413,
  SPOKESYNC_E_OVERLOADED: 503,
  SPOKESYNC_E_BUSY: 503,
  SPOKESYNC_E_UNKNOWN_TABLE: 422,
  SPOKESYNC_E_UNKNOWN_COLUMN: 422,
  SPOKESYNC_E_ORIGIN: 409, SPOKESYNC_E_CHANGE_ID: 409, SPOKESYNC_E_ACK: 409,
};

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * How a refusal treats the rest of the request body: 'read' (it was all read),
 * 'drain' (answer now, then read and drop what remains, up to `allowance`
 * bytes, keeping the connection: closing on unread data can reset it before
 * the client reads the answer), 'close' (too much to drain: close after answering).
 */
type Rest = { mode: 'read' } | { mode: 'drain'; allowance: number } | { mode: 'close' };

/** Sends `CODE: message` with a status. */
function fail(req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string, rest: Rest): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = `${code}: ${message.replace(/[\r\n]+/g, ' ').slice(0, 300)}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...(status === 401 ? { 'www-authenticate': 'Bearer realm="spokesync"' } : {}),
    ...(rest.mode === 'close' ? { connection: 'close' } : {}),
  });
  res.end(body);
  if (rest.mode === 'drain' && !req.complete) {
    let left = rest.allowance;
    req.on('data', (c: Buffer) => {
      left -= c.length;
      if (left < 0) req.socket.destroy();
    });
    req.resume();
  }
}

function capHeader(v: string | string[] | undefined, fallback: number, max: number): number {
  const n = typeof v === 'string' && /^[0-9]{1,12}$/.test(v) ? Number(v) : fallback;
  return Math.max(1, Math.min(n, max));
}

export class ExchangeServer {
  private readonly server: http.Server;
  private readonly tokens: ReadonlyArray<{ child: ChildConfig; digest: Buffer }>;
  private readonly routes = new Map<string, RouteHandler>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly log: Logger;
  /** partial bodies of uploads whose connection was lost */
  private readonly uploads = new UploadStore();
  /** each child's last large answer, with its coding, until its next request: a child that lost part of it gets the rest */
  private readonly answers = new UploadStore<Encoding>();
  private readonly limits: ListenLimits;
  private readonly maxElements: number;
  /** what all requests being read at once may hold: as much as the largest one may */
  private readonly budget: DecodeBudget;
  private readonly throttle: AuthThrottle;
  private readonly refusals: RefusalLog;

  constructor(private readonly o: ExchangeServerOptions) {
    this.log = o.log.child({ part: 'server' });
    this.tokens = o.children.map((child) => ({ child, digest: sha256(child.token) }));
    const limits = (this.limits = listenLimits(o.listen));
    this.maxElements = o.listen.maxElements ?? DEFAULT_MAX_ELEMENTS;
    this.budget = new DecodeBudget(this.maxElements, o.listen.maxInflatedBytes);
    this.throttle = new AuthThrottle(limits.authFailures);
    this.refusals = new RefusalLog(this.log, limits.authFailures.window);
    const idle = 120_000;
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      watchBody(req, res, limits.bodyTimeout, idle);
      const p = this.handle(req, res).catch((e: unknown) => {
        this.log.error('request failed', { error: e });
        fail(req, res, 500, 'SPOKESYNC_E_HTTP', 'internal error', { mode: 'close' });
      });
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    };
    const tls = o.listen.tls;
    // node's headersTimeout runs from a request's first byte (headersDeadline times the first one from the connection); checked often enough for a short one
    const timing = {
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: limits.headersTimeout,
      requestTimeout: limits.requestTimeout,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(limits.headersTimeout / 10))),
    };
    this.server = tls
      ? https.createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), handshakeTimeout: limits.handshakeTimeout, ...timing }, handler)
      : http.createServer(timing, handler);
    // a slow link needs minutes for one batch, so the overall cap is long: silence (watchBody, timeout) ends a stalled one first
    this.server.timeout = idle;
    this.server.keepAliveTimeout = 60_000;
    this.server.maxConnections = limits.maxConnections;
    new ConnectionLimiter(limits.maxConnectionsPerAddress, this.refusals).attach(this.server);
    headersDeadline(this.server, limits.headersTimeout, tls !== undefined);
    this.addRoute('POST', EXCHANGE_PATH, (req, res, child) => this.exchange(req, res, child));
    this.addRoute('GET', PEER_PATH, async (_req, res, child) => {
      const body = JSON.stringify({ node: this.o.core.node, child: child.id });
      res.writeHead(200, {
        'content-type': 'application/json', 'content-length': Buffer.byteLength(body), [SHAPES_HEADER]: '1', [INCARNATION_HEADER]: '1',
        ...(this.o.observer ? { [REPORTS_HEADER]: '1' } : {}),
      });
      res.end(body);
    });
  }

  /** Adds an authenticated route (e.g. GET /v1/snapshot for provisioning). */
  addRoute(method: string, path: string, handler: RouteHandler): void {
    this.routes.set(`${method.toUpperCase()} ${path}`, handler);
  }

  async start(): Promise<void> {
    const { host, port } = this.o.listen;
    await new Promise<void>((resolve, reject) => {
      const failed = (e: Error): void => {
        const code = (e as { code?: string }).code ?? 'error';
        reject(new SpokesyncError('SPOKESYNC_E_CONFIG', `cannot listen on ${host}:${port} (${code})`, {
          cause: e,
          fix: 'Choose a free listen.port (and a listen.host of this machine), or stop the process that holds it.',
        }));
      };
      this.server.once('error', failed);
      this.server.listen(port, host, () => {
        this.server.off('error', failed);
        resolve();
      });
    });
    this.log.info('listening', { host, port: this.port, tls: this.o.listen.tls !== undefined });
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  get url(): string {
    const host = this.o.listen.host === '0.0.0.0' ? '127.0.0.1' : this.o.listen.host;
    return `${this.o.listen.tls ? 'https' : 'http'}://${host}:${this.port}`;
  }

  /** Stops accepting, lets requests in flight finish (their batches apply whole), then closes. */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await Promise.allSettled([...this.inflight]);
    this.server.closeAllConnections();
    await closed;
  }

  /** Refusals before the body is read drain it, up to the body limit. */
  private drain(): Rest {
    return { mode: 'drain', allowance: this.o.listen.maxBodyBytes };
  }

  /** The child whose token this is; every child is compared, in constant time. */
  private authenticate(req: IncomingMessage): ChildConfig | null {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m?.[1]) return null;
    const presented = sha256(m[1]);
    let found: ChildConfig | null = null;
    for (const t of this.tokens) if (timingSafeEqual(presented, t.digest)) found = t.child;
    return found;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.o.front && (await this.o.front(req, res))) return;
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === HEALTH_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3 });
      res.end('ok\n');
      return;
    }
    const address = addressKey(req.socket.remoteAddress);
    const blocked = this.throttle.blockedFor(address);
    if (blocked > 0) {
      this.refusals.refused('refused: too many wrong tokens from one address', address, { retryAfterS: Math.ceil(blocked / 1000) });
      res.setHeader('retry-after', String(Math.ceil(blocked / 1000)));
      // a little of the body is read, so the answer is not lost to a reset; more closes the connection
      fail(req, res, 429, 'SPOKESYNC_E_HTTP', 'too many wrong tokens from this address; retry later', { mode: 'drain', allowance: 64 * 1024 });
      return;
    }
    const handler = this.routes.get(`${req.method ?? 'GET'} ${path}`);
    if (!handler) {
      const known = [...this.routes.keys()].some((k) => k.endsWith(` ${path}`));
      fail(req, res, known ? 405 : 404, 'SPOKESYNC_E_HTTP', known ? 'method not allowed' : 'no such path', this.drain());
      return;
    }
    const child = this.authenticate(req);
    if (!child) {
      const told = this.wrongToken(req, path, address);
      if (this.throttle.failed(address)) {
        const { max, window, block } = this.limits.authFailures;
        this.log.warn('refusing an address: too many wrong tokens', { address, failures: max, windowS: window / 1000, blockS: block / 1000 });
      }
      fail(req, res, 401, 'SPOKESYNC_E_AUTH', 'missing or unknown token', this.drain());
      await told;
      return;
    }
    await handler(req, res, child);
  }

  /**
   * A wrong token: logged once per window per address and claimed node (with the
   * fix on both sides), and told to the observer, which records it for that child.
   */
  private wrongToken(req: IncomingMessage, path: string, address: string): Promise<void> {
    const said = req.headers[NODE_HEADER];
    const claimed = typeof said === 'string' && /^[a-z0-9-]{1,64}$/.test(said) ? said : null;
    const known = claimed !== null && this.o.children.some((c) => c.id === claimed);
    const first = this.refusals.refused(`refused: wrong token${claimed ? ` from a node that says it is '${claimed}'` : ''}`, address, {
      path, child: claimed, remote: req.socket.remoteAddress,
      fix: known ? `check children[].token for '${claimed}' here and parent.token at '${claimed}'` : 'no child of this node presented it: check children[] here',
    });
    if (!first || !known || !this.o.observer) return Promise.resolve();
    return this.o.observer.refusedToken(claimed, address).catch((e: unknown) => this.log.warn('a refused token could not be recorded', { error: e }));
  }

  private async exchange(req: IncomingMessage, res: ServerResponse, child: ChildConfig): Promise<void> {
    const { listen } = this.o;
    const log = this.log.child({ child: child.id });
    const startedAt = new Date();
    let setsUp = 0;
    // told after the answer went out: the child waits for nothing of it
    const round = async (result: string, setsDown: number, bytesDown: number): Promise<void> => {
      const report = req.headers[REPORT_HEADER];
      const r: ServedRound = {
        peer: child.id, role: 'child', startedAt, durationMs: Date.now() - startedAt.getTime(), bytesUp: wire.bytes, bytesDown,
        setsUp, setsDown, result, address: addressKey(req.socket.remoteAddress), ...(typeof report === 'string' ? { report } : {}),
      };
      await this.o.observer?.round(r).catch((e: unknown) => log.warn('the exchange round could not be recorded', { error: e }));
    };
    const enc = parseContentEncoding(req.headers['content-encoding']);
    if (enc === null) {
      fail(req, res, 415, 'SPOKESYNC_E_HTTP', `Content-Encoding must be one of ${ACCEPTED_CODINGS}, identity`, this.drain());
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > listen.maxBodyBytes) {
      fail(req, res, 413, 'SPOKESYNC_E_BATCH_TOO_LARGE', `the body is larger than ${listen.maxBodyBytes} bytes`, { mode: 'close' });
      return;
    }
    // a resumable upload (resume.ts): the body is named, and may continue one the connection lost
    const upload = parseUploadId(req.headers[UPLOAD_HEADER]);
    const offset = upload ? parseOffset(req.headers[OFFSET_HEADER]) ?? 0 : 0;
    const prefix = upload && offset > 0 ? this.uploads.get(child.id, upload) : null;
    if (offset > 0 && prefix?.length !== offset) {
      fail(req, res, 409, 'SPOKESYNC_E_HTTP', 'the upload to resume is not held here; send it whole', this.drain());
      return;
    }
    let bodyRead = false;
    let answering = false;
    // req is piped, not pipelined: a failure downstream must leave the socket open for the answer
    const wire = new ByteLimit(listen.maxBodyBytes, 'body');
    // a named body is kept in pieces (to hold it if the connection is lost) and hashed as it comes
    const raw: Buffer[] = [];
    const digest = uploadDigest();
    let rawBytes = 0;
    const keep = (c: Buffer): void => {
      rawBytes += c.length;
      if (rawBytes > listen.maxBodyBytes) return;
      raw.push(c);
      digest.update(c);
    };
    if (prefix) {
      keep(prefix);
      wire.write(prefix);
    }
    if (upload) req.on('data', keep);
    req.pipe(wire);
    req.once('close', () => {
      if (req.complete) return;
      // the connection was lost mid-body: keep what came, for the child to send only the rest
      if (upload && !answering && rawBytes <= listen.maxBodyBytes) this.uploads.set(child.id, upload, Buffer.concat(raw));
      wire.destroy(new SpokesyncError('SPOKESYNC_E_HTTP', 'the connection closed before the body ended'));
    });
    // the batch is held until its answer is sent; what all requests hold at once is bounded too
    const lease = this.budget.lease();
    try {
      const limits = { maxRecords: this.o.maxRecords ?? 10_000, maxBytes: listen.maxInflatedBytes, maxElements: this.maxElements, lease };
      let batch;
      try {
        if (isWholeBody(enc)) {
          // a whole-buffer coding: read the (capped) body, then unpack
          const parts: Buffer[] = [];
          for await (const c of wire) parts.push(c as Buffer);
          batch = await collectBatch([decompress(Buffer.concat(parts), enc, listen.maxInflatedBytes)], limits);
        } else {
          const inflated = pipeline(
            wire,
            decompressor(enc),
            new ByteLimit(listen.maxInflatedBytes, 'inflated body'),
            () => undefined,
          );
          batch = await collectBatch(inflated, limits);
        }
      } catch (e) {
        throw isSpokesyncError(e) ? e : inflateError(e, listen.maxInflatedBytes);
      }
      bodyRead = true;
      setsUp = batch.entries.length;
      if (upload) {
        this.uploads.delete(child.id);
        if (digest.id() !== upload) {
          throw new SpokesyncError('SPOKESYNC_E_XML', prefix ? 'the resumed body does not match its upload id' : 'the body does not match its upload id');
        }
      }
      const taken = await this.o.core.take(child.id, batch.header, batch.entries, batch.shapes);
      const asked = parseUploadId(req.headers[RESUME_HEADER]);
      const held = asked ? this.uploads.get(child.id, asked)?.length ?? 0 : 0;
      res.sendDate = false;
      // a probe from a child that holds part of the last answer: the rest of it (it is still
      // a right answer: the child has taken none of it, and the journal only grows)
      const part = parseAnswerHave(req.headers[ANSWER_HAVE_HEADER]);
      const last = part && batch.entries.length === 0 ? this.answers.entry(child.id, part.id) : null;
      if (last && part && part.have < last.bytes.length) {
        const rest = last.bytes.subarray(part.have);
        res.writeHead(200, {
          'content-length': rest.length,
          [ANSWER_HEADER]: part.id,
          [OFFSET_HEADER]: String(part.have),
          [SHAPES_HEADER]: '1', [INCARNATION_HEADER]: '1',
          ...(held > 0 ? { [HAVE_HEADER]: String(held) } : {}),
          ...(last.meta === 'identity' ? {} : { 'content-encoding': last.meta }),
        });
        res.end(rest);
        log.info('exchange', { ...taken, resumedAnswer: part.id, bytesOut: rest.length, of: last.bytes.length });
        await this.o.core.contact(child.id, 'ok').catch(() => undefined);
        lease.release();
        await round('ok', 0, rest.length);
        return;
      }
      const max = this.o.maxCaps ?? { records: 1000, bytes: 1024 * 1024 };
      const caps: Caps = {
        records: capHeader(req.headers[CAP_RECORDS_HEADER], DEFAULT_CAPS.records, max.records),
        bytes: capHeader(req.headers[CAP_BYTES_HEADER], DEFAULT_CAPS.bytes, max.bytes),
      };
      const answer = await this.o.core.next(this.o.routeFor(child.id), caps, req.headers[SHAPES_HEADER] === '1');
      const out = negotiate(req.headers['accept-encoding'], enc);
      const body = compress(await batchBuffer(answer.header, answer.entries, answer.shapes ?? []), out);
      const named = body.length >= RESUMABLE_BYTES ? uploadId(body) : null;
      if (named) this.answers.set(child.id, named, body, out);
      else this.answers.delete(child.id);
      res.writeHead(200, {
        'content-length': body.length,
        [SHAPES_HEADER]: '1', [INCARNATION_HEADER]: '1',
        ...(named ? { [ANSWER_HEADER]: named } : {}),
        ...(held > 0 ? { [HAVE_HEADER]: String(held) } : {}),
        ...(out === 'identity' ? {} : { 'content-encoding': out }),
      });
      res.end(body);
      log.info('exchange', { ...taken, sent: answer.entries.length, more: answer.header.more, bytesOut: body.length });
      await this.o.core.contact(child.id, 'ok').catch(() => undefined);
      lease.release();
      await round('ok', answer.entries.length, body.length);
    } catch (e) {
      // a refused batch is dropped now, not after the answer: others being read take its place
      lease.release();
      answering = true;
      const code = isSpokesyncError(e) ? e.code : 'SPOKESYNC_E_HTTP';
      const status = isSpokesyncError(e) ? STATUS[e.code] ?? 500 : 500;
      log.warn('exchange refused', { status, code, error: isSpokesyncError(e) ? e.message : String(e) });
      const msg = isSpokesyncError(e) ? e.message : 'internal error';
      await this.o.core.contact(child.id, `${code}: ${msg}`).catch(() => undefined);
      req.unpipe(wire);
      const overflow = wire.bytes > listen.maxBodyBytes;
      fail(req, res, status, code, msg, bodyRead ? { mode: 'read' }
        : overflow ? { mode: 'close' } : { mode: 'drain', allowance: listen.maxBodyBytes - wire.bytes });
      await round(`${code}: ${msg}`, 0, 0);
    } finally {
      lease.release();
    }
  }
}
