// The daemon's start: a database that is not up yet (after a power cut MariaDB
// often comes up after spokesync) is waited for with backoff, never a reason to
// exit. Errors that waiting cannot fix (a refused login, a failed preflight, a
// newer state) still end the start, and say that the daemon did not wait for them.
import { SpokesyncError, isSpokesyncError } from '../apply/core/errors.js';
import type { Logger } from '../apply/core/log.js';
import { START_BACKOFF, backoffDelay, realSleep, type Backoff } from './backoff.js';

/** Error codes of a server that is not listening yet, went away, is stopping or is full: it may answer later. */
const NOT_UP = new Set([
  // the network: nothing listens yet, the server went away, no route or name yet (early at boot)
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EPIPE',
  'EAI_AGAIN', 'ENOTFOUND',
  // mysql2: the connection ended under a query (or before the next one), or the handshake went unanswered
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR', 'PROTOCOL_SEQUENCE_TIMEOUT',
  // the server: shutting down, dropped the session, no connection free
  'ER_SERVER_SHUTDOWN', 'ER_CONNECTION_KILLED', 'ER_CON_COUNT_ERROR', 'ER_TOO_MANY_USER_CONNECTIONS',
]);

/** Whether a driver's or the system's error code says the server is not up (yet). Pure. */
export function isNotUpCode(code: string): boolean {
  return NOT_UP.has(code);
}

/** The first error code along the cause chain (a driver's or the system's), if any. Pure. */
export function causeCode(e: unknown): string | undefined {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 8; c = c.cause, depth++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('SPOKESYNC_E_')) return code;
  }
  return undefined;
}

/**
 * Whether an error at start means the database is not up (yet). spokesync's own
 * errors other than a failed connection (a preflight, a newer state, the node
 * lock held) are answers from a server that is up. Pure.
 */
export function notUpYet(e: unknown): boolean {
  if (isSpokesyncError(e) && e.code !== 'SPOKESYNC_E_DB_CONNECT' && e.code !== 'SPOKESYNC_E_CAPTURE') return false;
  const code = causeCode(e);
  return code !== undefined && isNotUpCode(code);
}

export interface StartWait<T> {
  readonly log: Logger;
  /** stops the wait (SIGTERM): rejects with its reason, at once, even while a try is under way */
  readonly signal: AbortSignal;
  /** where the database is, for the log */
  readonly address: string;
  /** releases what a try that ended after the signal opened */
  readonly dispose: (started: T) => Promise<void>;
  readonly backoff?: Backoff;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Runs `start` until it succeeds, trying again after each error of a database not up yet; any other error ends it. */
export async function startWhenUp<T>(start: () => Promise<T>, o: StartWait<T>): Promise<T> {
  const backoff = o.backoff ?? START_BACKOFF;
  const sleep = o.sleep ?? realSleep;
  const began = Date.now();
  for (let tries = 1; ; tries++) {
    let out: T;
    try {
      out = await untilAborted(start(), o.signal, o.dispose);
    } catch (e) {
      if (o.signal.aborted) throw o.signal.reason;
      if (!notUpYet(e)) throw notWaitedFor(e);
      const ms = backoffDelay(backoff, tries);
      o.log.warn('the database is not up yet: waiting for it', {
        address: o.address, tries, nextTryInSeconds: ms / 1000, code: causeCode(e), error: (e as Error).message,
      });
      await sleep(ms, o.signal);
      continue;
    }
    if (tries > 1) o.log.info('the database is up', { address: o.address, tries, waitedSeconds: Math.round((Date.now() - began) / 1000) });
    return out;
  }
}

/** `p`, or the signal's reason as soon as it is aborted (what `p` still opens is then disposed of). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal, dispose: (t: T) => Promise<void>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      void p.then((t) => dispose(t), () => undefined).catch(() => undefined);
      reject(signal.reason as Error);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (t) => { signal.removeEventListener('abort', onAbort); resolve(t); },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e as Error); },
    );
  });
}

/** A refused connection (a login refused, a host not allowed) says that the daemon did not wait for it, and why. */
function notWaitedFor(e: unknown): unknown {
  if (!isSpokesyncError(e, 'SPOKESYNC_E_DB_CONNECT')) return e;
  return new SpokesyncError('SPOKESYNC_E_DB_CONNECT',
    `${e.message}: the server answered and refused, which waiting does not change (the daemon waits only for a server that is not up yet)`,
    { cause: e, fix: e.fix });
}
