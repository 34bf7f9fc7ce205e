// The child side of the exchange: POST our batch (changes + acks) to the
// parent, take its answer, repeat until both sides are drained. got's own retry
// is off; p-retry is the one retry layer, with the delay from a pure function
// and an injected sleep. A dropped connection costs at most the batch in flight.
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import got, { type Response } from 'got';
import pRetry, { AbortError } from 'p-retry';
import type { ParentConfig } from '../config/types.js';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError, catalogue, isSpokesyncError, type ErrorCode } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { PARENT_ID_KEY, getMeta, recordContact, setMeta } from '../routing/cursors.js';
import type { Route } from '../routing/filters.js';
import { BROTLI_CODINGS, compress, decompress, encodingFor, parseContentEncoding, type Encoding } from './compression.js';
import {
  CAP_BYTES_HEADER, CAP_RECORDS_HEADER, DEFAULT_CAPS, EXCHANGE_PATH, PEER_PATH, type ExchangeCore, type TakeResult,
} from './protocol.js';
import {
  ANSWER_HAVE_HEADER, ANSWER_HEADER, HAVE_HEADER, OFFSET_HEADER, RESUMABLE_BYTES, RESUME_HEADER, UPLOAD_HEADER, parseOffset,
  parseUploadId, uploadId,
} from './resume.js';
import { batchBuffer, collectBatch } from './wire.js';
import { DEFAULT_MAX_ELEMENTS } from '../../apply/codec/decode-limits.js';

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const realSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(signal?.reason as Error); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Backoff before attempt `attempt + 1`: exponential from `base`, capped, with jitter in [50%, 100%]. Pure. */
export function backoffDelay(attempt: number, random: number, base = 1000, max = 60_000): number {
  const full = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(full * (0.5 + 0.5 * random));
}

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
  readonly sleep?: Sleep;
  readonly random?: () => number;
  /** largest answer after inflation (default 8 MiB: a parent answers with at most 1 MiB) */
  readonly maxInflatedBytes?: number;
  /** first backoff delay in ms (default 1000) */
  readonly backoffBaseMs?: number;
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

/** TLS options: trust the pinned PEM; a certificate identical to a pinned one is accepted whatever its name. */
function tlsOptions(caFile: string | undefined): { certificateAuthority?: string; checkServerIdentity?: typeof checkServerIdentity } {
  if (!caFile) return {};
  const pem = readFileSync(caFile, 'utf8');
  const pinned = new Set(
    (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [])
      .map((c) => new X509Certificate(c).fingerprint256),
  );
  return {
    certificateAuthority: pem,
    checkServerIdentity: (host: string, cert: PeerCertificate) =>
      pinned.has(cert.fingerprint256) ? undefined : checkServerIdentity(host, cert),
  };
}

/** The error an HTTP answer stands for; its body is `CODE: message`. */
function httpError(res: Response<Buffer>): SpokesyncError {
  const text = res.body.toString('utf8', 0, Math.min(res.body.length, 400)).trim();
  const m = /^(SPOKESYNC_E_[A-Z_]+): (.*)$/s.exec(text);
  const code = m && m[1] && m[1] in catalogue ? (m[1] as ErrorCode) : 'SPOKESYNC_E_HTTP';
  const message = `the parent answered ${res.statusCode}${m ? `: ${m[2] ?? ''}` : ''}`;
  return new SpokesyncError(code, message);
}

interface Upload {
  readonly enc: Encoding;
  readonly id: string;
  /** bytes the parent holds */
  readonly held: number;
}

/**
 * The parent's answer as it arrives, kept when the connection is lost part way
 * so that the next probe asks for the rest only (resume.ts).
 */
class AnswerPart {
  /** the named answer held in part, and its bytes so far */
  id: string | null = null;
  private pieces: Buffer[] = [];
  length = 0;
  /** the answer the response in flight carries, from which byte, and what came of it */
  private arriving: { id: string | null; from: number; pieces: Buffer[]; length: number } | null = null;

  /** A response began (status 200): named or not, from `from` (a continuation of the answer held) or whole. */
  begin(id: string | null, from: number): void {
    this.arriving = { id, from, pieces: [], length: 0 };
  }

  data(c: Buffer): void {
    if (!this.arriving) return;
    this.arriving.pieces.push(c);
    this.arriving.length += c.length;
  }

  /** The response failed: keep what came of a named answer (joined to the part held when it continued it). */
  lost(): void {
    const a = this.arriving;
    this.arriving = null;
    if (!a || a.id === null || a.length === 0) return;
    if (a.from === 0) {
      this.id = a.id;
      this.pieces = a.pieces;
      this.length = a.length;
    } else if (a.id === this.id && a.from === this.length) {
      this.pieces.push(...a.pieces);
      this.length += a.length;
    }
  }

