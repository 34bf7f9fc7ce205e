// The admin endpoints, whichever server carries them (the exchange server on
// `listen`, or AdminServer on `admin.listen`): GET /health (and /v1/health, its
// older name) without a token; with admin.token, GET /status.json behind the
// token or a session cookie, and POST /login, POST /logout. Without admin.token
// only /health is served: every other admin path is 404. More routes (the
// status page, /metrics) are added with add().
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthFailureLimit } from '../config/types.js';
import type { Logger } from '../../apply/core/log.js';
import { AuthThrottle, RefusalLog, addressKey } from '../exchange/peer-limits.js';
import type { Health } from './health.js';
import type { StatusDoc } from './status-doc.js';
import { loginPage, statusPage } from './status-page.js';
import { SESSION_COOKIE, Sessions, bearerOf, cookieOf, tokenMatches } from './session.js';

export const HEALTH_PATHS = ['/health', '/v1/health'] as const;
export const STATUS_JSON_PATH = '/status.json';
export const STATUS_PAGE_PATH = '/status';
export const METRICS_PATH = '/metrics';
export const LOGIN_PATH = '/login';
export const LOGOUT_PATH = '/logout';
/** where a browser goes after logging in, unless the form names another path here */
export const AFTER_LOGIN = '/status';
/** largest login form read */
const MAX_FORM = 4096;

export type AdminHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface AdminRoutesOptions {
  /** admin.token; without it only /health is served */
  readonly token?: string;
  readonly log: Logger;
  readonly health: () => Promise<Health>;
  readonly status: () => Promise<StatusDoc>;
  /** wrong tokens from one address before it is refused for a while (listen.authFailures) */
  readonly authFailures: AuthFailureLimit;
  /** served over TLS: the session cookie is Secure */
  readonly secure: boolean;
  readonly now?: () => number;
}

/** Sends a short text answer. */
export function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
}

