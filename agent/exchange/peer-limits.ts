// What one remote address may cost the parent's exchange server: connections at
// once, time to send its headers, silence inside a body, and wrong tokens. Each
// refusal is cheap (no token checked, nothing read) and logged once per window.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import type { AuthFailureLimit, ListenConfig } from '../config/types.js';
import { specOf } from '../config/reference.js';
import { parseDuration } from '../../apply/core/units.js';
import type { Logger } from '../../apply/core/log.js';

export interface ListenLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly headersTimeout: number;
  readonly handshakeTimeout: number;
  readonly bodyTimeout: number;
  readonly requestTimeout: number;
  readonly authFailures: AuthFailureLimit;
}

/** A default of reference.ts, so that the loader and a server built without it agree. */
function defaultOf(key: string): number {
  const d = specOf(key)?.default;
  const n = typeof d === 'number' ? d : typeof d === 'string' ? parseDuration(d) : undefined;
  if (n === undefined) throw new Error(`config key ${key} has no numeric default`);
  return n;
}

export function listenLimits(l: ListenConfig): ListenLimits {
  return {
    maxConnections: l.maxConnections ?? defaultOf('listen.maxConnections'),
    maxConnectionsPerAddress: l.maxConnectionsPerAddress ?? defaultOf('listen.maxConnectionsPerAddress'),
    headersTimeout: l.headersTimeout ?? defaultOf('listen.headersTimeout'),
    handshakeTimeout: l.tls?.handshakeTimeout ?? defaultOf('listen.tls.handshakeTimeout'),
    bodyTimeout: l.bodyTimeout ?? defaultOf('listen.bodyTimeout'),
    requestTimeout: l.requestTimeout ?? defaultOf('listen.requestTimeout'),
    authFailures: l.authFailures ?? {
      max: defaultOf('listen.authFailures.max'),
      window: defaultOf('listen.authFailures.window'),
      block: defaultOf('listen.authFailures.block'),
    },
  };
}

/**
 * The address a limit counts against: IPv4 as is (also when IPv4-mapped), IPv6 by
 * its /64, since one host may take any address of its /64. Pure.
 */
export function addressKey(remote: string | undefined): string {
  if (!remote) return 'unknown';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  if (v4?.[1]) return v4[1];
  if (isIPv4(remote)) return remote;
  const bare = remote.split('%')[0] ?? remote;
  if (!isIPv6(bare)) return remote;
  const groupsOf = (s: string): string[] => (s === '' ? [] : s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])));
  const [head = '', tail] = bare.split('::');
  const h = groupsOf(head);
  const tl = tail === undefined ? [] : groupsOf(tail);
  const groups = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - tl.length)).fill('0'), ...tl];
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

/** Most keys any table here holds: past it, the oldest entries go (an attacker with many addresses cannot grow memory). */
const MAX_TRACKED = 10_000;

function trim<V>(m: Map<string, V>): void {
  for (const k of m.keys()) {
    if (m.size <= MAX_TRACKED) return;
    m.delete(k);
  }
}

/** Logs the first refusal of a kind for an address, then at most one line per window with the count since. */
export class RefusalLog {
  private readonly seen = new Map<string, { at: number; since: number }>();
  constructor(
    private readonly log: Logger,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Returns whether this refusal was logged (the first of its kind and address in the window). */
  refused(msg: string, address: string, fields: Record<string, unknown> = {}): boolean {
    const key = `${msg}\0${address}`;
    const t = this.now();
    const s = this.seen.get(key);
    if (s && t - s.at < this.windowMs) {
      s.since++;
      return false;
    }
    this.seen.delete(key);
    this.seen.set(key, { at: t, since: 0 });
    trim(this.seen);
    this.log.warn(msg, { address, ...fields, ...(s ? { refusedSinceLastLine: s.since + 1 } : {}) });
    return true;
  }
}

/**
 * Counts connections per address on a server and closes, before any byte is read
 * or any TLS handshake, one that would pass the address's limit.
 */
export class ConnectionLimiter {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly perAddress: number,
    private readonly refusals: RefusalLog,
  ) {}

  /** Runs before the server's own listener: a refused socket never reaches HTTP or TLS. */
  attach(server: Server): void {
    server.prependListener('connection', (socket: Socket) => this.admit(socket));
    // past maxConnections node closes the connection itself, and says so here
    server.on('drop', (d?: { remoteAddress?: string }) => {
      this.refusals.refused('refused: listen.maxConnections reached', 'any', { last: addressKey(d?.remoteAddress), limit: server.maxConnections });
    });
  }

  /** Connections now open from that address. */
  count(address: string): number {
    return this.open.get(address) ?? 0;
  }

  private admit(socket: Socket): void {
    const key = addressKey(socket.remoteAddress);
    const n = this.open.get(key) ?? 0;
    if (n >= this.perAddress || socket.destroyed) {
      this.refusals.refused('refused: too many connections from one address', key, { limit: this.perAddress });
      socket.destroy();
      return;
    }
    this.open.set(key, n + 1);
    socket.once('close', () => {
      const left = (this.open.get(key) ?? 1) - 1;
      if (left > 0) this.open.set(key, left);
      else this.open.delete(key);
    });
  }
}

/**
 * Wrong tokens per address: after `max` within `window` the address is refused
 * for `block` (its requests get 429 without their token being looked at).
 */
export class AuthThrottle {
  private readonly seen = new Map<string, { start: number; failures: number; until: number }>();

  constructor(
    private readonly limit: AuthFailureLimit,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds the address is still refused for; 0 when it is not. */
  blockedFor(address: string): number {
    const s = this.seen.get(address);
    if (!s) return 0;
    const left = s.until - this.now();
    return left > 0 ? left : 0;
  }

  /** Counts a wrong token; true when it starts a block. */
  failed(address: string): boolean {
    const t = this.now();
    let s = this.seen.get(address);
    if (!s || t - s.start >= this.limit.window || (s.until > 0 && s.until <= t)) {
      this.seen.delete(address);
      s = { start: t, failures: 0, until: 0 };
      this.seen.set(address, s);
      trim(this.seen);
    }
    s.failures++;
    if (s.failures < this.limit.max || s.until > t) return false;
    s.until = t + this.limit.block;
    return true;
  }
}

/**
 * Closes a connection whose first request has not sent all its headers within
 * `ms` of connecting (of the end of the handshake, for TLS), with the 408 node
 * itself sends; node's headersTimeout, which starts at a request's first byte, times later ones.
 */
export function headersDeadline(server: Server, ms: number, tls: boolean): void {
  const timers = new WeakMap<Socket, NodeJS.Timeout>();
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    if (socket.destroyed) return;
    const timer = setTimeout(() => {
      if (socket.writable) socket.write('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
      socket.destroy();
    }, ms);
    timers.set(socket, timer);
    socket.once('close', () => clearTimeout(timer));
  });
  server.on('request', (req: IncomingMessage) => {
    clearTimeout(timers.get(req.socket));
    timers.delete(req.socket);
  });
}

/**
 * Closes the connection of a request whose body sends nothing for `bodyTimeout`
 * (the socket's idle timer, which every byte parsed restarts); once the body
 * has arrived the server's own idle timeout applies again.
 */
export function watchBody(req: IncomingMessage, res: ServerResponse, bodyTimeout: number, idleTimeout: number): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (req.complete || !hasBody) return;
  const socket = req.socket;
  socket.setTimeout(bodyTimeout);
  req.once('end', () => {
    if (!res.writableFinished && !socket.destroyed) socket.setTimeout(idleTimeout);
  });
}
