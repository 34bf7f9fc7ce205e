// verify over the exchange endpoint: the parent answers POST /v1/verify for its
// configured children only (the exchange server checks the child's token), about
// the tables it syncs with that child; the child asks (RemoteSide) and counts the
// bytes on the wire. Each request is one question of side.ts as JSON, gzipped
// both ways; the parent keeps nothing between requests.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync, gzipSync } from 'node:zlib';
import got from 'got';
import pRetry, { AbortError } from 'p-retry';
import type { Catalog } from '../../apply/core/catalog.js';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError, isSpokesyncError, type ErrorCode } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import type { InsertOp } from '../../apply/core/model.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import type { TableShape } from '../../apply/codec/shape.js';
import { EXCHANGE_BACKOFF, retryDelays } from '../backoff.js';
import { childTables } from '../config/tables.js';
import { childFilters } from '../rows/child.js';
import type { ChildConfig, Config, ParentConfig } from '../config/types.js';
import { bodyBytes, parentRequestOptions, refusal, refusalText } from '../exchange/parent-http.js';
import { LocalSide, type CheckAnswer, type CheckQuery, type Chunk, type RowHash, type RowsQuery, type SumsQuery, type VerifySide } from './side.js';

export const VERIFY_PATH = '/v1/verify';
/** the largest question a parent reads */
const MAX_BODY = 4 * 1024 * 1024;
/** a question about every table of a large database takes the parent minutes to answer */
const ANSWER_TIMEOUT_MS = 30 * 60_000;

type Question =
  | { readonly op: 'shapes'; readonly tables: readonly string[] }
  | { readonly op: 'sums'; readonly q: readonly SumsQuery[] }
  | { readonly op: 'rows'; readonly q: readonly RowsQuery[] }
  | { readonly op: 'check'; readonly q: readonly CheckQuery[] }
  | { readonly op: 'fetch'; readonly table: string; readonly keys: readonly string[] }
  | { readonly op: 'clock' };

interface RouteServer {
  addRoute(method: string, path: string, handler: (req: IncomingMessage, res: ServerResponse, child: ChildConfig) => Promise<void>): void;
}

export interface VerifyRouteDeps {
  readonly config: Config;
  readonly db: Queryable;
  readonly log: Logger;
  /** the capture running in this process (the daemon's): in-flight rows are looked for once it has caught up */
  readonly capture: { caughtUp(timeoutMs?: number): Promise<void> };
  /** the application schema's catalogue as the daemon knows it now */
  readonly catalog: () => Catalog;
  /** sessions whose default schema is the application's: a child with row filters is compared on its subset through them */
  readonly appDb?: () => Queryable;
}

const STATUS: Partial<Record<ErrorCode, number>> = { SPOKESYNC_E_USAGE: 400, SPOKESYNC_E_UNKNOWN_TABLE: 422, SPOKESYNC_E_NO_IDENTITY: 422 };

/** The side of this node a child compares itself with: the tables this node syncs with that child. */
export function sideForChild(deps: Omit<VerifyRouteDeps, 'log'>, child: string): LocalSide {
  const { config, db } = deps;
  const filtered = config.children.find((c) => c.id === child && c.rows !== undefined);
  return new LocalSide({
    db: filtered && deps.appDb ? deps.appDb() : db, stateSchema: config.database.stateSchema, peer: child,
    catalog: async () => deps.catalog(),
    tables: (catalog: Catalog) => new Set(childTables(config, child, catalog)),
    caughtUp: () => deps.capture.caughtUp(5 * 60_000),
    ...(filtered && deps.appDb ? { subset: (catalog: Catalog) => childFilters(config, filtered, catalog) } : {}),
  });
}