/** Sends an HTML page; it may load nothing from elsewhere. */
function html(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

export class AdminRoutes {
  readonly sessions: Sessions;
  private readonly routes = new Map<string, { handler: AdminHandler; auth: boolean }>();
  private readonly throttle: AuthThrottle;
  private readonly refusals: RefusalLog;
  private readonly log: Logger;

  constructor(private readonly o: AdminRoutesOptions) {
    this.log = o.log.child({ part: 'admin' });
    this.sessions = new Sessions(o.now);
    this.throttle = new AuthThrottle(o.authFailures, o.now);
    this.refusals = new RefusalLog(this.log, o.authFailures.window, o.now);
    for (const path of HEALTH_PATHS) {
      this.add('GET', path, (_req, res) => this.health(res), { auth: false });
      this.add('HEAD', path, (_req, res) => this.health(res), { auth: false });
    }
    this.add('GET', STATUS_JSON_PATH, async (_req, res) => {
      const body = JSON.stringify(await this.o.status(), null, 2);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
    }, { auth: true });
    this.add('GET', STATUS_PAGE_PATH, (req, res) => this.page(req, res), { auth: false, tokenOnly: true });
    this.add('GET', LOGIN_PATH, async (_req, res) => html(res, 200, loginPage()), { auth: false, tokenOnly: true });
    this.add('POST', LOGIN_PATH, (req, res) => this.login(req, res), { auth: false, tokenOnly: true });
    this.add('POST', LOGOUT_PATH, async (req, res) => {
      this.sessions.drop(cookieOf(req, SESSION_COOKIE));
      answer(res, 303, 'logged out\n', { location: LOGIN_PATH, 'set-cookie': this.sessions.cookie(null, this.o.secure) });
    }, { auth: false, tokenOnly: true });
  }

  /** Whether the token guards anything here (admin.token is set). */
  get enabled(): boolean {
    return this.o.token !== undefined;
  }

  /**
   * Adds a route. `auth`: only with the token or a session (401 otherwise);
   * `tokenOnly`: served only when admin.token is set. Auth routes are never
   * served without admin.token.
   */
  add(method: string, path: string, handler: AdminHandler, opts: { auth: boolean; tokenOnly?: boolean }): void {
    if ((opts.auth || opts.tokenOnly) && !this.enabled) return;
    this.routes.set(`${method.toUpperCase()} ${path}`, { handler, auth: opts.auth });
  }

  /** Answers the request when it is for an admin path; false when it is not. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = this.routes.get(`${req.method ?? 'GET'} ${path}`);
    if (!route) return false;
    if (route.auth) {
      const address = addressKey(req.socket.remoteAddress);
      if (this.blocked(address, res)) return true;
      const who = this.authorized(req);
      if (who !== 'yes') {
        if (who === 'wrong') this.failed(address, path);
        answer(res, 401, 'SPOKESYNC_E_AUTH: this needs the admin token (Authorization: Bearer <admin.token>) or a session from POST /login\n', {
          'www-authenticate': 'Bearer realm="spokesync-admin"',
        });
        return true;
      }
    }
    await route.handler(req, res);
    return true;
  }

  /** Whether the request carries the admin token or a live session: 'none' when it carries neither. */
  authorized(req: IncomingMessage): 'yes' | 'wrong' | 'none' {
    const token = this.o.token;
    if (token === undefined) return 'none';
    const bearer = bearerOf(req);
    if (bearer !== null) return tokenMatches(bearer, token) ? 'yes' : 'wrong';
    const session = cookieOf(req, SESSION_COOKIE);
    if (session === null) return 'none';
    return this.sessions.valid(session) ? 'yes' : 'none';
  }

  /** GET /status: the page with the token or a session; a browser without either gets the login form. */
  private async page(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const address = addressKey(req.socket.remoteAddress);
    if (this.blocked(address, res)) return;
    const who = this.authorized(req);
    if (who !== 'yes') {
      if (who === 'wrong') this.failed(address, STATUS_PAGE_PATH);
      html(res, 401, loginPage(STATUS_PAGE_PATH));
      return;
    }
    html(res, 200, statusPage(await this.o.status()));
  }

  private async health(res: ServerResponse): Promise<void> {
    const h = await this.o.health();
    answer(res, h.ok ? 200 : 503, `${h.reason}\n`);
  }

  private blocked(address: string, res: ServerResponse): boolean {
    const left = this.throttle.blockedFor(address);
    if (left <= 0) return false;
    this.refusals.refused('admin: refused, too many wrong tokens from one address', address, { retryAfterS: Math.ceil(left / 1000) });
    answer(res, 429, 'SPOKESYNC_E_HTTP: too many wrong tokens from this address; retry later\n', { 'retry-after': String(Math.ceil(left / 1000)) });
    return true;
  }

  private failed(address: string, path: string): void {
    this.refusals.refused('admin: refused a wrong token', address, { path });
    if (this.throttle.failed(address)) this.log.warn('admin: refusing an address: too many wrong tokens', { address });
  }

  /** POST /login: the form field `token`; right, a session cookie and 303 to the page (or the form's `next` path). */
  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const address = addressKey(req.socket.remoteAddress);
    if (this.blocked(address, res)) return;
    const form = await readForm(req);
    const token = form?.get('token') ?? null;
    const next = form?.get('next') ?? '';
    // only a path of this server: never another site
    const location = /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : AFTER_LOGIN;
    if (token === null || this.o.token === undefined || !tokenMatches(token, this.o.token)) {
      if (token !== null) this.failed(address, LOGIN_PATH);
      // a browser sees the form again, saying so
      html(res, 401, loginPage(location, true));
      return;
    }
    answer(res, 303, 'logged in\n', { location, 'set-cookie': this.sessions.cookie(this.sessions.create(), this.o.secure) });
  }
}

/** A small urlencoded form body, or null when it is too large or of another type. */
async function readForm(req: IncomingMessage): Promise<URLSearchParams | null> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    return null;
  }
  if (Number(req.headers['content-length'] ?? 0) > MAX_FORM) {
    req.resume();
    return null;
  }
  let size = 0;
  const parts: Buffer[] = [];
  // read to the end (the answer must not be lost to a reset), keeping only what a form may hold
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size <= MAX_FORM) parts.push(c as Buffer);
  }
  return size > MAX_FORM ? null : new URLSearchParams(Buffer.concat(parts).toString('utf8'));
}
