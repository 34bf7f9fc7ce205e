// Capture's own connection for its writes to the state schema (journal,
// versions, idmap, checkpoint, schema_events). Where the account may (BINLOG
// ADMIN on MariaDB, SUPER on MySQL), these writes stay out of the binlog: they
// are this node's state and never captured, and binlogged they would double
// the binlog volume and come back to capture as events to skip. Only the
// ledger must be binlogged, and apply writes it on its own connections: this
// session serves capture alone, so its setting cannot leak into them. Without
// the privilege the writes are binlogged, as before, and that is logged once.
// A replica of this server then lacks capture's state: the state is per node.
import { openDb, type Db, type DbSettings, type Queryable } from '../db.js';
import type { Logger } from '../log.js';

/** ER_SPECIFIC_ACCESS_DENIED_ERROR: the privilege to set sql_log_bin is missing. */
const ACCESS_DENIED = 1227;

export class StateSession {
  private db: Db | null = null;
  /** undefined until the first write finds out */
  private unlogged: boolean | undefined;

  constructor(private readonly settings: DbSettings, private readonly log: Logger, private readonly tryUnlogged = true) {}

  /** Whether capture's state writes go to the binlog (undefined before the first write). */
  get binlogged(): boolean | undefined {
    return this.unlogged === undefined ? undefined : !this.unlogged;
  }

  /** Runs fn in one transaction on the session's connection. */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    // one connection: the setting and the transaction share it (a new connection after a
    // lost one starts binlogged until the next write sets it again, which is only slower)
    const db = (this.db ??= openDb(this.settings, { connectionLimit: 1 }));
    if (this.unlogged !== false && this.tryUnlogged) await this.leaveBinlog(db);
    else this.unlogged ??= false;
    return db.transaction(fn);
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = null;
    await db?.close();
  }

  private async leaveBinlog(db: Db): Promise<void> {
    try {
      await db.exec('SET SESSION sql_log_bin = 0');
      this.unlogged = true;
    } catch (e) {
      if ((e as { errno?: number }).errno !== ACCESS_DENIED) throw e;
      this.unlogged = false;
      this.log.info('capture state writes are binlogged: grant BINLOG ADMIN (SUPER on MySQL) to keep them out of the binlog', {
        user: this.settings.user,
      });
    }
  }
}
