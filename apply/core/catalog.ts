// The live schema catalogue: tables, columns, keys and foreign keys of the
// application schema, read from information_schema, and the identity rule of
// every table (DESIGN.md "Identity"). Table and column names used in SQL come
// only from here.
import type { Queryable } from './db.js';
import { SpokesyncError } from './errors.js';

export interface ColumnInfo {
  readonly name: string;
  /** 1-based position */
  readonly ordinal: number;
  /** lower-case DATA_TYPE, e.g. 'varchar', 'datetime', 'bigint' */
  readonly dataType: string;
  /** full COLUMN_TYPE, e.g. 'bigint(20) unsigned', "enum('a','b')" */
  readonly columnType: string;
  readonly nullable: boolean;
  readonly autoIncrement: boolean;
  /** generated (virtual or stored): never written by apply */
  readonly generated: boolean;
  /** the value is bytes (Buffer), not text */
  readonly binary: boolean;
  readonly charset: string | null;
  /** COLUMN_DEFAULT as the server gives it ("'x'", '0', 'NULL', 'current_timestamp()'); null when the column has none */
  readonly default?: string | null;
}

export interface ForeignKey {
  readonly name: string;
  readonly columns: readonly string[];
  readonly refTable: string;
  readonly refColumns: readonly string[];
}

export type IdentityRule =
  /** the row is its `uuid` column */
  | { readonly kind: 'uuid'; readonly column: string }
  /** the primary key is a foreign key: the row is the referenced row's identity */
  | { readonly kind: 'shared'; readonly column: string; readonly refTable: string; readonly refColumn: string }
  /** the row is its key tuple; parts that are foreign keys travel as referenced identities */
  | { readonly kind: 'natural'; readonly columns: readonly string[] };

export interface TableInfo {
  readonly name: string;
  readonly engine: string;
  readonly columns: readonly ColumnInfo[];
  readonly column: ReadonlyMap<string, ColumnInfo>;
  readonly primaryKey: readonly string[];
  readonly uniqueKeys: readonly (readonly string[])[];
  readonly foreignKeys: readonly ForeignKey[];
  /** single-column foreign keys by column: the column travels as a Ref */
  readonly refs: ReadonlyMap<string, { readonly table: string; readonly column: string }>;
  readonly identity: IdentityRule | null;
  /** why there is no identity, with the fix (when identity is null) */
  readonly identityProblem: string | null;
  /** columns that never travel: auto-increment ids and the shared primary key */
  readonly localColumns: ReadonlySet<string>;
}

export interface Catalog {
  readonly schema: string;
  readonly tables: ReadonlyMap<string, TableInfo>;
  /** The table, or SPOKESYNC_E_UNKNOWN_TABLE. */
  table(name: string): TableInfo;
}

const BINARY_TYPES = new Set([
  'binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'bit',
  'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection',
]);

interface ColRow {
  TABLE_NAME: string; COLUMN_NAME: string; ORDINAL_POSITION: number | string; DATA_TYPE: string; COLUMN_TYPE: string;
  IS_NULLABLE: string; EXTRA: string; CHARACTER_SET_NAME: string | null; IS_GENERATED?: string; COLUMN_DEFAULT?: string | null;
}
interface KeyRow { TABLE_NAME: string; CONSTRAINT_NAME: string; CONSTRAINT_TYPE: string; COLUMN_NAME: string; SEQ: number | string }
interface FkRow {
  TABLE_NAME: string; CONSTRAINT_NAME: string; COLUMN_NAME: string; REFERENCED_TABLE_NAME: string;
  REFERENCED_COLUMN_NAME: string; SEQ: number | string;
}

export interface CatalogOptions {
  /** per-table identity overrides from the config: table → key columns */
  readonly keys?: Readonly<Record<string, readonly string[]>>;
}

