// The child side of the exchange: POST our batch (changes + acks) to the
// parent, take its answer, repeat until both sides are drained. got's own retry
// is off; p-retry is the one retry layer and waits the backoff (agent/backoff.ts).
// A dropped connection costs at most the batch in flight.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
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
import { bodyBytes, parentRequestOptions, pinnedTls, refusal, refusalText } from './parent-http.js';
import {
  EXCHANGE_PATH, INCARNATION_HEADER, NODE_HEADER, PEER_PATH, REPORTS_HEADER, REPORT_HEADER, SHAPES_HEADER, type ExchangeCore, type RoundRecord,
  type TakeResult,
} from './protocol.js';
import { ANSWER_HEADER, HAVE_HEADER, OFFSET_HEADER, parseOffset, parseUploadId } from './resume.js';
import { RoundBodies, afterAnswer, fallbackCoding, planPost, type Upload } from './round-plan.js';
import { collectBatch } from './wire.js';
import { DEFAULT_MAX_ELEMENTS } from '../../apply/codec/decode-limits.js';

/** meta key: the parent reads table shapes */
const SHAPES_KEY = 'parent.shapes';
/** meta key: the parent keeps status reports */
const REPORTS_KEY = 'parent.reports';
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
  /** the status report our last batch of an exchange carries, and where each round is recorded (agent/admin/reporter.ts) */
  readonly observer?: ClientObserver;
}

/** What the client asks of the node's status reporting. */
export interface ClientObserver {
  /**
   * The report to carry, `inFlight` of our pending entries being in this round's batch, as a maker of the
   * header's value stamped with the time of each attempt (its parent reads our clock from it); null: none.
   */
  report(inFlight: number): Promise<((now: Date) => string) | null>;
  /** a round with the parent ended, well or not */
  round(r: RoundRecord): Promise<void>;
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
  /** this round carried our status report */
  readonly reported: boolean;
}

/** Bytes a round moved on the wire, bodies only, every attempt counted. */
interface Traffic {
  up: number;
  down: number;
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
  private readonly http: Omit<ReturnType<typeof parentRequestOptions>, 'headers'> & { readonly headers: Readonly<Record<string, string>> };
  private readonly base: string;
  /** the coding of our requests: the configured one; for br, the best of spokesync's own the parent takes */
  private requestEncoding: Encoding;
  /** the parent reads table shapes in batches (null: not known yet) */
  private parentShapes: boolean | null = null;
  /** the parent said it reads incarnations (recovery.ts); once it sent its own, the cursor knows it too */
  private parentIncarnations = false;
  /** the parent keeps status reports (null: not known yet) */
  private parentReports: boolean | null = null;

  constructor(private readonly o: ExchangeClientOptions) {
    this.log = o.log.child({ part: 'client' });
    this.backoff = { ...EXCHANGE_BACKOFF, firstMs: o.backoffBaseMs ?? EXCHANGE_BACKOFF.firstMs, maxMs: o.backoffMaxMs ?? EXCHANGE_BACKOFF.maxMs };
    const http = parentRequestOptions(o.parent, pinnedTls(o.parent.ca));
    this.http = { ...http, headers: { ...http.headers, [NODE_HEADER]: o.node } };
    this.base = o.parent.url.replace(/\/+$/, '');
    // brotli children try spokesync-vbr first and fall back, coding by coding, when the parent refuses one (415)
    this.requestEncoding = o.parent.compression === 'br' ? BROTLI_CODINGS[0]! : encodingFor(o.parent.compression);
  }

