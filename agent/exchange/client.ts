// The child side of the exchange: POST our batch (changes + acks) to the
// parent, take its answer, repeat until both sides are drained. got's own retry
// is off; p-retry is the one retry layer and waits the backoff (agent/backoff.ts).
// A dropped connection costs at most the batch in flight.
import type { IncomingMessage } from 'node:http';
import got, { type Response } from 'got';
import pRetry, { AbortError } from 'p-retry';
import type { ParentConfig } from '../config/types.js';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError, isSpokesyncError, type ErrorCode } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { EXCHANGE_BACKOFF, backoffDelay, retryDelays, type Backoff } from '../backoff.js';
import { PARENT_ID_KEY, getMeta, recordContact, setMeta } from '../routing/cursors.js';
import type { Route } from '../routing/filters.js';
import { AnswerPart } from './answer-part.js';
import { BROTLI_CODINGS, decompress, encodingFor, parseContentEncoding, type Encoding } from './compression.js';
import { REFUSAL_CHARS, parentRequestOptions, pinnedTls, refusal } from './parent-http.js';
import { EXCHANGE_PATH, INCARNATION_HEADER, PEER_PATH, SHAPES_HEADER, type ExchangeCore, type TakeResult } from './protocol.js';
import { ANSWER_HEADER, HAVE_HEADER, OFFSET_HEADER, parseOffset, parseUploadId } from './resume.js';
import { RoundBodies, afterAnswer, fallbackCoding, planPost, type Upload } from './round-plan.js';
import { collectBatch } from './wire.js';
import { DEFAULT_MAX_ELEMENTS } from '../../apply/codec/decode-limits.js';

/** meta key: the parent reads table shapes */
const SHAPES_KEY = 'parent.shapes';
/** HTTP statuses that no resend can fix: the token, the peer, or the batch itself is wrong. */
const PERMANENT = new Set([400, 401, 403, 404, 405, 413, 415, 422]);
/** refusals of what the batch claims (409): sending it again gets the same answer */
const REFUSED = new Set<ErrorCode>(['SPOKESYNC_E_ORIGIN', 'SPOKESYNC_E_CHANGE_ID', 'SPOKESYNC_E_ACK']);

export interface ExchangeClientOptions {
  readonly parent: ParentConfig;
  readonly node: string;
  readonly core: ExchangeCore;
  readonly db: Queryable;
  readonly stateSchema: string;
  readonly routeFor: (parentId: string) => Route;
  readonly log: Logger;
  /** largest answer after inflation (default 8 MiB: a parent answers with at most 1 MiB) */
  readonly maxInflatedBytes?: number;
  /** first backoff delay in ms (default 1000) */
  readonly backoffBaseMs?: number;
  /** longest backoff delay in ms (default 60 s) */
  readonly backoffMaxMs?: number;
}

export interface SyncResult {
  readonly parent: string;
  readonly rounds: number;
  readonly sent: number;
  readonly received: number;
  readonly applied: number;
  readonly duplicates: number;
  readonly quarantined: number;
  readonly conflicts: number;
  /** nothing pending either way when the exchange ended */
  readonly drained: boolean;
}

interface RoundResult {
  /** our entries the parent got in this round (0 when only a probe went through) */
  readonly sent: number;
  readonly theirMore: boolean;
  readonly taken: TakeResult;
}

function sum(a: TakeResult, b: TakeResult): TakeResult {
  return {
    applied: a.applied + b.applied, duplicates: a.duplicates + b.duplicates, quarantined: a.quarantined + b.quarantined,
    conflicts: a.conflicts + b.conflicts, received: a.received + b.received, replayed: a.replayed + b.replayed,
  };
}

