// Named locks (GET_LOCK) between the processes working on one node: the
// daemon and a command beside it. A lock lives on a connection of its own, so
// it ends with its holder: a process that dies, or a connection that breaks,
// frees it.
import { createHash } from 'node:crypto';
import type { Db, Queryable } from './db.js';
import { SpokesyncError } from './errors.js';

/** the server refuses longer lock names */
const MAX_NAME = 64;

/** `spokesync:<stateSchema>:<what>`; a longer name is shortened to a digest of it (still one name per node and purpose). */
export function lockNameFor(stateSchema: string, what: string): string {
  const name = `spokesync:${stateSchema}:${what}`;
  if (name.length <= MAX_NAME) return name;
  return `spokesync:${createHash('sha256').update(name).digest('hex').slice(0, MAX_NAME - 10)}`;
}

/** The lock `name` while it is held; release() frees it (and ends the session when freeing fails). */
export interface HeldLock {
  readonly name: string;
  release(): Promise<void>;
}

/**
 * Takes `name`, waiting up to `waitMs` while another session holds it;
 * `busy()` is the error when the wait ends without it.
 */
export async function takeLock(db: Db, name: string, waitMs: number, busy: () => SpokesyncError): Promise<HeldLock> {
  const conn = await db.connection();
  let got: number;
  try {
    const [row] = await conn.query<{ ok: number | string | null }>('SELECT GET_LOCK(?, ?) AS ok', [name, Math.max(0, waitMs) / 1000]);
    got = Number(row?.ok);
  } catch (e) {
    conn.destroy();
    throw e;
  }
  if (got !== 1) {
    conn.release();
    throw busy();
  }
  let released = false;
  return {
    name,
    async release() {
      if (released) return;
      released = true;
      await freeLock(conn, name);
    },
  };
}

/** Runs fn while holding `name` (see takeLock). */
export async function withLock<T>(db: Db, name: string, waitMs: number, busy: () => SpokesyncError, fn: () => Promise<T>): Promise<T> {
  const lock = await takeLock(db, name, waitMs, busy);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** Whether any session holds `name` now. */
export async function lockHeld(db: Queryable, name: string): Promise<boolean> {
  const [row] = await db.query<{ who: unknown }>('SELECT IS_USED_LOCK(?) AS who', [name]);
  return row?.who !== null && row?.who !== undefined;
}

async function freeLock(conn: Queryable & { release(): void; destroy(): void }, name: string): Promise<void> {
  try {
    const [row] = await conn.query<{ ok: number | string | null }>('SELECT RELEASE_LOCK(?) AS ok', [name]);
    // a pooled session must never go back still holding the lock
    if (Number(row?.ok) === 1) conn.release();
    else conn.destroy();
  } catch {
    conn.destroy();
  }
}
