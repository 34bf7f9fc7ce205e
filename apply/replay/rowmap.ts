// A stored row → its wire form (the Row a change set would carry): local-id
// columns left out, foreign keys as references to the referenced row's
// identity, values in canonical text or bytes. Used to compare a row with a
// delete's digest and to log conflicts readably.
import type { Queryable } from '../core/db.js';
import type { Catalog, TableInfo } from '../core/catalog.js';
import { stateTable } from '../core/state-schema.js';
import { encodeIdentity } from '../core/identity.js';
import type { Row, Value } from '../core/model.js';
import { selectSql, whereEq } from './sql.js';
import { wireScalar } from './value-compare.js';

type Raw = Readonly<Record<string, unknown>>;

export class RowMapper {
  /** `table\0column\0value` → identity, for this batch */
  private readonly cache = new Map<string, string | null>();

  constructor(
    private readonly catalog: Catalog,
    private readonly stateSchema: string,
  ) {}

  /** Forget what was looked up (a new batch). */
  reset(): void {
    this.cache.clear();
  }

  async toWire(q: Queryable, t: TableInfo, raw: Raw): Promise<Row> {
    const out: Record<string, Value> = {};
    for (const c of t.columns) {
      if (c.generated || t.localColumns.has(c.name)) continue;
      const v = raw[c.name];
      const fk = t.refs.get(c.name);
      if (fk && v !== null && v !== undefined) {
        out[c.name] = { ref: fk.table, id: (await this.identityBy(q, fk.table, fk.column, v)) ?? '' };
      } else {
        out[c.name] = wireScalar(v, c);
      }
    }
    return out;
  }

  /** The identity of a stored row, or null when a row it is built on cannot be named. */
  async identityOf(q: Queryable, t: TableInfo, raw: Raw): Promise<string | null> {
    const rule = t.identity;
    if (!rule) return null;
    switch (rule.kind) {
      case 'uuid': {
        const v = raw[rule.column];
        return v === null || v === undefined ? null : String(v);
      }
      case 'shared':
        return this.identityBy(q, rule.refTable, rule.refColumn, raw[rule.column]);
      case 'natural': {
        const parts: string[] = [];
        for (const c of rule.columns) {
          const fk = t.refs.get(c);
          const v = raw[c];
          const part = fk ? await this.identityBy(q, fk.table, fk.column, v) : keyText(v);
          if (part === null) return null;
          parts.push(part);
        }
        return encodeIdentity(parts);
      }
    }
  }

  /** The identity of the row of `table` whose `column` holds value (a foreign key's target). */
  async identityBy(q: Queryable, table: string, column: string, value: unknown): Promise<string | null> {
    if (value === null || value === undefined) return null;
    const key = `${table}\u0000${column}\u0000${keyText(value)}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const t = this.catalog.table(table);
    const s = selectSql(this.catalog.schema, t, '*', whereEq(t, [[column, value]]), { limit: 1 });
    const rows = await q.query<Record<string, unknown>>(s.sql, s.params);
    let id: string | null = rows[0] ? await this.identityOf(q, t, rows[0]) : null;
    if (id === null && t.primaryKey.length === 1 && t.primaryKey[0] === column) {
      // deleted since: capture kept its identity in the id map
      const m = await q.query<{ identity: string }>(
        `SELECT identity FROM ${stateTable(this.stateSchema, 'idmap')} WHERE tbl = ? AND local_id = ?`,
        [table, keyText(value)],
      );
      id = m[0]?.identity ?? null;
    }
    this.cache.set(key, id);
    return id;
  }
}

function keyText(v: unknown): string {
  if (Buffer.isBuffer(v)) return v.toString('hex');
  return String(v);
}
