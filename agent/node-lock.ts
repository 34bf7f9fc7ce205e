// The node lock: one process at a time runs capture or apply for a node. It is
// a named MariaDB lock (GET_LOCK) held by a dedicated connection, so the server
// frees it when that connection dies (a server restart, wait_timeout, KILL).
// A holder that watches it checks it every few seconds and takes it again on a
// new connection; while another process holds it, the holder is told to pause.
import type { Db, Queryable } from '../apply/core/db.js';
import { SpokesyncError } from '../apply/core/errors.js';
import type { Logger } from '../apply/core/log.js';

export const nodeLockName = (stateSchema: string): string => `spokesync:${stateSchema}`;

type Conn = Queryable & { release(): void };

/** What a watching holder does when the lock goes and comes back. */
export interface LockWatch {
  readonly log: Logger;
  /** the lock is gone (the server dropped it, or another process has it now): stop capture and apply */
  onLost(): Promise<void>;
  /** held again: resume */
  onRegained(): Promise<void>;
  /** run after every check, held or not (default: nothing) */
  onTick?(): Promise<void>;
  /** how often the lock is checked, and retaken while lost (default 2 s) */
  readonly intervalMs?: number;
}

/** GET_LOCK on a new connection of the pool; null when another session holds it. */
async function grab(db: Db, name: string): Promise<Conn | null> {
  const conn = await db.connection();
  try {
    const [got] = await conn.query<{ ok: number | string | null }>('SELECT GET_LOCK(?, 0) AS ok', [name]);
    if (Number(got?.ok) === 1) return conn;
  } catch (e) {
    conn.release();
    throw e;
  }
  conn.release();
  return null;
}

export class NodeLock {
  private lostAt: Date | null = null;
  private checking: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private watch: LockWatch | null = null;
  /** the handlers run one after another, never inside a check */
  private handlers: Promise<void> = Promise.resolve();
  private closed = false;
  /** the holder was told the lock is lost, and not yet that it is back */
  private paused = false;

  private constructor(
    private readonly db: Db,
    private readonly stateSchema: string,
    private readonly node: string,
    private conn: Conn | null,
  ) {}

  /** Takes the node lock; SPOKESYNC_E_BUSY when another process holds it. */
  static async take(db: Db, stateSchema: string, node: string): Promise<NodeLock> {
    const conn = await grab(db, nodeLockName(stateSchema));
    if (!conn) {
      throw new SpokesyncError('SPOKESYNC_E_BUSY', `node ${node} (state schema ${stateSchema}) is in use by another spokesync process`);
    }
    return new NodeLock(db, stateSchema, node, conn);
  }

  /** Whether this process holds the lock, as far as the last check knows. */
  get held(): boolean {
    return this.conn !== null;
  }

  /** When the lock was lost (null while held). */
  get lostSince(): Date | null {
    return this.lostAt;
  }

  /** Throws SPOKESYNC_E_BUSY unless the lock is held (a cheap test before capture or apply writes). */
  assertHeld(): void {
    if (!this.conn) throw this.lostError();
  }

  /**
   * Confirms on the server that the lock is still this process's; when the
   * server dropped it, takes it again on a new connection. Throws
   * SPOKESYNC_E_BUSY while it cannot be had (another process holds it, or the
   * server is away).
   */
  async ensure(): Promise<void> {
    this.checking ??= this.check().finally(() => { this.checking = null; });
    return this.checking;
  }

  /** Checks every intervalMs, tells `watch` when the lock is lost and when it is held again. */
  startWatching(watch: LockWatch): void {
    this.watch = watch;
    const tick = (): void => {
      this.timer = setTimeout(() => {
        void this.ensure().catch(() => undefined).then(() => this.notify('tick')).finally(() => { if (this.watch) tick(); });
      }, watch.intervalMs ?? 2000);
      this.timer.unref();
    };
    tick();
  }

  /** No more checks; the handlers still running finish first. */
  async stopWatching(): Promise<void> {
    this.watch = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.checking?.catch(() => undefined);
    await this.handlers;
  }

  /** Stops watching and frees the lock. */
  async release(): Promise<void> {
    await this.stopWatching();
    this.closed = true;
    const conn = this.conn;
    this.conn = null;
    if (!conn) return;
    await conn.query('SELECT RELEASE_LOCK(?)', [nodeLockName(this.stateSchema)]).catch(() => undefined);
    conn.release();
  }

  private lostError(): SpokesyncError {
    return new SpokesyncError('SPOKESYNC_E_BUSY',
      `node ${this.node} lost its node lock (state schema ${this.stateSchema}) at ${this.lostAt?.toISOString() ?? '?'} ` +
      '(the database connection holding it was dropped) and has not taken it again: another spokesync process holds it, ' +
      'or the server is away; capture and apply are paused until it is taken again');
  }

  private async check(): Promise<void> {
    if (this.closed) throw this.lostError();
    const name = nodeLockName(this.stateSchema);
    if (this.conn) {
      let mine = false;
      try {
        const [r] = await this.conn.query<{ mine: number | string | null }>('SELECT IS_USED_LOCK(?) = CONNECTION_ID() AS mine', [name]);
        mine = Number(r?.mine) === 1;
      } catch {
        // the connection is gone, and the lock with it
      }
      if (mine) return;
      // a dead connection leaves the pool when released; a live one is reset (which frees its locks)
      this.conn.release();
      this.conn = null;
      this.lostAt = new Date();
    }
    const conn = await grab(this.db, name).catch(() => null);
    if (conn && this.closed) {
      await conn.query('SELECT RELEASE_LOCK(?)', [name]).catch(() => undefined);
      conn.release();
    }
    if (!conn || this.closed) {
      if (!this.paused) {
        this.paused = true;
        this.notify('lost');
      }
      throw this.lostError();
    }
    this.conn = conn;
    if (this.paused) {
      this.paused = false;
      this.notify('regained');
    } else {
      this.watch?.log.warn('the server dropped the node lock; it was taken again at once', { node: this.node, lostAt: this.lostAt?.toISOString() });
    }
    this.lostAt = null;
  }

  private notify(what: 'lost' | 'regained' | 'tick'): void {
    const w = this.watch;
    if (!w || this.closed) return;
    const run = async (): Promise<void> => {
      if (what === 'lost') {
        w.log.error('node lock lost: capture and apply pause until it is taken again', {
          code: 'SPOKESYNC_E_BUSY', node: this.node, stateSchema: this.stateSchema,
        });
        await w.onLost();
      } else if (what === 'regained') {
        w.log.info('node lock taken again: capture and apply resume', { node: this.node, stateSchema: this.stateSchema });
        await w.onRegained();
      } else {
        await w.onTick?.();
      }
    };
    this.handlers = this.handlers.then(run).catch((e: unknown) => {
      // a tick's work is done again at the next tick (the server may be away for a while)
      w.log[what === 'tick' ? 'debug' : 'warn']('after a check of the node lock', { what, error: (e as Error).message });
    });
  }
}