export class ExchangeClient {
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly http: ReturnType<typeof parentRequestOptions>;
  private readonly base: string;
  /** the coding of our requests: the configured one; for br, the best of spokesync's own the parent takes */
  private requestEncoding: Encoding;
  /** the parent reads table shapes in batches (null: not known yet) */
  private parentShapes: boolean | null = null;
  /** the parent said it reads incarnations (recovery.ts); once it sent its own, the cursor knows it too */
  private parentIncarnations = false;

  constructor(private readonly o: ExchangeClientOptions) {
    this.log = o.log.child({ part: 'client' });
    this.backoff = { ...EXCHANGE_BACKOFF, firstMs: o.backoffBaseMs ?? EXCHANGE_BACKOFF.firstMs, maxMs: o.backoffMaxMs ?? EXCHANGE_BACKOFF.maxMs };
    this.http = parentRequestOptions(o.parent, pinnedTls(o.parent.ca));
    this.base = o.parent.url.replace(/\/+$/, '');
    // brotli children try spokesync-vbr first and fall back, coding by coding, when the parent refuses one (415)
    this.requestEncoding = o.parent.compression === 'br' ? BROTLI_CODINGS[0]! : encodingFor(o.parent.compression);
  }

  /** One HTTP request, retried by p-retry; `parse` runs inside the retry (a garbled answer is fetched again). */
  private async request<T>(
    what: string,
    send: (attempt: number) => Promise<Response<Buffer>>,
    parse: (res: Response<Buffer>) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    // `signal` stops further tries and the wait for them, never a request in flight (its answer is still taken):
    // p-retry gets a signal that follows it only between attempts
    const between = new AbortController();
    const follow = (): void => between.abort(signal?.reason);
    try {
      return await pRetry(
        async (attempt) => {
          signal?.removeEventListener('abort', follow);
          let res: Response<Buffer>;
          try {
            res = await send(attempt);
          } catch (e) {
            throw new SpokesyncError('SPOKESYNC_E_HTTP', `${what}: ${(e as { code?: string }).code ?? (e as Error).message}`, { cause: e });
          }
          if (res.statusCode !== 200) {
            const err = refusal(res.statusCode, res.body.toString('utf8', 0, Math.min(res.body.length, REFUSAL_CHARS)));
            throw PERMANENT.has(res.statusCode) || REFUSED.has(err.code) ? new AbortError(err) : err;
          }
          try {
            return await parse(res);
          } catch (e) {
            throw isSpokesyncError(e) ? e : new SpokesyncError('SPOKESYNC_E_HTTP', `${what}: bad answer`, { cause: e });
          }
        },
        {
          retries: Math.max(1, this.o.parent.maxTries) - 1,
          ...retryDelays(this.backoff),
          signal: between.signal,
          shouldRetry: ({ error, attemptNumber }) => {
            if (signal?.aborted) return false;
            this.log.warn('exchange attempt failed, retrying', {
              what, attempt: attemptNumber, delayUpToMs: backoffDelay(this.backoff, attemptNumber),
              code: (error as { code?: string }).code, error: error.message,
            });
            signal?.addEventListener('abort', follow, { once: true });
            return true;
          },
        },
      );
    } finally {
      signal?.removeEventListener('abort', follow);
    }
  }

  private gotOptions() {
    return { ...this.http, timeout: { request: this.o.parent.timeout }, responseType: 'buffer' as const };
  }

  /**
   * Whether our batches may carry table shapes: known from the parent's answers
   * (remembered), else asked once per process before the first batch goes, so
   * that no batch reaches a parent that reads shapes without them.
   */
  private async parentReadsShapes(signal?: AbortSignal): Promise<boolean> {
    if (this.parentShapes !== null) return this.parentShapes;
    if ((await getMeta(this.o.db, this.o.stateSchema, SHAPES_KEY)) === '1') return (this.parentShapes = true);
    const reads = await this.request(
      'peer',
      () => got(`${this.base}${PEER_PATH}`, { ...this.gotOptions(), method: 'GET' }),
      async (res) => {
        if (res.headers[INCARNATION_HEADER] === '1') this.parentIncarnations = true;
        return res.headers[SHAPES_HEADER] === '1';
      },
      signal,
    );
    if (reads) await this.learnShapes();
    else this.parentShapes = false;
    return reads;
  }

