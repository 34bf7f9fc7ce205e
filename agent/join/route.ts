// The parent's half of `spokesync join`, for its configured children only (the
// exchange server checks the token), and the child's requests.
// POST /v1/join: a child that has never exchanged with this node asks it to
// start its cursor: once capture has journaled every commit, the cursor starts
// at the journal's top, so that what this node journals from then on goes to
// the child by ordinary sync and what it journaled before is in the rows the
// child compares. Asked again (a join run again after an interruption, before
// its first sync), the cursor starts anew.
// POST /v1/join/rows: rows only the child holds, applied here at once as change
// sets of the child's join origin (rows.ts), from the child (so never sent back
// to it) and on to this node's other peers.
// Both refuse a child that has exchanged with this node (409 SPOKESYNC_E_JOIN).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync, gzipSync } from 'node:zlib';
import got from 'got';
import pRetry, { AbortError } from 'p-retry';
import type { Catalog } from '../../apply/core/catalog.js';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import type { BatchEntry, InsertOp } from '../../apply/core/model.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { DEFAULT_MAX_ELEMENTS } from '../../apply/codec/decode-limits.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import type { ApplyReport } from '../../apply/replay/applier.js';
import { childTables } from '../config/tables.js';
import { EXCHANGE_BACKOFF, retryDelays } from '../backoff.js';
import type { ChildConfig, Config, ParentConfig } from '../config/types.js';
import { REFUSAL_CHARS, parentRequestOptions, refusal } from '../exchange/parent-http.js';
import { startChildCursor } from '../provision/cursor.js';
import { siteState } from '../provision/rails.js';
import { Origins } from '../exchange/origins.js';
import { refusedFrom, routeTo } from '../routing/filters.js';
import { joinChangeSets, joinOrigin, nextStamp, type Pushed } from './rows.js';
import { journalTop } from './state.js';

export const JOIN_PATH = '/v1/join';
export const JOIN_ROWS_PATH = '/v1/join/rows';
/** the largest body of rows a parent reads (gzipped) */
const MAX_BODY = 8 * 1024 * 1024;

/** What the parent answers: its name, and the journal seq where its cursor for the child starts. */
export interface JoinAnswer {
  readonly node: string;
  readonly child: string;
  readonly seq: string;
}

interface RouteServer {
  addRoute(method: string, path: string, handler: (req: IncomingMessage, res: ServerResponse, child: ChildConfig) => Promise<void>): void;
}

export interface JoinRouteDeps {
  readonly config: Config;
  readonly db: Queryable;
  readonly log: Logger;
  /** the capture running in this process (the daemon's) */
  readonly capture: { caughtUp(timeoutMs?: number): Promise<void> };
  /** rejects while this process may not capture or apply (the node lock is lost) */
  readonly gate?: () => Promise<void>;
  /** this node's applier (rows a child sends up) */
  readonly applier: { applyBatch(fromPeer: string, entries: readonly BatchEntry[]): Promise<ApplyReport> };
  /** the application schema's catalogue as the daemon knows it now */
  readonly catalog: () => Catalog;
}

/** Refused when `child` has exchanged with this node: a join is its first contact. */
async function refuseExchanged(deps: JoinRouteDeps, child: string): Promise<void> {
  const s = await siteState(deps.db, deps.config.database.stateSchema, routeTo(deps.config, child, 'child'));
  if (!s.exchanged) return;
  throw new SpokesyncError('SPOKESYNC_E_JOIN', `${child} has exchanged with ${deps.config.node.id} before: join is for a site's first contact with its parent`, {
    fix: `At ${child}, compare with \`spokesync verify\` and make differing rows equal with \`spokesync repair\`.`,
  });
}

