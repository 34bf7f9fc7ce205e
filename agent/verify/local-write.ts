// Writes rows given in their wire form (identities for foreign keys) into this
// node's application schema, as plain SQL in the caller's transaction, so that
// capture journals them like any local write: a row inserted, a row set to
// other values, a row deleted. Used by repair for the parent's versions.
import type { Catalog } from '../../apply/core/catalog.js';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { isRef, type Row } from '../../apply/core/model.js';
import { Layers } from '../../apply/replay/layers.js';
import { deleteSql, insertSql, rowWhere, selectSql, updateSql } from '../../apply/replay/sql.js';
import { parseTarget } from '../../apply/replay/target.js';
import { Missing, Resolver } from '../../apply/replay/target-resolver.js';
import { bindValue, type LocalValue } from '../../apply/replay/value-compare.js';

export class LocalWriter {
  private readonly resolver: Resolver;

  constructor(private readonly tx: Queryable, private readonly catalog: Catalog) {
    this.resolver = new Resolver(catalog.schema, new Layers<LocalValue>());
    this.resolver.attach(tx);
  }

  private cannot(table: string, id: string, why: string): SpokesyncError {
    return new SpokesyncError('SPOKESYNC_E_APPLY', `cannot repair the ${table} row ${id}: ${why}`, {
      fix: 'Nothing was changed. Repair the rows it depends on first (run `spokesync verify` to see them), or re-provision this node.',
    });
  }

  /** The local values of a wire row's columns (references looked up here). */
  private async values(table: string, id: string, row: Row): Promise<[string, LocalValue][]> {
    const t = this.catalog.table(table);
    const out: [string, LocalValue][] = [];
    for (const [c, v] of Object.entries(row)) {
      if (!t.column.has(c)) throw this.cannot(table, id, `column ${c} is not here`);
      if (v !== null && isRef(v)) {
        const fk = t.refs.get(c);
        if (!fk) throw this.cannot(table, id, `column ${c} is a reference there and not here`);
        const found = await this.resolver.value(parseTarget(this.catalog, v.ref, v.id), fk.column);
        if (found instanceof Missing) throw this.cannot(table, id, `it refers to the ${found.table} row ${found.id}, which is not here`);
        out.push([c, found]);
      } else {
        out.push([c, v === null ? null : bindValue(v, t.column.get(c))]);
      }
    }
    return out;
  }

  /** The stored row, locked; null when it is not here. */
  private async stored(table: string, id: string): Promise<{ raw: Record<string, unknown>; where: ReturnType<typeof rowWhere> } | null> {
    const t = this.catalog.table(table);
    const where = await this.resolver.where(parseTarget(this.catalog, table, id));
    if (where instanceof Missing) return null;
    const s = selectSql(this.catalog.schema, t, '*', where, { forUpdate: true, limit: 2 });
    const rows = await this.tx.query<Record<string, unknown>>(s.sql, s.params);
    if (rows.length > 1) throw this.cannot(table, id, 'its identity names several rows here');
    return rows[0] ? { raw: rows[0], where: rowWhere(t, rows[0], where) } : null;
  }

  async insert(table: string, id: string, row: Row): Promise<void> {
    const t = this.catalog.table(table);
    const values = await this.values(table, id, row);
    const target = parseTarget(this.catalog, table, id);
    if (target.kind === 'shared') {
      const key = await this.resolver.value(target.parent, target.refColumn);
      if (key instanceof Missing) throw this.cannot(table, id, `the ${key.table} row it shares its key with is not here`);
      values.push([target.column, key]);
    }
    const s = insertSql(this.catalog.schema, t, values.map(([c]) => c), [values.map(([, v]) => v)]);
    await this.tx.exec(s.sql, s.params);
  }

  async update(table: string, id: string, row: Row): Promise<void> {
    const t = this.catalog.table(table);
    const at = await this.stored(table, id);
    if (!at) throw this.cannot(table, id, 'it is not here any more');
    const s = updateSql(this.catalog.schema, t, await this.values(table, id, row), at.where);
    await this.tx.exec(s.sql, s.params);
  }

  async delete(table: string, id: string): Promise<void> {
    const t = this.catalog.table(table);
    const at = await this.stored(table, id);
    if (!at) throw this.cannot(table, id, 'it is not here any more');
    const s = deleteSql(this.catalog.schema, t, at.where);
    await this.tx.exec(s.sql, s.params);
    this.resolver.forget(table, id);
  }
}