  /** ANSWER_HAVE_HEADER for the next probe, or nothing. */
  header(): Record<string, string> {
    return this.id !== null && this.length > 0 ? { [ANSWER_HAVE_HEADER]: `${this.id} ${this.length}` } : {};
  }

  /**
   * The whole answer body of a response that arrived in full: a continuation is
   * joined to the part held and must match its name; null when it does not fit
   * (the part is forgotten and the exchange is tried again).
   */
  whole(res: Response<Buffer>): Buffer | null {
    this.arriving = null;
    const id = parseUploadId(res.headers[ANSWER_HEADER]);
    const from = parseOffset(res.headers[OFFSET_HEADER]) ?? 0;
    if (from === 0) {
      this.forget();
      return res.body;
    }
    const ok = id !== null && id === this.id && from === this.length;
    const body = ok ? Buffer.concat([...this.pieces, res.body]) : null;
    this.forget();
    return body !== null && uploadId(body) === id ? body : null;
  }

  forget(): void {
    this.id = null;
    this.pieces = [];
    this.length = 0;
  }
}

function sum(a: TakeResult, b: TakeResult): TakeResult {
  return {
    applied: a.applied + b.applied, duplicates: a.duplicates + b.duplicates, quarantined: a.quarantined + b.quarantined,
    conflicts: a.conflicts + b.conflicts, received: a.received + b.received, replayed: a.replayed + b.replayed,
  };
}

export class ExchangeClient {
  private readonly log: Logger;
  private readonly sleep: Sleep;
  private readonly random: () => number;
  private readonly tls: ReturnType<typeof tlsOptions>;
  private readonly base: string;
  /** the coding of our requests: the configured one; for br, the best of spokesync's own the parent takes */
  private requestEncoding: Encoding;

