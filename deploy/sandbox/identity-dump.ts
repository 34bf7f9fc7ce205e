// Dumps synced tables by identity, the way spokesync names rows across the
// network: local ids (auto-increment, shared primary keys) are left out and
// every single-column foreign key is replaced by the referenced row's identity.
// Two nodes hold the same data exactly when their dumps are equal.
import type { Queryable } from '../../apply/core/db.js';
import { qid } from '../../apply/core/db.js';
import { loadCatalog, type Catalog, type TableInfo } from '../../apply/core/catalog.js';
import { encodeIdentity } from '../../apply/core/identity.js';

/** table → identity → column → value (text, `hex:` for bytes, null) */
export type Dump = Record<string, Record<string, Record<string, string | null>>>;

type RowData = Record<string, unknown>;

const text = (v: unknown): string | null =>
  v === null || v === undefined ? null : Buffer.isBuffer(v) ? `hex:${v.toString('hex')}` : String(v);

class Identities {
  /** table.column → value → identity */
  private readonly maps = new Map<string, Map<string, string>>();
  constructor(private readonly db: Queryable, private readonly catalog: Catalog, private readonly schema: string) {}

  /** The identity of the row of `table` whose `column` is `value`. */
  async of(table: string, column: string, value: unknown): Promise<string> {
    if (value === null || value === undefined) return 'null';
    const key = `${table}.${column}`;
    let map = this.maps.get(key);
    if (!map) {
      map = new Map();
      this.maps.set(key, map);
      const info = this.catalog.table(table);
      const rows = await this.db.query<RowData>(`SELECT * FROM ${qid(this.schema)}.${qid(table)}`);
      for (const r of rows) map.set(String(text(r[column])), await this.rowIdentity(info, r));
    }
    return map.get(String(text(value))) ?? `missing:${table}.${column}=${String(text(value))}`;
  }

  async rowIdentity(info: TableInfo, r: RowData): Promise<string> {
    const rule = info.identity;
    if (!rule) throw new Error(`table ${info.name} has no identity`);
    if (rule.kind === 'uuid') return String(text(r[rule.column]));
    if (rule.kind === 'shared') return this.of(rule.refTable, rule.refColumn, r[rule.column]);
    const parts: string[] = [];
    for (const c of rule.columns) {
      const ref = info.refs.get(c);
      parts.push(ref ? await this.of(ref.table, ref.column, r[c]) : String(text(r[c])));
    }
    return encodeIdentity(parts);
  }
}

/** The synced tables of `schema`, by identity, comparable across nodes (t.same). */
export async function dumpByIdentity(
  db: Queryable,
  schema: string,
  tables: readonly string[],
  opts: { keys?: Record<string, readonly string[]>; ignoreColumns?: readonly string[] } = {},
): Promise<Dump> {
  const catalog = await loadCatalog(db, schema, opts.keys ? { keys: opts.keys } : {});
  const ids = new Identities(db, catalog, schema);
  const ignore = new Set(opts.ignoreColumns ?? []);
  const out: Dump = {};
  for (const table of [...tables].sort()) {
    const info = catalog.table(table);
    const rows = await db.query<RowData>(`SELECT * FROM ${qid(schema)}.${qid(table)}`);
    const byId: Array<[string, Record<string, string | null>]> = [];
    for (const r of rows) {
      const row: Record<string, string | null> = {};
      for (const col of info.columns) {
        if (info.localColumns.has(col.name) || col.generated || ignore.has(col.name)) continue;
        const ref = info.refs.get(col.name);
        row[col.name] = ref && r[col.name] !== null ? await ids.of(ref.table, ref.column, r[col.name]) : text(r[col.name]);
      }
      byId.push([await ids.rowIdentity(info, r), row]);
    }
    byId.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    out[table] = Object.fromEntries(byId);
  }
  return out;
}

/** Row counts per table of a dump (short messages in test output). */
export function dumpCounts(d: Dump): Record<string, number> {
  return Object.fromEntries(Object.entries(d).map(([t, rows]) => [t, Object.keys(rows).length]));
}