  private async learnShapes(): Promise<void> {
    this.parentShapes = true;
    await setMeta(this.o.db, this.o.stateSchema, SHAPES_KEY, '1');
  }

  /** The parent's node id: remembered from the first authenticated contact. */
  async parentId(signal?: AbortSignal): Promise<string> {
    const { db, stateSchema } = this.o;
    const known = await getMeta(db, stateSchema, PARENT_ID_KEY);
    if (known) return known;
    const who = await this.request(
      'peer',
      () => got(`${this.base}${PEER_PATH}`, { ...this.gotOptions(), method: 'GET' }),
      async (res) => ({
        ...(JSON.parse(res.body.toString('utf8')) as { node?: unknown; child?: unknown }),
        shapes: res.headers[SHAPES_HEADER] === '1', incarnations: res.headers[INCARNATION_HEADER] === '1',
      }),
      signal,
    );
    // the same answer says whether the parent reads shapes: no request more for that
    if (who.incarnations) this.parentIncarnations = true;
    if (who.shapes) await this.learnShapes();
    else this.parentShapes = false;
    if (typeof who.node !== 'string' || !/^[a-z0-9-]+$/.test(who.node)) {
      throw new SpokesyncError('SPOKESYNC_E_PEER', 'the parent did not name itself');
    }
    if (who.child !== this.o.node) {
      throw new SpokesyncError('SPOKESYNC_E_PEER', `the parent knows this token as child '${String(who.child)}', but this node is '${this.o.node}'`);
    }
    await setMeta(db, stateSchema, PARENT_ID_KEY, who.node);
    return who.node;
  }

  /**
   * One round: our batch goes up, the parent's answer comes down. After a
   * failed attempt the batch may have arrived and only the answer been lost, or
   * part of it may have arrived: later attempts send a probe (round-plan.ts)
   * whose answer says what the parent took and how much of a cut upload it
   * holds; then only the rest goes up.
   */
  async round(parentId: string, signal?: AbortSignal): Promise<RoundResult> {
    const { parent, core } = this.o;
    const shapes = await this.parentReadsShapes(signal);
    const bodies = await RoundBodies.of(await core.next(this.o.routeFor(parentId), parent.batch, shapes, this.parentIncarnations));
    const answerPart = new AnswerPart();
    let upload: Upload | null = null;
    let taken: TakeResult = { applied: 0, duplicates: 0, quarantined: 0, conflicts: 0, received: 0, replayed: 0 };
    for (let passes = 1; ; passes++) {
      let probing = false;
      const answer = await this.request(
        'exchange',
        async (attempt) => {
          probing = attempt > 1;
          const post = (enc: Encoding) => {
            const plan = planPost({ bodies, enc, probing, upload, caps: parent.batch, answerHave: answerPart.header() });
            upload = plan.upload;
            return this.post(plan.body, plan.headers, answerPart);
          };
          let res = await post(this.requestEncoding);
          for (let next = fallbackCoding(this.requestEncoding, res.statusCode); next; next = fallbackCoding(next, res.statusCode)) {
            // an older parent: the next coding from now on
            this.log.info(`the parent does not take ${this.requestEncoding}; using ${next}`);
            this.requestEncoding = next;
            res = await post(next);
          }
          return res;
        },
        (res) => this.readAnswer(res, answerPart),
        signal,
      );
      taken = sum(taken, await core.take(parentId, answer.batch.header, answer.batch.entries, answer.batch.shapes));
      const theirMore = answer.batch.header.more;
      const next = afterAnswer({
        bodies, probing, upload, have: answer.have, passes, maxPasses: Math.max(1, parent.maxTries), aborted: signal?.aborted === true,
      });
      if ('sent' in next) return { sent: next.sent, theirMore, taken };
      this.log.info('resuming the upload', { have: answer.have, of: bodies.get('full', next.resume.enc).length });
      upload = next.resume;
    }
  }

