// A user-space TCP proxy on loopback for tests and benchmarks: it models a bad
// link between a child and its parent. Bandwidth is shared by all connections in
// each direction (like one VSAT or GPRS link), latency is added per direction,
// connections can be cut after a number of bytes (mid-request, mid-response) or
// dropped at random, or the link stalled (open but silent). Memory is bounded: a socket is paused while its queue is full.
import { createServer, connect, type Server, type Socket } from 'node:net';

export type Direction = 'up' | 'down';

export interface ProxyOptions {
  /** the real server, on loopback */
  readonly target: { readonly host: string; readonly port: number };
  /** link capacity in bytes per second, each direction (default: unlimited) */
  bytesPerSecond?: number;
  /** one-way latency in milliseconds added to each direction (RTT = 2×) */
  latencyMs?: number;
  /** probability, per forwarded piece, that the connection is dropped */
  dropRate?: number;
  /** random source for drops (default Math.random) */
  rng?: () => number;
  /** most connections open at once (default 16); extra ones are refused */
  maxConnections?: number;
  /** bytes queued per connection and direction before its source is paused (default 64 KiB) */
  maxQueueBytes?: number;
  /** while true nothing moves in either direction; connections stay open and queued bytes wait (default false) */
  stalled?: boolean;
}

export interface CutPlan {
  /** which direction is cut: 'up' = client → server (mid-request), 'down' = mid-response */
  readonly direction: Direction;
  /** bytes forwarded in that direction before the cut */
  readonly afterBytes: number;
}

export interface ProxyStats {
  connections: number;
  bytesUp: number;
  bytesDown: number;
  cuts: number;
  drops: number;
}

export interface NetProxy {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly stats: ProxyStats;
  /**
   * Faults in order: the first plan counts bytes in its direction from now, on
   * whichever connection carries them (kept-alive ones too), cuts that
   * connection, then the next plan starts counting from zero.
   */
  cutNext(...plans: CutPlan[]): void;
  /** forget the planned cuts not yet made */
  cancelCuts(): void;
  /** change the link model while running */
  set(options: Partial<Omit<ProxyOptions, 'target'>>): void;
  /** cut every open connection now */
  cutAll(): void;
  close(): Promise<void>;
}

/** 1 kbps = 125 bytes per second. */
export function kbps(n: number): number {
  return (n * 1000) / 8;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);
const PIECE = 256;

interface Piece {
  readonly size: number;
  /** false once its connection died: the piece is dropped without using the link */
  alive(): boolean;
  /** called when the piece reaches the other side */
  arrive(): void;
}

/**
 * One direction of the shared link: pieces queue in arrival order (all
 * connections), each occupies the link for size/rate, then arrives after the
 * latency. Pieces of a dead connection leave the queue without using the link.
 */
class Link {
  private readonly queue: Piece[] = [];
  private busy = false;
  constructor(private readonly opts: ProxyOptions) {}
  push(p: Piece): void {
    this.queue.push(p);
    this.next();
  }
  next(): void {
    if (this.busy || this.opts.stalled) return;
    let p = this.queue.shift();
    while (p && !p.alive()) p = this.queue.shift();
    if (!p) return;
    const piece = p;
    this.busy = true;
    const rate = this.opts.bytesPerSecond ?? 0;
    const tx = rate > 0 ? (piece.size * 1000) / rate : 0;
    const sent = (): void => {
      this.busy = false;
      const latency = this.opts.latencyMs ?? 0;
      if (latency > 0) setTimeout(() => piece.arrive(), latency).unref?.();
      else piece.arrive();
      this.next();
    };
    if (tx > 0) setTimeout(sent, tx).unref?.();
    else setImmediate(sent);
  }
}

export async function startProxy(options: ProxyOptions): Promise<NetProxy> {
  if (!LOOPBACK.has(options.target.host)) throw new Error('net-proxy forwards to loopback only');
  const opts: ProxyOptions = { ...options };
  const links: Record<Direction, Link> = { up: new Link(opts), down: new Link(opts) };
  const stats: ProxyStats = { connections: 0, bytesUp: 0, bytesDown: 0, cuts: 0, drops: 0 };
  const plans: CutPlan[] = [];
  const open = new Set<{ client: Socket; server: Socket }>();

  let planBytes = 0;
  const pump = (from: Socket, to: Socket, dir: Direction, kill: () => void): void => {
    let queued = 0;
    const limit = opts.maxQueueBytes ?? 64 * 1024;
    const alive = (): boolean => !to.destroyed && !from.destroyed;
    const forward = (piece: Buffer): void => {
      queued -= piece.length;
      if (queued <= limit / 2 && from.isPaused()) from.resume();
      if (!alive()) return;
      if ((opts.dropRate ?? 0) > 0 && (opts.rng ?? Math.random)() < (opts.dropRate ?? 0)) {
        stats.drops++;
        kill();
        return;
      }
      let out = piece;
      const plan = plans[0];
      if (plan && plan.direction === dir) {
        if (planBytes + piece.length >= plan.afterBytes) {
          out = piece.subarray(0, Math.max(0, plan.afterBytes - planBytes));
          if (out.length > 0) to.write(out);
          plans.shift();
          planBytes = 0;
          stats.cuts++;
          kill();
          return;
        }
        planBytes += piece.length;
      }
      if (dir === 'up') stats.bytesUp += out.length; else stats.bytesDown += out.length;
      to.write(out);
    };
    from.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i += PIECE) {
        const piece = chunk.subarray(i, i + PIECE);
        queued += piece.length;
        links[dir].push({ size: piece.length, alive, arrive: () => forward(piece) });
      }
      if (queued > limit) from.pause();
    });
    // the end of a stream travels behind its last byte
    from.on('end', () => {
      links[dir].push({ size: 0, alive: () => !to.destroyed, arrive: () => { if (!to.destroyed) to.end(); } });
    });
  };

  const server: Server = createServer((client) => {
    if (open.size >= (opts.maxConnections ?? 16)) {
      client.destroy();
      return;
    }
    stats.connections++;
    const upstream = connect({ host: opts.target.host, port: opts.target.port });
    const pair = { client, server: upstream };
    open.add(pair);
    const kill = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(pair);
    };
    client.on('error', kill);
    upstream.on('error', kill);
    // a socket that closes without a clean end was aborted: abort the other side too
    for (const sock of [client, upstream]) {
      let ended = false;
      sock.on('end', () => { ended = true; });
      sock.on('close', () => {
        if (!ended) kill();
        else if (client.destroyed && upstream.destroyed) open.delete(pair);
      });
    }
    pump(client, upstream, 'up', kill);
    pump(upstream, client, 'down', kill);
  });
  server.maxConnections = opts.maxConnections ?? 16;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;

  return {
    host: '127.0.0.1',
    port,
    url: `http://127.0.0.1:${port}`,
    stats,
    cutNext: (...p) => {
      if (plans.length === 0) planBytes = 0;
      plans.push(...p);
    },
    cancelCuts: () => {
      plans.length = 0;
      planBytes = 0;
    },
    set: (o) => {
      Object.assign(opts, o);
      if (!opts.stalled) { links.up.next(); links.down.next(); }
    },
    cutAll: () => {
      for (const p of [...open]) {
        p.client.destroy();
        p.server.destroy();
        open.delete(p);
        stats.cuts++;
      }
    },
    close: async () => {
      for (const p of [...open]) { p.client.destroy(); p.server.destroy(); }
      open.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
