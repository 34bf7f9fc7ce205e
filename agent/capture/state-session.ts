// Capture's own connection for its writes to the state schema (journal,
// versions, idmap, checkpoint, schema_events). Where the account may (BINLOG
// ADMIN on MariaDB, SUPER on MySQL), these writes stay out of the binlog: they
// are this node's state and never captured, and binlogged they would double
// the binlog volume and come back to capture as events to skip. Only the
// ledger must be binlogged, and apply writes it on its own connections: this
// connection serves capture alone, so its setting cannot leak into them.
// Without the privilege the writes are binlogged, and that is logged once.
// A replica of this server then lacks capture's state: the state is per node.
//
// Bulk rows go as prepared statements (execute): values travel as bytes in
// the binary protocol, not as SQL text the server has to parse back.
import mysql from 'mysql2/promise';
import { connectionDefaults, connectionOptions, execResult, wrapQueryable, type DbSettings, type ExecResult, type Queryable } from '../../apply/core/db.js';
import type { Logger } from '../../apply/core/log.js';

/** ER_SPECIFIC_ACCESS_DENIED_ERROR: the privilege to set sql_log_bin is missing. */
const ACCESS_DENIED = 1227;

export interface StateTx extends Queryable {
  /** A statement with ? placeholders, prepared once per text and run with binary values. */
  execute(sql: string, params: readonly unknown[]): Promise<ExecResult>;
}

export class StateSession {
  private conn: mysql.Connection | null = null;
  private connecting: Promise<mysql.Connection> | null = null;
  /** undefined until the first connection finds out */
  private unlogged: boolean | undefined;
  /** binlogged transactions of this session capture has not read back yet: they need no checkpoint of their own */
  private unread = 0;

  constructor(private readonly settings: DbSettings, private readonly log: Logger, private readonly tryUnlogged = true) {}

  /** Whether capture's state writes go to the binlog (undefined before the first write). */
  get binlogged(): boolean | undefined {
    return this.unlogged === undefined ? undefined : !this.unlogged;
  }

  /**
   * Runs fn in one transaction (the session runs with autocommit off: fn's
   * first statement starts it); COMMIT once all of fn's statements succeeded,
   * ROLLBACK otherwise.
   */
  async transaction<T>(fn: (tx: StateTx) => Promise<T>): Promise<T> {
    const conn = await this.connection();
    try {
      const out = await fn(wrap(conn));
      await conn.query('COMMIT');
      if (this.unlogged === false) this.unread++;
      return out;
    } catch (e) {
      if ((e as { fatal?: boolean }).fatal) this.drop(conn);
      else await conn.query('ROLLBACK').catch(() => this.drop(conn));
      throw e;
    }
  }

  /**
   * Of `n` transactions capture read and skipped, how many are this session's own writes (binlogged
   * without BINLOG ADMIN): a checkpoint past them only adds one more, and an idle node would chase its tail.
   */
  claimOwn(n: number): number {
    const own = Math.min(n, this.unread);
    this.unread -= own;
    return own;
  }

  /** Capture reads again from its checkpoint: what it had not read back is forgotten. */
  forgetOwn(): void {
    this.unread = 0;
  }

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = null;
    await conn?.end().catch(() => conn.destroy());
  }

  private drop(conn: mysql.Connection): void {
    if (this.conn === conn) this.conn = null;
    conn.destroy();
  }

  private async connection(): Promise<mysql.Connection> {
    if (this.conn) return this.conn;
    this.connecting ??= this.connect().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async connect(): Promise<mysql.Connection> {
    const s = this.settings;
    const conn = await mysql.createConnection({
      ...connectionOptions(s, 'values'),
      // journal inserts of differing row counts are different statements: keep a few prepared
      maxPreparedStatements: 16,
      // a statement without values is sent as it is (mysql2 would scan its text, megabytes of idmap rows, for placeholders)
      queryFormat: (sql: string, values: unknown): string =>
        values === undefined || (Array.isArray(values) && values.length === 0) ? sql : mysql.format(sql, values as Parameters<typeof mysql.format>[1], false, connectionDefaults.timezone),
    });
    conn.on('error', () => this.drop(conn));
    try {
      // autocommit off: a statement starts the transaction that COMMIT or ROLLBACK ends (no round trip to begin)
      await conn.query("SET time_zone = '+00:00', sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO'), autocommit = 0");
      if (this.tryUnlogged && this.unlogged !== false) await this.leaveBinlog(conn);
      else this.unlogged = false;
    } catch (e) {
      conn.destroy();
      throw e;
    }
    this.conn = conn;
    return conn;
  }

  private async leaveBinlog(conn: mysql.Connection): Promise<void> {
    try {
      await conn.query('SET SESSION sql_log_bin = 0');
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

function wrap(c: mysql.Connection): StateTx {
  return {
    ...wrapQueryable(c),
    async execute(sql: string, params: readonly unknown[]): Promise<ExecResult> {
      const [res] = await c.execute(sql, params as mysql.ExecuteValues[]);
      return execResult(res);
    },
  };
}
