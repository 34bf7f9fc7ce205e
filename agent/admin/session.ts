// Who may read the admin endpoints: the bearer token (admin.token), compared
// in constant time, or a session cookie a browser got from POST /login. A
// session is an opaque random value (never the token), kept in memory only
// (a restart logs browsers out), for 12 hours, at most MAX_SESSIONS at once.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const SESSION_COOKIE = 'spokesync_session';
const SESSION_MS = 12 * 3_600_000;
const MAX_SESSIONS = 1000;

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Whether `presented` is the token, in time that does not depend on where they differ. */
export function tokenMatches(presented: string, token: string): boolean {
  return timingSafeEqual(sha256(presented), sha256(token));
}

/** The bearer token of a request, if it has one. */
export function bearerOf(req: IncomingMessage): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m?.[1] ?? null;
}

/** A cookie's value from the Cookie header. */
export function cookieOf(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}

export class Sessions {
  /** sha256 of the session value → when it ends */
  private readonly live = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now, private readonly ttlMs = SESSION_MS) {}

  /** A new session: its cookie value. */
  create(): string {
    const value = randomBytes(32).toString('base64url');
    const t = this.now();
    for (const [k, until] of this.live) if (until <= t) this.live.delete(k);
    // the oldest go first when too many are open
    while (this.live.size >= MAX_SESSIONS) this.live.delete(this.live.keys().next().value as string);
    this.live.set(sha256(value).toString('hex'), t + this.ttlMs);
    return value;
  }

  valid(value: string | null): boolean {
    if (value === null || !/^[A-Za-z0-9_-]{43}$/.test(value)) return false;
    const key = sha256(value).toString('hex');
    const until = this.live.get(key);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.live.delete(key);
    return false;
  }

  drop(value: string | null): void {
    if (value !== null) this.live.delete(sha256(value).toString('hex'));
  }

  /** The Set-Cookie value of a session (Secure when served over TLS); null clears it. */
  cookie(value: string | null, secure: boolean): string {
    const attrs = `Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
    return value === null ? `${SESSION_COOKIE}=; Max-Age=0; ${attrs}` : `${SESSION_COOKIE}=${value}; Max-Age=${Math.floor(this.ttlMs / 1000)}; ${attrs}`;
  }
}
