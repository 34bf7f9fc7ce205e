// What `spokesync check` judges: facts gathered once from the server, the
// grants, the catalogue and the files the config names. gatherFacts is the only
// I/O; the checks (rules-*.ts) are pure functions of these facts.
import { access, constants } from 'node:fs/promises';
import type { Config } from '../config/types.js';
import { qid, type Db } from '../../apply/core/db.js';
import { loadCatalog, type Catalog } from '../../apply/core/catalog.js';
import { storedStateVersion } from '../../apply/core/state-schema.js';
import { probeSql } from '../rows/expr.js';

export interface Facts {
  /** VERSION(), e.g. '10.11.19-MariaDB-0+deb12u1' or '8.0.36' */
  readonly version: string;
  /** global server variables by lower-case name, as SHOW VARIABLES prints them; absent when the server lacks one */
  readonly variables: Readonly<Record<string, string>>;
  /** CURRENT_USER(): the account the server matched, `user@host` */
  readonly currentUser: string;
  /** SHOW GRANTS lines */
  readonly grants: readonly string[];
  readonly schemaExists: boolean;
  readonly stateSchemaExists: boolean;
  /** the state version the state schema records, as stored; null when it records none */
  readonly stateVersion: string | null;
  /** the application schema's catalogue (with tables.keys), null when the schema does not exist */
  readonly catalog: Catalog | null;
  /** files named by the config (TLS, CA): path → null when readable, else the error code */
  readonly files: Readonly<Record<string, string | null>>;
  /** each row filter of an existing table run once by the server (children[].rows): its error, or null */
  readonly rowFilters?: readonly RowFilterFact[];
}

export interface RowFilterFact {
  /** index in children */
  readonly child: number;
  readonly table: string;
  /** the server's error when the expression does not run against the table, else null */
  readonly error: string | null;
}

/** The server variables the checks read (queried with SHOW, so a missing one is simply absent). */
export const VARIABLES = [
  'log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata', 'server_id', 'sync_binlog',
  'innodb_flush_log_at_trx_commit', 'binlog_expire_logs_seconds', 'expire_logs_days', 'max_allowed_packet',
  // MariaDB 11.4+: purges binlogs by total size
  'max_binlog_total_size', 'binlog_space_limit',
  // MySQL 8 only: read defensively, judged only when present
  'binlog_transaction_compression', 'binlog_row_value_options',
] as const;

export interface Flavor {
  readonly kind: 'mariadb' | 'mysql';
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** 'MariaDB 10.11.19' */
  readonly label: string;
}

export function parseVersion(version: string): Flavor {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  const [major, minor, patch] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
  const kind = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
  return { kind, major, minor, patch, label: `${kind === 'mariadb' ? 'MariaDB' : 'MySQL'} ${major}.${minor}.${patch}` };
}

export function atLeast(f: Flavor, major: number, minor: number, patch = 0): boolean {
  return f.major !== major ? f.major > major : f.minor !== minor ? f.minor > minor : f.patch >= patch;
}

/** Config paths of files the node must be able to read. */
export function configFiles(config: Config): Record<string, string> {
  const files: Record<string, string> = {};
  if (config.listen?.tls) {
    files['listen.tls.cert'] = config.listen.tls.cert;
    files['listen.tls.key'] = config.listen.tls.key;
  }
  if (config.parent?.ca) files['parent.ca'] = config.parent.ca;
  return files;
}

/** Runs each row filter once against its table, reading no row, on a session of its own whose default schema is the application's. */
async function probeRowFilters(db: Db, config: Config, catalog: Catalog | null): Promise<RowFilterFact[]> {
  const wanted = config.children.flatMap((c, child) => Object.entries(c.rows ?? {}).map(([table, expr]) => ({ child, table, expr })));
  const out: RowFilterFact[] = [];
  if (wanted.length === 0 || !catalog) return out;
  const conn = await db.connection();
  try {
    await conn.exec(`USE ${qid(config.database.schema)}`);
    for (const w of wanted) {
      if (!catalog.tables.has(w.table)) continue;
      const error = await conn.query(probeSql(config.database.schema, w.table, w.expr)).then(() => null, (e: unknown) => (e as Error).message);
      out.push({ child: w.child, table: w.table, error });
    }
  } finally {
    // its default schema is not left to other users of the pool
    conn.destroy();
  }
  return out;
}

export async function gatherFacts(db: Db, config: Config): Promise<Facts> {
  const [who] = await db.query<{ v: string; u: string }>('SELECT VERSION() AS v, CURRENT_USER() AS u');
  const vars = await db.query<{ Variable_name: string; Value: string | null }>(
    `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${VARIABLES.map(() => '?').join(', ')})`,
    [...VARIABLES],
  );
  const variables: Record<string, string> = {};
  for (const v of vars) variables[v.Variable_name.toLowerCase()] = v.Value ?? '';
  const grantRows = await db.query<Record<string, string>>('SHOW GRANTS');
  const grants = grantRows.map((r) => String(Object.values(r)[0] ?? ''));
  const schemata = await db.query<{ SCHEMA_NAME: string }>(
    'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (?, ?)',
    [config.database.schema, config.database.stateSchema],
  );
  const names = new Set(schemata.map((s) => s.SCHEMA_NAME));
  const schemaExists = names.has(config.database.schema);
  const stateSchemaExists = names.has(config.database.stateSchema);
  // unreadable without grants on it, which the grants check reports
  const stateVersion = stateSchemaExists ? await storedStateVersion(db, config.database.stateSchema).catch(() => null) : null;
  const catalog = schemaExists ? await loadCatalog(db, config.database.schema, { keys: config.tables.keys }) : null;
  const files: Record<string, string | null> = {};
  for (const path of Object.values(configFiles(config))) {
    files[path] = await access(path, constants.R_OK).then(
      () => null,
      (e: unknown) => (e as { code?: string }).code ?? 'unreadable',
    );
  }
  return {
    version: who?.v ?? '',
    variables,
    currentUser: who?.u ?? config.database.user,
    grants,
    schemaExists,
    stateSchemaExists,
    stateVersion,
    catalog,
    files,
    rowFilters: await probeRowFilters(db, config, catalog),
  };
}
