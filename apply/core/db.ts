// The small database interface the rest of spokesync uses, and its mysql2
// adapter. Tests use the real adapter against real MariaDB servers.
import mysql from 'mysql2/promise';
import type { TypeCast } from 'mysql2';
import { SpokesyncError } from './errors.js';

export interface DbSettings {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
  readonly schema?: string;
}

export interface ExecResult {
  readonly affectedRows: number;
  readonly insertId: number;
}

/** Anything that runs SQL: a pool, a connection, or a transaction. */
export interface Queryable {
  /** SELECT-like statements: the rows. */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** INSERT/UPDATE/DELETE/DDL: affected rows and insert id. */
  exec(sql: string, params?: readonly unknown[]): Promise<ExecResult>;
}

export interface Db extends Queryable {
  /** Runs fn inside one transaction on one connection; commits when fn resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** A dedicated connection (for long reads such as snapshots); release() when done, destroy() when its session must end. */
  connection(): Promise<Queryable & { release(): void; destroy(): void }>;
  close(): Promise<void>;
}

/**
 * FLOAT/DOUBLE: mysql2 turns the server's text into a number by accumulating
 * digits in a double, which is off in the last digit for many values; parse
 * the server's text exactly instead. GEOMETRY: the bytes, like other binary
 * columns (mysql2 would decode them into objects).
 */
export const typeCast: TypeCast = (field, next) => {
  if (field.type === 'FLOAT' || field.type === 'DOUBLE') {
    const s = field.string('ascii');
    return s === null ? null : Number(s);
  }
  if (field.type === 'GEOMETRY') return field.buffer();
  return next();
};

/** The text forms of values: exact and stable whatever the server's defaults. */
const TEXT_FORMS = {
  dateStrings: true,
  supportBigNumbers: true,
  bigNumberStrings: true,
  charset: 'utf8mb4_bin',
  timezone: 'Z',
} as const;

/** Options every spokesync query connection uses, so text forms are exact and stable. */
export const connectionDefaults = {
  ...TEXT_FORMS,
  decimalNumbers: false,
  jsonStrings: true,
  typeCast,
} as const;

/** What a connection reads, and so the options it needs beyond the address. */
const READS = {
  /** typed values (pools, capture's state session) */
  values: { ...connectionDefaults, multipleStatements: false },
  /** the binlog, through zongji's own driver: the text forms alone (its driver has no typeCast of ours) */
  binlog: TEXT_FORMS,
  /** rows as raw bytes (snapshots): only the charset and the time zone matter */
  bytes: { charset: TEXT_FORMS.charset, timezone: TEXT_FORMS.timezone, multipleStatements: false },
} as const;

/** The one place database settings become connection options; each caller adds only what it alone needs. */
export function connectionOptions<K extends keyof typeof READS>(
  s: DbSettings,
  reads: K,
): { host: string; port: number; user: string; password?: string } & (typeof READS)[K] {
  return { host: s.host, port: s.port, user: s.user, ...(s.password === undefined ? {} : { password: s.password }), ...READS[reads] };
}

/** Affected rows and insert id of a mysql2 result header. */
export function execResult(res: unknown): ExecResult {
  const h = res as mysql.ResultSetHeader;
  return { affectedRows: h.affectedRows, insertId: h.insertId };
}

/** The Queryable view of a mysql2 pool or connection. */
export function wrapQueryable(c: mysql.Pool | mysql.PoolConnection | mysql.Connection): Queryable {
  return {
    async query<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
      const [rows] = await c.query(sql, params as unknown[] | undefined);
      return rows as T[];
    },
    async exec(sql: string, params?: readonly unknown[]): Promise<ExecResult> {
      const [res] = await c.query(sql, params as unknown[] | undefined);
      return execResult(res);
    },
  };
}

export function openDb(s: DbSettings, opts: { connectionLimit?: number } = {}): Db {
  const pool = mysql.createPool({
    ...connectionOptions(s, 'values'),
    ...(s.schema === undefined ? {} : { database: s.schema }),
    connectionLimit: opts.connectionLimit ?? 4,
  });
  // Each new session works in UTC and with strict SQL, whatever the server defaults.
  // The event hands over the callback-style core connection (whatever the typings
  // say); the statement is queued ahead of any query the pool sends on it.
  pool.on('connection', (conn) => {
    const core = conn as unknown as { query(sql: string, cb: (err: Error | null) => void): void; destroy(): void };
    core.query("SET time_zone = '+00:00', sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO')", (err) => {
      // A session without these settings must not be used: drop it, the pool opens another.
      if (err) core.destroy();
    });
  });
  const base = wrapQueryable(pool);
  return {
    ...base,
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const conn = await pool.getConnection();
      try {
        await conn.beginTransaction();
        const out = await fn(wrapQueryable(conn));
        await conn.commit();
        return out;
      } catch (e) {
        await conn.rollback().catch(() => undefined);
        throw e;
      } finally {
        conn.release();
      }
    },
    async connection() {
      const conn = await pool.getConnection();
      return { ...wrapQueryable(conn), release: () => conn.release(), destroy: () => conn.destroy() };
    },
    async close() {
      await pool.end();
    },
  };
}

/** Connects once to prove the settings work; a clear error when they do not. */
export async function connectDb(s: DbSettings, opts: { connectionLimit?: number } = {}): Promise<Db> {
  const db = openDb(s, opts);
  try {
    await db.query('SELECT 1');
    return db;
  } catch (e) {
    await db.close().catch(() => undefined);
    const code = (e as { code?: string }).code ?? 'unknown';
    throw new SpokesyncError('SPOKESYNC_E_DB_CONNECT', `cannot connect to ${s.host}:${s.port} as ${s.user} (${code})`, { cause: e });
  }
}

/** Backtick-quotes an identifier that has already been checked against the live catalogue. */
export function qid(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}
