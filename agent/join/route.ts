// The parent's half of `spokesync join`: POST /v1/join, for its configured
// children only (the exchange server checks the token). A child that has
// never exchanged with this node asks it to start its cursor: once capture has
// journaled every commit, the cursor starts at the journal's top, so that what
// this node journals from then on goes to the child by ordinary sync and what
// it journaled before is in the rows the child compares. A child that has
// exchanged before is refused (409 SPOKESYNC_E_JOIN). Asked again (a join run
// again after an interruption, before its first sync), the cursor starts anew.
import type { IncomingMessage, ServerResponse } from 'node:http';
import got from 'got';
import pRetry, { AbortError } from 'p-retry';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { EXCHANGE_BACKOFF, retryDelays } from '../backoff.js';
import type { ChildConfig, Config, ParentConfig } from '../config/types.js';
import { REFUSAL_CHARS, parentRequestOptions, refusal } from '../exchange/parent-http.js';
import { startChildCursor } from '../provision/cursor.js';
import { siteState } from '../provision/rails.js';
import { routeTo } from '../routing/filters.js';

export const JOIN_PATH = '/v1/join';

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
}

/** Starts the cursor of `child` at the top of the journal, once every commit is journaled; refused when it has exchanged before. */
export async function admitJoin(deps: JoinRouteDeps, child: string): Promise<JoinAnswer> {
  const { config, db } = deps;
  const ss = config.database.stateSchema;
  const node = config.node.id;
  await deps.gate?.();
  const refuse = async (): Promise<void> => {
    const s = await siteState(db, ss, routeTo(config, child, 'child'));
    if (!s.exchanged) return;
    throw new SpokesyncError('SPOKESYNC_E_JOIN', `${child} has exchanged with ${node} before: join is for a site's first contact with its parent`, {
      fix: `At ${child}, compare with \`spokesync verify\` and make differing rows equal with \`spokesync repair\`.`,
    });
  };
  await refuse();
  await deps.capture.caughtUp(5 * 60_000);
  await refuse();
  const [top] = await db.query<{ m: string | number | null }>(`SELECT MAX(seq) AS m FROM ${stateTable(ss, 'journal')}`);
  const seq = String(top?.m ?? 0);
  await startChildCursor(db, ss, child, seq, `joined at journal seq ${seq}`);
  deps.log.info('a child joins: its cursor starts at the journal\'s top', { child, seq });
  return { node, child, seq };
}

/** Adds POST /v1/join to the parent's exchange server. */
export function registerJoinRoute(server: RouteServer, deps: JoinRouteDeps): void {
  server.addRoute('POST', JOIN_PATH, async (req, res, child) => {
    req.resume();
    const answer = (status: number, body: string, type: string): void => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    try {
      answer(200, JSON.stringify(await admitJoin(deps, child.id)), 'application/json');
    } catch (e) {
      const code = isSpokesyncError(e) ? e.code : 'SPOKESYNC_E_HTTP';
      deps.log.warn('join refused', { child: child.id, code, error: (e as Error).message });
      const status = code === 'SPOKESYNC_E_JOIN' ? 409 : code === 'SPOKESYNC_E_BUSY' ? 503 : 500;
      const text = isSpokesyncError(e) ? e.message.replace(/[\r\n]+/g, ' ').slice(0, 300) : 'the parent could not start the join';
      answer(status, `${code}: ${text}\n`, 'text/plain; charset=utf-8');
    }
  });
}

/** Asks the parent to start its cursor for this node (the child's side of POST /v1/join). */
export async function askToJoin(parent: ParentConfig, log: Logger, signal?: AbortSignal): Promise<JoinAnswer> {
  const url = `${parent.url.replace(/\/+$/, '')}${JOIN_PATH}`;
  return pRetry(async () => {
    let res;
    try {
      res = await got.post(url, {
        ...parentRequestOptions(parent), body: '', responseType: 'text',
        // the parent first waits for its capture to journal every commit
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
    const a = JSON.parse(res.body) as Partial<JoinAnswer>;
    if (typeof a.node !== 'string' || typeof a.seq !== 'string' || !/^[0-9]{1,20}$/.test(a.seq) || typeof a.child !== 'string') {
      throw new AbortError(new SpokesyncError('SPOKESYNC_E_HTTP', 'the parent answered the join request with something else'));
    }
    return { node: a.node, child: a.child, seq: a.seq };
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
