// The row filters of one child, ready to ask (null for a child without `rows`).
import type { Catalog } from '../../apply/core/catalog.js';
import { childTables } from '../config/tables.js';
import type { ChildConfig, Config } from '../config/types.js';
import { rowGraph } from './graph.js';
import { keyOf, type Filters } from './membership-sql.js';

/**
 * `everyTable`: rows of every table name the rows they need (a snapshot copies
 * every table); otherwise only rows of the tables that sync with the child.
 */
export function childFilters(config: Config, child: ChildConfig, catalog: Catalog, everyTable = false): Filters | null {
  if (!child.rows) return null;
  const synced = new Set(everyTable ? catalog.tables.keys() : childTables(config, child.id, catalog));
  return {
    schema: catalog.schema, graph: rowGraph(catalog.tables, Object.keys(child.rows), synced), exprs: child.rows,
    key: (t) => keyOf(catalog.table(t)),
  };
}
