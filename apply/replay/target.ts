// Identity strings parsed against the catalogue into the row they name (pure).
// A uuid row is one column value; a shared-key row is the referenced table's
// row; a natural key is its parts, foreign-key parts being identities of the
// referenced rows. Parsing checks the shape; target-resolver.ts turns it into SQL.
import type { Catalog, TableInfo } from '../core/catalog.js';
import { SpokesyncError } from '../core/errors.js';
import { decodeIdentity } from '../core/identity.js';

export type NaturalPart =
  | { readonly column: string; readonly value: string }
  | { readonly column: string; readonly refColumn: string; readonly ref: Target };

export type Target =
  | { readonly kind: 'uuid'; readonly table: TableInfo; readonly id: string; readonly column: string; readonly value: string }
  | {
      readonly kind: 'shared'; readonly table: TableInfo; readonly id: string; readonly column: string;
      readonly refColumn: string; readonly parent: Target;
    }
  | { readonly kind: 'natural'; readonly table: TableInfo; readonly id: string; readonly parts: readonly NaturalPart[] };

/** Longest identity kept in the state tables (VARCHAR(700)). */
export const MAX_IDENTITY = 700;
const MAX_DEPTH = 8;

/** Map key of one row: table and identity. */
export function rowKey(table: string, id: string): string {
  return `${table}\u0000${id}`;
}

export function badChange(message: string): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_BAD_CHANGE', message);
}

/** Parses `id` as an identity of `table`; throws SPOKESYNC_E_UNKNOWN_TABLE or SPOKESYNC_E_BAD_CHANGE. */
export function parseTarget(catalog: Catalog, table: string, id: string, depth = 0): Target {
  const t = catalog.table(table);
  if (typeof id !== 'string' || id === '' || id.length > MAX_IDENTITY) {
    throw badChange(`an identity of table ${t.name} is empty or longer than ${MAX_IDENTITY} characters`);
  }
  if (depth > MAX_DEPTH) throw badChange(`identities of table ${t.name} nest deeper than ${MAX_DEPTH}`);
  const rule = t.identity;
  if (!rule) throw badChange(`table ${t.name} has no identity here, so its rows cannot be named`);
  switch (rule.kind) {
    case 'uuid':
      if (id.startsWith('[')) throw badChange(`an identity of table ${t.name} is not a single value`);
      return { kind: 'uuid', table: t, id, column: rule.column, value: id };
    case 'shared':
      return {
        kind: 'shared', table: t, id, column: rule.column, refColumn: rule.refColumn,
        parent: parseTarget(catalog, rule.refTable, id, depth + 1),
      };
    case 'natural': {
      let parts: string[];
      try {
        parts = decodeIdentity(id, rule.columns.length);
      } catch (e) {
        throw new SpokesyncError('SPOKESYNC_E_BAD_CHANGE', `an identity of table ${t.name} is not a key of ${rule.columns.length} parts`, { cause: e });
      }
      return {
        kind: 'natural', table: t, id,
        parts: rule.columns.map((column, i) => {
          const part = parts[i]!;
          const ref = t.refs.get(column);
          if (!ref) return { column, value: part };
          return { column, refColumn: ref.column, ref: parseTarget(catalog, ref.table, part, depth + 1) };
        }),
      };
    }
  }
}

/** Rows this row cannot exist without (shared-key parents, foreign-key parts of a natural key), as rowKeys. */
export function targetDependencies(target: Target, out: Set<string> = new Set()): Set<string> {
  if (target.kind === 'shared') {
    out.add(rowKey(target.parent.table.name, target.parent.id));
    targetDependencies(target.parent, out);
  } else if (target.kind === 'natural') {
    for (const p of target.parts) {
      if ('ref' in p) {
        out.add(rowKey(p.ref.table.name, p.ref.id));
        targetDependencies(p.ref, out);
      }
    }
  }
  return out;
}