/** Adds POST /v1/verify to the parent's exchange server. */
export function registerVerifyRoute(server: RouteServer, deps: VerifyRouteDeps): void {
  server.addRoute('POST', VERIFY_PATH, async (req, res, child) => {
    const answer = (status: number, body: Buffer | string, gz = false): void => {
      res.writeHead(status, {
        'content-type': status === 200 ? 'application/json' : 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        ...(gz ? { 'content-encoding': 'gzip' } : {}),
      });
      res.end(body);
    };
    const parts: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY) return answer(413, `SPOKESYNC_E_HTTP: a verify question is at most ${MAX_BODY} bytes\n`);
      parts.push(c as Buffer);
    }
    let question: Question;
    try {
      const raw = Buffer.concat(parts);
      const text = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw, { maxOutputLength: 8 * MAX_BODY }) : raw;
      question = JSON.parse(text.toString('utf8')) as Question;
    } catch {
      return answer(400, 'SPOKESYNC_E_USAGE: a verify question is gzipped JSON\n');
    }
    const log = deps.log.child({ part: 'verify', child: child.id });
    try {
      const result = await ask(sideForChild(deps, child.id), question);
      const body = Buffer.from(JSON.stringify(result), 'utf8');
      const gz = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
      answer(200, gz ? gzipSync(body) : body, gz);
      log.debug('verify question answered', { op: question.op });
    } catch (e) {
      const code = isSpokesyncError(e) ? e.code : 'SPOKESYNC_E_HTTP';
      log.warn('verify question refused', { op: String(question.op).slice(0, 20), code, error: (e as Error).message });
      answer(STATUS[code as ErrorCode] ?? 500, `${code}: ${isSpokesyncError(e) ? e.message.replace(/[\r\n]+/g, ' ').slice(0, 300) : 'internal error'}\n`);
    }
  });
}

const list = (v: unknown): readonly unknown[] => {
  if (!Array.isArray(v)) throw new SpokesyncError('SPOKESYNC_E_USAGE', 'a verify question names its tables in a list');
  return v;
};
const text = (v: unknown): string => {
  if (typeof v !== 'string') throw new SpokesyncError('SPOKESYNC_E_USAGE', 'a verify question holds a value that is not text');
  return v;
};

/** Answers one question; its parts are checked here (the side checks depths, prefixes and sizes). */
async function ask(side: VerifySide, q: Question): Promise<unknown> {
  switch (q.op) {
    case 'shapes':
      return side.shapes(list(q.tables).map(text));
    case 'sums':
      return side.sums(list(q.q).map((s) => {
        const x = s as SumsQuery;
        return { table: text(x.table), depth: Number(x.depth), under: x.under === null ? null : list(x.under).map(text) };
      }));
    case 'rows':
      return side.rows(list(q.q).map((s) => ({ table: text((s as RowsQuery).table), under: list((s as RowsQuery).under).map(text) })));
    case 'check':
      return side.check(list(q.q).map((s) => ({ table: text((s as CheckQuery).table), keys: list((s as CheckQuery).keys).map(text) })));
    case 'fetch': {
      const ops = await side.fetch(text(q.table), list(q.keys).map(text));
      // the codec's own form of the rows: every value exact, bytes and references as they travel
      return { cs: encodeChangeSet({ id: 'verify:0', origin: 'verify', hlc: '0', time: '1970-01-01T00:00:00Z', ops }) };
    }
    case 'clock':
      return { clock: String(await side.clock()) };
    default:
      throw new SpokesyncError('SPOKESYNC_E_USAGE', 'unknown verify question');
  }
}

/** Bytes a comparison moved over the network (bodies and headers, both ways). */
export interface Traffic {
  sent: number;
  received: number;
}

/** The parent's side, over HTTP. */
export class RemoteSide implements VerifySide {
  readonly traffic: Traffic = { sent: 0, received: 0 };

  constructor(private readonly parent: ParentConfig, private readonly log: Logger, private readonly signal?: AbortSignal) {}