/** Starts the cursor of `child` at the top of the journal, once every commit is journaled; refused when it has exchanged before. */
export async function admitJoin(deps: JoinRouteDeps, child: string): Promise<JoinAnswer> {
  const { config, db } = deps;
  const ss = config.database.stateSchema;
  const node = config.node.id;
  await deps.gate?.();
  await refuseExchanged(deps, child);
  await deps.capture.caughtUp(5 * 60_000);
  await refuseExchanged(deps, child);
  const seq = await journalTop(db, ss);
  await startChildCursor(db, ss, child, seq, `joined at journal seq ${seq}`);
  deps.log.info('a child joins: its cursor starts at the journal\'s top', { child, seq });
  return { node, child, seq };
}

/**
 * Applies rows only `child` holds, sent during its join: inserts of tables this
 * node syncs with it that may come up, as change sets of the child's join origin.
 */
export async function takeJoinRows(deps: JoinRouteDeps, child: string, ops: readonly InsertOp[]): Promise<Pushed> {
  await deps.gate?.();
  await refuseExchanged(deps, child);
  const synced = new Set(childTables(deps.config, child, deps.catalog()));
  const oneWay = refusedFrom(deps.config, 'child');
  for (const op of ops) {
    if ((op.kind as string) !== 'insert' || !synced.has(op.table) || oneWay(op.table)) {
      throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_TABLE', `the rows sent write table ${JSON.stringify(String(op.table).slice(0, 64))}, which ${child} may not send here`);
    }
  }
  const origin = joinOrigin(child);
  const ss = deps.config.database.stateSchema;
  const entries = joinChangeSets(origin, await nextStamp(deps.db, ss, origin), ops, Date.now());
  // the child's join origin belongs to it here, as its own id does
  await new Origins({ db: deps.db, stateSchema: ss, node: deps.config.node.id, children: deps.config.children.map((c) => c.id) }).admit(child, entries);
  const r = await deps.applier.applyBatch(child, entries);
  deps.log.info('rows of a joining child applied', { child, rows: ops.length, applied: r.applied, quarantined: r.quarantined, conflicts: r.conflicts });
  return { applied: r.applied, quarantined: r.quarantined, conflicts: r.conflicts };
}

type Answer = (status: number, body: string, type: string) => void;

function answerer(res: ServerResponse): Answer {
  return (status, body, type) => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

function refused(deps: JoinRouteDeps, child: string, answer: Answer, e: unknown): void {
  const code = isSpokesyncError(e) ? e.code : 'SPOKESYNC_E_HTTP';
  deps.log.warn('join refused', { child, code, error: (e as Error).message });
  const status = code === 'SPOKESYNC_E_JOIN' || code === 'SPOKESYNC_E_ORIGIN' ? 409 : code === 'SPOKESYNC_E_BUSY' ? 503
    : code === 'SPOKESYNC_E_UNKNOWN_TABLE' || code === 'SPOKESYNC_E_XML' || code === 'SPOKESYNC_E_BAD_CHANGE' ? 422 : 500;
  const text = isSpokesyncError(e) ? e.message.replace(/[\r\n]+/g, ' ').slice(0, 300) : 'the parent could not take part in the join';
  answer(status, `${code}: ${text}\n`, 'text/plain; charset=utf-8');
}

/** Adds POST /v1/join and POST /v1/join/rows to the parent's exchange server. */
export function registerJoinRoute(server: RouteServer, deps: JoinRouteDeps): void {
  server.addRoute('POST', JOIN_PATH, async (req, res, child) => {
    req.resume();
    const answer = answerer(res);
    try {
      answer(200, JSON.stringify(await admitJoin(deps, child.id)), 'application/json');
    } catch (e) {
      refused(deps, child.id, answer, e);
    }
  });
  server.addRoute('POST', JOIN_ROWS_PATH, async (req, res, child) => {
    const answer = answerer(res);
    const parts: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY) return answer(413, `SPOKESYNC_E_BATCH_TOO_LARGE: rows sent for a join are at most ${MAX_BODY} bytes\n`, 'text/plain; charset=utf-8');
      parts.push(c as Buffer);
    }
    try {
      let ops;
      try {
        ops = decodeChangeSet(gunzipSync(Buffer.concat(parts), { maxOutputLength: 8 * MAX_BODY }), { maxElements: DEFAULT_MAX_ELEMENTS }).ops;
      } catch (e) {
        throw isSpokesyncError(e) ? e : new SpokesyncError('SPOKESYNC_E_XML', 'the rows sent are not a gzipped change set');
      }
      answer(200, JSON.stringify(await takeJoinRows(deps, child.id, ops as InsertOp[])), 'application/json');
    } catch (e) {
      refused(deps, child.id, answer, e);
    }
  });
}

