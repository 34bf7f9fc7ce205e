// The reading side of a snapshot: one dedicated connection holding a
// consistent-read transaction, the binlog position that transaction
// corresponds to, the tables' DDL, and their rows streamed as raw bytes.
//
// MariaDB: START TRANSACTION WITH CONSISTENT SNAPSHOT and then
// SHOW STATUS LIKE 'binlog_snapshot_%' give the position without locking tables.
// MySQL 8 does not report binlog_snapshot_*: there the snapshot takes a short
// FLUSH TABLES WITH READ LOCK around START TRANSACTION + SHOW MASTER STATUS, as
// mysqldump --single-transaction --source-data does (needs RELOAD). That MySQL
// path is not exercised by the test suite, which runs on MariaDB only.
import mysql from 'mysql2';
import type { Readable } from 'node:stream';
import { connectionOptions, qid, type DbSettings, type Queryable, type ExecResult } from '../../apply/core/db.js';
import { exactReadExpr } from '../../apply/core/float-text.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { loadCatalog, type Catalog } from '../../apply/core/catalog.js';
import { subsetSql, type Filters } from '../rows/membership-sql.js';
import { identitySql } from '../verify/row-sql.js';
import type { BinlogPosition } from '../capture/position.js';
import type { SnapshotTable } from './snapshot-format.js';

export interface SnapshotSource {
  readonly position: BinlogPosition;
  /** VERSION() */
  readonly server: string;
  readonly charset: string;
  readonly collation: string;
  /** every base table of the schema, by name, with DDL and columns */
  readonly tables: readonly SnapshotTable[];
  /** the rows of one table, each an array of raw column bytes in the table's column order */
  rows(table: SnapshotTable): Readable;
  /** for a child with row filters: the identities of the owner rows the snapshot gives it, by table (empty otherwise) */
  owners(): Promise<Map<string, string[]>>;
  close(): Promise<void>;
}

function promised(conn: mysql.Connection): Queryable {
  const run = (sql: string, params?: readonly unknown[]): Promise<unknown> =>
    new Promise((resolve, reject) => {
      conn.query(sql, params as unknown[] | undefined, (err, res) => (err ? reject(err) : resolve(res)));
    });
  return {
    async query<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
      return (await run(sql, params)) as T[];
    },
    async exec(sql: string, params?: readonly unknown[]): Promise<ExecResult> {
      const h = (await run(sql, params)) as mysql.ResultSetHeader;
      return { affectedRows: h.affectedRows, insertId: h.insertId };
    },
  };
}

/** A raw mysql2 connection with spokesync's session settings (streaming needs the callback API). */
export async function rawConnection(s: DbSettings): Promise<{ conn: mysql.Connection; q: Queryable }> {
  // rows are read as raw bytes (typeCast: false, which mysql2 ignores when jsonStrings is on)
  const conn = mysql.createConnection(connectionOptions(s, 'bytes'));
  const q = promised(conn);
  try {
    await q.exec("SET time_zone = '+00:00'");
  } catch (e) {
    conn.destroy();
    const code = (e as { code?: string }).code ?? 'unknown';
    throw new SpokesyncError('SPOKESYNC_E_DB_CONNECT', `cannot connect to ${s.host}:${s.port} as ${s.user} (${code})`, { cause: e });
  }
  return { conn, q };
}