  constructor(private readonly o: ExchangeClientOptions) {
    this.log = o.log.child({ part: 'client' });
    this.sleep = o.sleep ?? realSleep;
    this.random = o.random ?? Math.random;
    this.tls = tlsOptions(o.parent.ca);
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
    const tries = Math.max(1, this.o.parent.maxTries);
    return pRetry(
      async (attempt) => {
        let res: Response<Buffer>;
        try {
          res = await send(attempt);
        } catch (e) {
          throw new SpokesyncError('SPOKESYNC_E_HTTP', `${what}: ${(e as { code?: string }).code ?? (e as Error).message}`, { cause: e });
        }
        if (res.statusCode !== 200) {
          const err = httpError(res);
          throw PERMANENT.has(res.statusCode) || REFUSED.has(err.code) ? new AbortError(err) : err;
        }
        try {
          return await parse(res);
        } catch (e) {
          throw isSpokesyncError(e) ? e : new SpokesyncError('SPOKESYNC_E_HTTP', `${what}: bad answer`, { cause: e });
        }
      },
      {
        retries: tries - 1,
        minTimeout: 0,
        maxTimeout: 0,
        factor: 1,
        // the signal stops further tries, never a request in flight: its answer is still taken
        shouldRetry: async ({ error, attemptNumber }) => {
          if (signal?.aborted) return false;
          const delay = backoffDelay(attemptNumber, this.random(), this.o.backoffBaseMs);
          this.log.warn('exchange attempt failed, retrying', {
            what, attempt: attemptNumber, delayMs: delay, code: (error as { code?: string }).code, error: error.message,
          });
          await this.sleep(delay, signal);
          return true;
        },
      },
    );
  }

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.o.parent.token}`, 'user-agent': 'spokesync' };
  }

  private gotOptions() {
    return {
      retry: { limit: 0 },
      timeout: { request: this.o.parent.timeout },
      throwHttpErrors: false,
      decompress: false,
      followRedirect: false,
      responseType: 'buffer' as const,
      https: this.tls,
    };
  }

  /** The parent's node id: remembered from the first authenticated contact. */
  async parentId(signal?: AbortSignal): Promise<string> {
    const { db, stateSchema } = this.o;
    const known = await getMeta(db, stateSchema, PARENT_ID_KEY);
    if (known) return known;
    const who = await this.request(
      'peer',
      () => got(`${this.base}${PEER_PATH}`, { ...this.gotOptions(), method: 'GET', headers: this.headers() }),
      async (res) => JSON.parse(res.body.toString('utf8')) as { node?: unknown; child?: unknown },
      signal,
    );
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
   * part of it may have arrived: later attempts send a probe (acks, no entries)
   * instead of the whole batch again. Its answer says what the parent took, and
   * how much of a cut upload it holds (resume.ts); then only the rest goes up.
   * A batch the parent holds none of is sent whole in the next round.
   */
  async round(parentId: string, signal?: AbortSignal): Promise<RoundResult> {
    const { parent, core } = this.o;
    const out = await core.next(this.o.routeFor(parentId), parent.batch);
    const full = await batchBuffer(out.header, out.entries);
    const probe = out.entries.length > 0 ? await batchBuffer({ ...out.header, more: true }, []) : full;
    const bodies = new Map<string, Buffer>();
    const bodyFor = (which: 'full' | 'probe', enc: Encoding): Buffer => {
      const key = `${which}:${enc}`;
      let b = bodies.get(key);
      if (!b) bodies.set(key, (b = compress(which === 'probe' ? probe : full, enc)));
      return b;
    };
    const max = this.o.maxInflatedBytes ?? 8 * 1024 * 1024;
    /** the upload in progress: its coding, name, and the bytes the parent holds */
    let upload = null as Upload | null;
    const answerPart = new AnswerPart();
    let taken: TakeResult = { applied: 0, duplicates: 0, quarantined: 0, conflicts: 0, received: 0, replayed: 0 };
    const tries = Math.max(1, parent.maxTries);
    for (let pass = 0; ; pass++) {
      let probing = false;
      const answer = await this.request(
        'exchange',
        async (attempt) => {
          probing = attempt > 1;
          const post = (enc: Encoding) => {
            const body = bodyFor(probing ? 'probe' : 'full', enc);
            const named = !probing && body.length >= RESUMABLE_BYTES;
            if (named && upload?.enc !== enc) upload = { enc, id: uploadId(body), held: 0 };
            const offset = named && upload ? upload.held : 0;
            const req = got(`${this.base}${EXCHANGE_PATH}`, {
              ...this.gotOptions(),
              method: 'POST',
              body: offset > 0 ? body.subarray(offset) : body,
              headers: {
                ...this.headers(),
                // no Accept-Encoding: the answer comes in the request's coding (headers cost seconds at 1 kbps)
                ...(this.requestEncoding === 'identity' ? { 'accept-encoding': 'identity' } : {}),
                ...(enc === 'identity' ? {} : { 'content-encoding': enc }),
                // the parent answers within the same caps (defaults are not sent: every byte counts on 1 kbps)
                ...(parent.batch.records === DEFAULT_CAPS.records ? {} : { [CAP_RECORDS_HEADER]: String(parent.batch.records) }),
                ...(parent.batch.bytes === DEFAULT_CAPS.bytes ? {} : { [CAP_BYTES_HEADER]: String(parent.batch.bytes) }),
                ...(named && upload ? { [UPLOAD_HEADER]: upload.id } : {}),
                ...(offset > 0 ? { [OFFSET_HEADER]: String(offset) } : {}),
                ...(probing && upload ? { [RESUME_HEADER]: upload.id } : {}),
                ...(probing ? answerPart.header() : {}),
              },
            });
            // the answer's bytes as they come (got keeps none of a body cut part way)
            void req.on('request', (r) => r.on('response', (res: IncomingMessage) => {
              if (res.statusCode !== 200) return;
              answerPart.begin(parseUploadId(res.headers[ANSWER_HEADER]), parseOffset(res.headers[OFFSET_HEADER]) ?? 0);
              res.on('data', (c: Buffer) => answerPart.data(c));
            }));
            return req.catch((e: unknown) => {
              answerPart.lost();
              throw e;
            });
          };
          let res = await post(this.requestEncoding);
          for (;;) {
            const next = BROTLI_CODINGS[BROTLI_CODINGS.indexOf(this.requestEncoding) + 1];
            if (res.statusCode !== 415 || !BROTLI_CODINGS.includes(this.requestEncoding) || next === undefined) return res;
            // an older parent: the next coding from now on
            this.log.info(`the parent does not take ${this.requestEncoding}; using ${next}`);
            this.requestEncoding = next;
            res = await post(next);
          }
        },
        async (res) => {
          const body = answerPart.whole(res);
          if (body === null) throw new SpokesyncError('SPOKESYNC_E_HTTP', 'the rest of the answer does not complete the part held');
          const renc = parseContentEncoding(res.headers['content-encoding']);
          if (renc === null) throw new SpokesyncError('SPOKESYNC_E_HTTP', 'the parent answered in an unknown encoding');
          const batch = collectBatch([decompress(body, renc, max)], { maxBytes: max, maxElements: DEFAULT_MAX_ELEMENTS });
          return { batch: await batch, have: parseOffset(res.headers[HAVE_HEADER]) ?? 0 };
        },
        signal,
      );
      const t = await core.take(parentId, answer.batch.header, answer.batch.entries);
      taken = sum(taken, t);
      const more = answer.batch.header.more;
      if (!probing) return { sent: out.entries.length, theirMore: more, taken };
      // the probe's answer: resume the upload when the parent holds part of it
      const u = upload as Upload | null;
      const size = u ? bodyFor('full', u.enc).length : 0;
      if (!u || answer.have <= 0 || answer.have >= size || pass + 1 >= tries || signal?.aborted) {
        return { sent: 0, theirMore: more, taken };
      }
      this.log.info('resuming the upload', { have: answer.have, of: size });
      upload = { ...u, held: answer.have };
    }
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