export async function loadCatalog(db: Queryable, schema: string, opts: CatalogOptions = {}): Promise<Catalog> {
  const tables = await db.query<{ TABLE_NAME: string; ENGINE: string | null }>(
    `SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'`,
    [schema],
  );
  const cols = await db.query<ColRow>(
    `SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, EXTRA, CHARACTER_SET_NAME, IS_GENERATED, COLUMN_DEFAULT
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    [schema],
  );
  const keys = await db.query<KeyRow>(
    `SELECT tc.TABLE_NAME, tc.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE, k.COLUMN_NAME, k.ORDINAL_POSITION AS SEQ
       FROM information_schema.TABLE_CONSTRAINTS tc
       JOIN information_schema.KEY_COLUMN_USAGE k
         ON k.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND k.TABLE_NAME = tc.TABLE_NAME AND k.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
      WHERE tc.TABLE_SCHEMA = ? AND tc.CONSTRAINT_TYPE IN ('PRIMARY KEY', 'UNIQUE')
      ORDER BY tc.TABLE_NAME, tc.CONSTRAINT_NAME, k.ORDINAL_POSITION`,
    [schema],
  );
  const fks = await db.query<FkRow>(
    `SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME, ORDINAL_POSITION AS SEQ
       FROM information_schema.KEY_COLUMN_USAGE
      WHERE TABLE_SCHEMA = ? AND REFERENCED_TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME IS NOT NULL
      ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION`,
    [schema, schema],
  );

  const colsBy = groupBy(cols, (c) => c.TABLE_NAME);
  const keysBy = groupBy(keys, (k) => k.TABLE_NAME);
  const fksBy = groupBy(fks, (f) => f.TABLE_NAME);

  const raw = new Map<string, Omit<TableInfo, 'identity' | 'identityProblem' | 'localColumns'>>();
  for (const t of tables) {
    const columns: ColumnInfo[] = (colsBy.get(t.TABLE_NAME) ?? []).map((c) => {
      const dataType = c.DATA_TYPE.toLowerCase();
      const extra = (c.EXTRA ?? '').toLowerCase();
      return {
        name: c.COLUMN_NAME,
        ordinal: Number(c.ORDINAL_POSITION),
        dataType,
        columnType: c.COLUMN_TYPE,
        nullable: c.IS_NULLABLE === 'YES',
        autoIncrement: extra.includes('auto_increment'),
        generated: extra.includes('generated') || (c.IS_GENERATED ?? 'NEVER') !== 'NEVER',
        binary: BINARY_TYPES.has(dataType),
        charset: c.CHARACTER_SET_NAME,
        default: c.COLUMN_DEFAULT ?? null,
      };
    });
    const constraints = groupBy(keysBy.get(t.TABLE_NAME) ?? [], (k) => k.CONSTRAINT_NAME);
    let primaryKey: string[] = [];
    const uniqueKeys: string[][] = [];
    for (const [, parts] of constraints) {
      const names = parts.sort((a, b) => Number(a.SEQ) - Number(b.SEQ)).map((p) => p.COLUMN_NAME);
      if (parts[0]!.CONSTRAINT_TYPE === 'PRIMARY KEY') primaryKey = names;
      else uniqueKeys.push(names);
    }
    const foreignKeys: ForeignKey[] = [];
    for (const [name, parts] of groupBy(fksBy.get(t.TABLE_NAME) ?? [], (f) => f.CONSTRAINT_NAME)) {
      parts.sort((a, b) => Number(a.SEQ) - Number(b.SEQ));
      foreignKeys.push({
        name,
        columns: parts.map((p) => p.COLUMN_NAME),
        refTable: parts[0]!.REFERENCED_TABLE_NAME,
        refColumns: parts.map((p) => p.REFERENCED_COLUMN_NAME),
      });
    }
    const refs = new Map<string, { table: string; column: string }>();
    for (const fk of foreignKeys) {
      if (fk.columns.length === 1) refs.set(fk.columns[0]!, { table: fk.refTable, column: fk.refColumns[0]! });
    }
    raw.set(t.TABLE_NAME, {
      name: t.TABLE_NAME,
      engine: t.ENGINE ?? '',
      columns,
      column: new Map(columns.map((c) => [c.name, c])),
      primaryKey,
      uniqueKeys,
      foreignKeys,
      refs,
    });
  }

  const resolved = new Map<string, TableInfo>();
  const resolving = new Set<string>();
  const resolve = (name: string): TableInfo | undefined => {
    const done = resolved.get(name);
    if (done) return done;
    const t = raw.get(name);
    if (!t || resolving.has(name)) return undefined;
    resolving.add(name);
    const { rule, problem } = identityRule(t, opts.keys?.[name], resolve);
    resolving.delete(name);
    const localColumns = new Set(t.columns.filter((c) => c.autoIncrement).map((c) => c.name));
    if (rule?.kind === 'shared') localColumns.add(rule.column);
    if (rule?.kind === 'natural') for (const c of rule.columns) localColumns.delete(c);
    const info: TableInfo = { ...t, identity: rule, identityProblem: problem, localColumns };
    resolved.set(name, info);
    return info;
  };
  for (const name of raw.keys()) resolve(name);

  return {
    schema,
    tables: resolved,
    table(name: string): TableInfo {
      const t = resolved.get(name);
      if (!t) throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_TABLE', `table ${JSON.stringify(name)} is not in schema ${schema}`);
      return t;
    },
  };
}

function identityRule(
  t: Omit<TableInfo, 'identity' | 'identityProblem' | 'localColumns'>,
  override: readonly string[] | undefined,
  resolve: (name: string) => TableInfo | undefined,
): { rule: IdentityRule | null; problem: string | null } {
  if (override) {
    const missing = override.filter((c) => !t.column.has(c));
    if (missing.length > 0) {
      return { rule: null, problem: `tables.keys.${t.name} names columns that do not exist: ${missing.join(', ')}` };
    }
    if (override.length === 1 && override[0] === 'uuid') return { rule: { kind: 'uuid', column: 'uuid' }, problem: null };
    return { rule: { kind: 'natural', columns: [...override] }, problem: null };
  }
  const uuid = t.column.get('uuid');
  if (uuid && !uuid.nullable) return { rule: { kind: 'uuid', column: 'uuid' }, problem: null };
  // A single-column primary key that is itself a foreign key to a row with an identity.
  if (t.primaryKey.length === 1) {
    const pk = t.primaryKey[0]!;
    const ref = t.refs.get(pk);
    if (ref && ref.table !== t.name) {
      const target = resolve(ref.table);
      if (target?.identity) return { rule: { kind: 'shared', column: pk, refTable: ref.table, refColumn: ref.column }, problem: null };
    }
  }
  if (uuid) return { rule: { kind: 'uuid', column: 'uuid' }, problem: null };
  // A primary or unique key without local ids is a natural key.
  const candidates = [t.primaryKey, ...t.uniqueKeys].filter((k) => k.length > 0);
  for (const key of candidates) {
    const cols = key.map((c) => t.column.get(c)!);
    if (cols.some((c) => c.autoIncrement || c.nullable)) continue;
    // An integer key that is not a foreign key is a local id, unless it is a natural value we cannot tell apart.
    const usable = cols.every((c) => t.refs.has(c.name) || !isSurrogateInteger(c, t.primaryKey));
    if (usable) return { rule: { kind: 'natural', columns: [...key] }, problem: null };
  }
  const why = t.primaryKey.length === 0 && t.uniqueKeys.length === 0
    ? 'has no primary key, no unique key and no uuid column'
    : 'has only local integer ids as keys and no uuid column';
  return {
    rule: null,
    problem: `table ${t.name} ${why}: add a uuid column, exclude it in tables.exclude, or name its key columns in tables.keys.${t.name}`,
  };
}

function isSurrogateInteger(c: ColumnInfo, primaryKey: readonly string[]): boolean {
  return c.autoIncrement || (primaryKey.length === 1 && primaryKey[0] === c.name && /int$/.test(c.dataType));
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k);
    if (list) list.push(x);
    else m.set(k, [x]);
  }
  return m;
}