  /** One HTTP request, retried by p-retry; `parse` runs inside the retry (a garbled answer is fetched again). */
  private async request<T>(
    what: string,
    url: string,
    send: (attempt: number) => Promise<Response<Uint8Array>>,
    parse: (res: Response<Uint8Array>) => Promise<T>,
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
          let res: Response<Uint8Array>;
          try {
            res = await send(attempt);
          } catch (e) {
            throw new SpokesyncError('SPOKESYNC_E_HTTP', `${what}: ${(e as { code?: string }).code ?? (e as Error).message} ${url}`, { cause: e });
          }
          if (res.statusCode !== 200) {
            const err = refusal(res.statusCode, refusalText(res.body), { request: url });
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
   * Whether our batches may carry table shapes, and our last batch a status
   * report: known from the parent's answers (remembered), else asked once per
   * process before the first batch goes, so that no batch reaches a parent
   * that reads shapes without them.
   */
  private async parentReads(signal?: AbortSignal): Promise<{ shapes: boolean; reports: boolean }> {
    const { db, stateSchema } = this.o;
    if (this.parentShapes === null && (await getMeta(db, stateSchema, SHAPES_KEY)) === '1') this.parentShapes = true;
    // a node that sends no reports does not ask
    if (!this.o.observer) this.parentReports = false;
    else if (this.parentReports === null && (await getMeta(db, stateSchema, REPORTS_KEY)) === '1') this.parentReports = true;
    if (this.parentShapes === null || this.parentReports === null) {
      const url = `${this.base}${PEER_PATH}`;
      const headers = await this.request('peer', url, () => got(url, { ...this.gotOptions(), method: 'GET' }), async (res) => res.headers, signal);
      await this.learn(headers);
    }
    return { shapes: this.parentShapes === true, reports: this.parentReports === true };
  }

  /** What an answer of GET /v1/peer says the parent reads; a yes is remembered. */
  private async learn(headers: IncomingHttpHeaders): Promise<void> {
    if (headers[SHAPES_HEADER] === '1') {
      if (this.parentShapes !== true) await this.learnShapes();
    } else this.parentShapes = false;
    if (headers[INCARNATION_HEADER] === '1') this.parentIncarnations = true;
    if (headers[REPORTS_HEADER] === '1') {
      if (this.parentReports !== true) await setMeta(this.o.db, this.o.stateSchema, REPORTS_KEY, '1');
      this.parentReports = true;
    } else this.parentReports = false;
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
    const url = `${this.base}${PEER_PATH}`;
    const who = await this.request(
      'peer',
      url,
      () => got(url, { ...this.gotOptions(), method: 'GET' }),
      async (res) => ({ body: JSON.parse(bodyBytes(res.body).toString('utf8')) as { node?: unknown; child?: unknown }, headers: res.headers }),
      signal,
    ).then(async (r) => {
      // the same answer says what the parent reads: no request more for that
      await this.learn(r.headers);
      return r.body;
    });
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
  async round(parentId: string, signal?: AbortSignal, traffic: Traffic = { up: 0, down: 0 }, report = true): Promise<RoundResult> {
    const { parent, core } = this.o;
    const reads = await this.parentReads(signal);
    const out = await core.next(this.o.routeFor(parentId), parent.batch, reads.shapes, this.parentIncarnations);
    const bodies = await RoundBodies.of(out);
    // our last batch of an exchange carries the status report (every attempt of its round)
    const value = report && reads.reports && !out.header.more ? await this.reportValue(out.entries.length) : null;
    const extra = (): Record<string, string> => {
      try {
        return value === null ? {} : { [REPORT_HEADER]: value(new Date()) };
      } catch (e) {
        this.log.warn('the status report could not be made; the exchange goes on without it', { error: e });
        return {};
      }
    };
    const answerPart = new AnswerPart();
    let upload: Upload | null = null;
    let taken: TakeResult = { applied: 0, duplicates: 0, quarantined: 0, conflicts: 0, received: 0, replayed: 0 };
    const url = `${this.base}${EXCHANGE_PATH}`;
    for (let passes = 1; ; passes++) {
      let probing = false;
      const answer = await this.request(
        'exchange',
        url,
        async (attempt) => {
          probing = attempt > 1;
          const post = (enc: Encoding) => {
            const plan = planPost({ bodies, enc, probing, upload, caps: parent.batch, answerHave: answerPart.header() });
            upload = plan.upload;
            return this.post(plan.body, { ...plan.headers, ...extra() }, answerPart, traffic);
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
      if ('sent' in next) return { sent: next.sent, theirMore, taken, reported: value !== null };
      this.log.info('resuming the upload', { have: answer.have, of: bodies.get('full', next.resume.enc).length });
      upload = next.resume;
    }
  }

  /** The status report to carry, or null; a report that cannot be made never stops the exchange. */
  private async reportValue(inFlight: number): Promise<((now: Date) => string) | null> {
    try {
      return (await this.o.observer?.report(inFlight)) ?? null;
    } catch (e) {
      this.log.warn('the status report could not be made; the exchange goes on without it', { error: e });
      return null;
    }
  }

  /** One POST of a plan; the answer's bytes are kept as they come (got keeps none of a body cut part way). */
  private async post(body: Buffer, headers: Readonly<Record<string, string>>, answerPart: AnswerPart, traffic: Traffic): Promise<Response<Uint8Array>> {
    traffic.up += body.length;
    const req = got(`${this.base}${EXCHANGE_PATH}`, {
      ...this.gotOptions(), method: 'POST', body, headers: { ...this.http.headers, ...headers, [SHAPES_HEADER]: '1' },
    });
    void req.on('request', (r) => r.on('response', (res: IncomingMessage) => {
      res.on('data', (c: Buffer) => { traffic.down += c.length; });
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
  private async readAnswer(res: Response<Uint8Array>, answerPart: AnswerPart) {
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
    let round: { started: Date; traffic: Traffic } | null = null;
    try {
      parent = await this.parentId(signal);
      let done = false;
      let pending = 0;
      let reported = false;
      while (!done && t.rounds < maxRounds && !signal?.aborted) {
        round = { started: new Date(), traffic: { up: 0, down: 0 } };
        const r = await this.round(parent, signal, round.traffic, !reported);
        await this.recorded(parent, round, r.sent, r.taken.received, 'ok');
        round = null;
        reported ||= r.reported;
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
      const result = `${code}: ${(e as Error).message}`;
      parent ||= (await getMeta(db, stateSchema, PARENT_ID_KEY).catch(() => null)) ?? '';
      if (parent) {
        await recordContact(db, stateSchema, parent, result).catch(() => undefined);
        await this.recorded(parent, round ?? { started: new Date(), traffic: { up: 0, down: 0 } }, 0, 0, result);
      }
      throw e;
    }
  }

  /** Hands a round to the observer; its failure is logged, never the exchange's. */
  private async recorded(parent: string, round: { started: Date; traffic: Traffic }, setsUp: number, setsDown: number, result: string): Promise<void> {
    if (!this.o.observer) return;
    const r: RoundRecord = {
      peer: parent, role: 'parent', startedAt: round.started, durationMs: Date.now() - round.started.getTime(),
      bytesUp: round.traffic.up, bytesDown: round.traffic.down, setsUp, setsDown, result,
    };
    await this.o.observer.round(r).catch((e: unknown) => this.log.warn('the exchange round could not be recorded', { error: e }));
  }
}