async function startSnapshot(q: Queryable, mariadb: boolean): Promise<BinlogPosition> {
  await q.exec('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  let file: string | undefined;
  let pos: string | number | undefined;
  if (mariadb) {
    await q.exec('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const st = await q.query<{ Variable_name: string; Value: string }>("SHOW STATUS LIKE 'binlog_snapshot_%'");
    file = st.find((r) => r.Variable_name.toLowerCase() === 'binlog_snapshot_file')?.Value;
    pos = st.find((r) => r.Variable_name.toLowerCase() === 'binlog_snapshot_position')?.Value;
  } else {
    // MySQL 8 (untested here): a global read lock held only while the transaction starts.
    await q.exec('FLUSH TABLES WITH READ LOCK');
    try {
      await q.exec('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      let st: Array<{ File: string; Position: string | number }>;
      try {
        st = await q.query('SHOW BINARY LOG STATUS');
      } catch {
        st = await q.query('SHOW MASTER STATUS');
      }
      file = st[0]?.File;
      pos = st[0]?.Position;
    } finally {
      await q.exec('UNLOCK TABLES');
    }
  }
  if (!file || pos === undefined || !Number.isSafeInteger(Number(pos))) {
    throw new SpokesyncError('SPOKESYNC_E_PREFLIGHT', 'the server reports no binlog position: is log_bin on?');
  }
  return { file, pos: Number(pos) };
}

/**
 * Opens the consistent snapshot of `schema`; close() ends the transaction and
 * the connection. `subset`: a child's row filters, when only its rows go.
 */
export async function openSnapshotSource(s: DbSettings, schema: string, subset?: (catalog: Catalog) => Filters | null): Promise<SnapshotSource> {
  const { conn, q } = await rawConnection(s);
  try {
    // row filters name other tables without their schema
    if (subset) await q.exec(`USE ${qid(schema)}`);
    const version = (await q.query<{ v: string }>('SELECT VERSION() AS v'))[0]?.v ?? '';
    const position = await startSnapshot(q, /mariadb/i.test(version));
    const sch = await q.query<{ c: string; l: string }>(
      'SELECT DEFAULT_CHARACTER_SET_NAME AS c, DEFAULT_COLLATION_NAME AS l FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
      [schema],
    );
    if (!sch[0]) throw new SpokesyncError('SPOKESYNC_E_PREFLIGHT', `schema ${schema} does not exist on the source`);
    const catalog = await loadCatalog(q, schema);
    const filters = subset?.(catalog) ?? null;
    const est = await q.query<{ TABLE_NAME: string; TABLE_ROWS: string | number | null }>(
      "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
      [schema],
    );
    const estimate = new Map(est.map((r) => [r.TABLE_NAME, Number(r.TABLE_ROWS ?? 0)]));
    const tables: SnapshotTable[] = [];
    /** each table's SELECT list (FLOAT columns as their exact value: the server's text of a FLOAT has 6 digits), FROM and, for a subset, WHERE */
    const selects = new Map<string, string>();
    for (const name of [...catalog.tables.keys()].sort()) {
      const info = catalog.table(name);
      const ddlRow = (await q.query<Record<string, string>>(`SHOW CREATE TABLE ${qid(schema)}.${qid(name)}`))[0];
      const ddl = ddlRow?.['Create Table'];
      if (!ddl) throw new SpokesyncError('SPOKESYNC_E_PREFLIGHT', `SHOW CREATE TABLE ${name} returned nothing`);
      const columns = [...info.columns].sort((a, b) => a.ordinal - b.ordinal).filter((c) => !c.generated);
      const sub = filters ? subsetSql(filters, name) : null;
      selects.set(name, `${columns.map((c) => exactReadExpr(qid(c.name), c)).join(', ')} FROM ${qid(schema)}.${qid(name)}${sub ? ` AS ${sub.alias} WHERE ${sub.where}` : ''}`);
      tables.push({
        name,
        ddl,
        columns: columns.map((c) => ({ name: c.name, binary: c.binary })),
        estimatedRows: estimate.get(name) ?? 0,
      });
    }
    let closed = false;
    return {
      position,
      server: version,
      charset: sch[0].c,
      collation: sch[0].l,
      tables,
      rows(t) {
        const what = selects.get(t.name) ?? `${t.columns.map((c) => qid(c.name)).join(', ')} FROM ${qid(schema)}.${qid(t.name)}`;
        return conn
          .query({ sql: `SELECT ${what}`, rowsAsArray: true, typeCast: false })
          .stream({ highWaterMark: 256 });
      },
      async owners() {
        const out = new Map<string, string[]>();
        for (const table of filters?.graph.owners ?? []) {
          const sub = subsetSql(filters!, table);
          const rs = identitySql(catalog, table);
          const rows = await q.query<{ k: Buffer | string | null }>(`SELECT ${rs.identity} AS k FROM ${rs.from}${sub ? ` WHERE ${sub.where}` : ''}`);
          out.set(table, rows.flatMap((r) => (r.k === null ? [] : [Buffer.isBuffer(r.k) ? r.k.toString('utf8') : String(r.k)])));
        }
        return out;
      },
      async close() {
        if (closed) return;
        closed = true;
        await q.exec('COMMIT').catch(() => undefined);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000);
          conn.end(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        conn.destroy();
      },
    };
  } catch (e) {
    conn.destroy();
    throw e;
  }
}