  private async ask<T>(question: Question): Promise<T> {
    const body = gzipSync(Buffer.from(JSON.stringify(question), 'utf8'));
    const url = `${this.parent.url.replace(/\/+$/, '')}${VERIFY_PATH}`;
    return pRetry(async () => {
      let res;
      try {
        res = await got.post(url, {
          ...parentRequestOptions(this.parent),
          headers: { ...parentRequestOptions(this.parent).headers, 'content-type': 'application/json', 'content-encoding': 'gzip', 'accept-encoding': 'gzip' },
          body, responseType: 'buffer',
          timeout: { connect: this.parent.timeout, secureConnect: this.parent.timeout, response: Math.max(this.parent.timeout, ANSWER_TIMEOUT_MS) },
          ...(this.signal ? { signal: this.signal } : {}),
        });
      } catch (e) {
        throw new SpokesyncError('SPOKESYNC_E_HTTP', `the verify request to the parent failed (${(e as { code?: string }).code ?? (e as Error).message})`, { cause: e });
      }
      this.traffic.sent += body.length + headerBytes(res.request.options.headers);
      this.traffic.received += res.rawBody.length + res.rawHeaders.reduce((n, h) => n + h.length + 2, 0);
      if (res.statusCode !== 200) {
        const err = refusal(res.statusCode, refusalText(res.rawBody), {
          request: 'the verify request',
          ...(res.statusCode === 404 ? { fix: 'The parent does not answer verify questions: update spokesync there.' } : {}),
        });
        throw res.statusCode >= 500 ? err : new AbortError(err);
      }
      const raw = res.headers['content-encoding'] === 'gzip' ? gunzipSync(res.rawBody) : bodyBytes(res.rawBody);
      return JSON.parse(raw.toString('utf8')) as T;
    }, {
      retries: Math.max(1, this.parent.maxTries) - 1,
      ...retryDelays(EXCHANGE_BACKOFF),
      ...(this.signal ? { signal: this.signal } : {}),
      shouldRetry: ({ error }) => {
        this.log.warn('verify request failed, retrying', { code: (error as { code?: string }).code, error: error.message });
        return true;
      },
    });
  }

  shapes(tables: readonly string[]): Promise<(TableShape | null)[]> {
    return this.ask({ op: 'shapes', tables });
  }

  sums(q: readonly SumsQuery[]): Promise<Chunk[][]> {
    return this.ask({ op: 'sums', q });
  }

  rows(q: readonly RowsQuery[]): Promise<RowHash[][]> {
    return this.ask({ op: 'rows', q });
  }

  check(q: readonly CheckQuery[]): Promise<CheckAnswer[]> {
    return this.ask({ op: 'check', q });
  }

  async clock(): Promise<bigint> {
    const { clock } = await this.ask<{ clock?: unknown }>({ op: 'clock' }).catch((e: unknown) => {
      if (!isSpokesyncError(e, 'SPOKESYNC_E_USAGE')) throw e;
      throw new SpokesyncError('SPOKESYNC_E_USAGE', `the parent does not tell its clock (${e.message})`, {
        fix: 'Update spokesync at the parent: repair and join stamp the rows they rewrite above the parent\'s versions, which it tells.',
      });
    });
    if (typeof clock !== 'string' || !/^[0-9]{1,20}$/.test(clock)) throw new SpokesyncError('SPOKESYNC_E_HTTP', 'the parent answered the clock question with something else');
    return BigInt(clock);
  }

  async fetch(table: string, keys: readonly string[]): Promise<InsertOp[]> {
    const { cs } = await this.ask<{ cs: string }>({ op: 'fetch', table, keys });
    const ops = decodeChangeSet(cs, { maxElements: (keys.length + 1) * 4100 }).ops;
    if (ops.some((op) => op.kind !== 'insert' || op.table !== table)) throw new SpokesyncError('SPOKESYNC_E_HTTP', 'the parent answered a fetch with other rows');
    return ops as InsertOp[];
  }
}

/** The bytes of request headers as they go out ("name: value\r\n" each, and the request line's share). */
function headerBytes(headers: Record<string, unknown>): number {
  let n = 40;
  for (const [k, v] of Object.entries(headers)) n += k.length + String(v).length + 4;
  return n;
}
