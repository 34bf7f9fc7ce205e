// A node's own bookkeeping (quarantine tries, exchange history, status reports)
// is never captured: where the account may (BINLOG ADMIN), it is written with
// sql_log_bin = 0 on a connection of its own, so an idle node adds nothing to
// its binlog; otherwise it is written logged and capture reads past it.
import type { Db, Queryable } from './db.js';

/** ER_SPECIFIC_ACCESS_DENIED_ERROR: the account may not set sql_log_bin. */
const ACCESS_DENIED = 1227;

/** Runs fn on a connection kept out of the binlog where the account may; returns fn's value and whether it was binlogged. */
export async function unlogged<T>(db: Db, fn: (q: Queryable) => Promise<T>): Promise<{ value: T; binlogged: boolean }> {
  const conn = await db.connection();
  let off = false;
  try {
    try {
      await conn.exec('SET SESSION sql_log_bin = 0');
      off = true;
    } catch (e) {
      if ((e as { errno?: number }).errno !== ACCESS_DENIED) throw e;
    }
    const value = await fn(conn);
    return { value, binlogged: !off };
  } finally {
    // a connection whose sql_log_bin may still be 0 must never serve apply: it is not given back
    if (off) await restore(conn);
    else conn.release();
  }
}

/** Binlogging back on before the pool reuses the connection; one that cannot say so is kept out of the pool. */
async function restore(conn: Queryable & { release(): void }): Promise<void> {
  try {
    await conn.exec('SET SESSION sql_log_bin = 1');
  } catch {
    return;
  }
  conn.release();
}