  /** One POST of a plan; the answer's bytes are kept as they come (got keeps none of a body cut part way). */
  private async post(body: Buffer, headers: Readonly<Record<string, string>>, answerPart: AnswerPart): Promise<Response<Buffer>> {
    const req = got(`${this.base}${EXCHANGE_PATH}`, {
      ...this.gotOptions(), method: 'POST', body, headers: { ...this.http.headers, ...headers, [SHAPES_HEADER]: '1' },
    });
    void req.on('request', (r) => r.on('response', (res: IncomingMessage) => {
      if (res.statusCode !== 200) return;
      answerPart.begin(parseUploadId(res.headers[ANSWER_HEADER]), parseOffset(res.headers[OFFSET_HEADER]) ?? 0);
      res.on('data', (c: Buffer) => answerPart.data(c));
    }));
    try {
      return await req;
    } catch (e) {
      answerPart.lost();
      throw e;
    }
  }

  /** The parent's answer, whole: a continuation joined to the part held, decoded within the limits. */
  private async readAnswer(res: Response<Buffer>, answerPart: AnswerPart) {
    const body = answerPart.whole(res);
    if (body === null) throw new SpokesyncError('SPOKESYNC_E_HTTP', 'the rest of the answer does not complete the part held');
    if (res.headers[SHAPES_HEADER] === '1' && this.parentShapes !== true) await this.learnShapes();
    if (res.headers[INCARNATION_HEADER] === '1') this.parentIncarnations = true;
    const renc = parseContentEncoding(res.headers['content-encoding']);
    if (renc === null) throw new SpokesyncError('SPOKESYNC_E_HTTP', 'the parent answered in an unknown encoding');
    const max = this.o.maxInflatedBytes ?? 8 * 1024 * 1024;
    const batch = await collectBatch([decompress(body, renc, max)], { maxBytes: max, maxElements: DEFAULT_MAX_ELEMENTS });
    return { batch, have: parseOffset(res.headers[HAVE_HEADER]) ?? 0 };
  }

  /**
   * Exchanges until both sides have nothing more: our batches are acked and the
   * parent's answers are empty. Stops between rounds when `signal` aborts.
   */
  async sync(signal?: AbortSignal, maxRounds = 100_000): Promise<SyncResult> {
    const { db, stateSchema } = this.o;
    let parent = '';
    const t = { rounds: 0, sent: 0, received: 0, applied: 0, duplicates: 0, quarantined: 0, conflicts: 0 };
    try {
      parent = await this.parentId(signal);
      let done = false;
      let pending = 0;
      while (!done && t.rounds < maxRounds && !signal?.aborted) {
        const r = await this.round(parent, signal);
        t.rounds++;
        t.sent += r.sent;
        t.received += r.taken.received;
        t.applied += r.taken.applied;
        t.duplicates += r.taken.duplicates;
        t.quarantined += r.taken.quarantined;
        t.conflicts += r.taken.conflicts;
        // another round when they sent something (it needs our ack), they have more, or we do
        pending = await this.o.core.pending(this.o.routeFor(parent));
        done = r.taken.received === 0 && !r.theirMore && pending === 0;
      }
      const drained = done && pending === 0;
      await recordContact(db, stateSchema, parent, 'ok');
      this.log.info('sync', { parent, ...t, drained, pending });
      return { parent, ...t, drained };
    } catch (e) {
      const code = isSpokesyncError(e) ? e.code : 'SPOKESYNC_E_HTTP';
      if (parent) await recordContact(db, stateSchema, parent, `${code}: ${(e as Error).message}`).catch(() => undefined);
      throw e;
    }
  }
}