/** One request of the child to the parent's join routes, retried like the exchange; `parse` reads the 200 answer. */
async function joinRequest<T>(parent: ParentConfig, log: Logger, path: string, body: Buffer | string, parse: (text: string) => T, signal?: AbortSignal): Promise<T> {
  const url = `${parent.url.replace(/\/+$/, '')}${path}`;
  return pRetry(async () => {
    let res;
    try {
      res = await got.post(url, {
        ...parentRequestOptions(parent), body, responseType: 'text',
        // the parent may first wait for its capture to journal every commit
        timeout: { connect: parent.timeout, secureConnect: parent.timeout, response: Math.max(parent.timeout, 6 * 60_000) },
        ...(signal ? { signal } : {}),
      });
    } catch (e) {
      throw new SpokesyncError('SPOKESYNC_E_HTTP', `the join request to the parent failed (${(e as { code?: string }).code ?? (e as Error).message})`, { cause: e });
    }
    if (res.statusCode !== 200) {
      const err = refusal(res.statusCode, res.body.slice(0, REFUSAL_CHARS), {
        request: 'the join request',
        ...(res.statusCode === 404 ? { fix: 'The parent does not take joins: update spokesync there.' } : {}),
      });
      throw res.statusCode >= 500 && err.code !== 'SPOKESYNC_E_JOIN' ? err : new AbortError(err);
    }
    try {
      return parse(res.body);
    } catch {
      throw new AbortError(new SpokesyncError('SPOKESYNC_E_HTTP', 'the parent answered the join request with something else'));
    }
  }, {
    retries: Math.max(1, parent.maxTries) - 1,
    ...retryDelays(EXCHANGE_BACKOFF),
    ...(signal ? { signal } : {}),
    shouldRetry: ({ error }) => {
      log.warn('join request failed, retrying', { code: (error as { code?: string }).code, error: error.message });
      return true;
    },
  });
}

/** Asks the parent to start its cursor for this node (the child's side of POST /v1/join). */
export function askToJoin(parent: ParentConfig, log: Logger, signal?: AbortSignal): Promise<JoinAnswer> {
  return joinRequest(parent, log, JOIN_PATH, '', (text) => {
    const a = JSON.parse(text) as Partial<JoinAnswer>;
    if (typeof a.node !== 'string' || typeof a.seq !== 'string' || !/^[0-9]{1,20}$/.test(a.seq) || typeof a.child !== 'string') throw new Error('not an answer');
    return { node: a.node, child: a.child, seq: a.seq };
  }, signal);
}

/** Sends rows of this node to the parent, which applies them at once (the child's side of POST /v1/join/rows). */
export function sendJoinRows(parent: ParentConfig, log: Logger, ops: readonly InsertOp[], signal?: AbortSignal): Promise<Pushed> {
  const body = gzipSync(encodeChangeSet({ id: 'join:0', origin: 'join', hlc: '0', time: '1970-01-01T00:00:00Z', ops }));
  return joinRequest(parent, log, JOIN_ROWS_PATH, body, (text) => {
    const a = JSON.parse(text) as Partial<Pushed>;
    if (typeof a.applied !== 'number' || typeof a.quarantined !== 'number' || typeof a.conflicts !== 'number') throw new Error('not an answer');
    return { applied: a.applied, quarantined: a.quarantined, conflicts: a.conflicts };
  }, signal);
}
