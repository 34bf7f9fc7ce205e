// Checks of the row filters (children[].rows): each names a table that goes to
// that child, and its expression runs against that table at this node's server
// (facts.ts ran it once). Pure.
import { childTables } from '../config/tables.js';
import type { Config } from '../config/types.js';
import type { Facts } from './facts.js';
import { error, type Problem } from './problem.js';

export function rowFilterProblems(facts: Facts, config: Config): Problem[] {
  const cat = facts.catalog;
  if (!cat) return [];
  const out: Problem[] = [];
  config.children.forEach((c, i) => {
    if (!c.rows) return;
    const goes = new Set(childTables(config, c.id, cat));
    for (const table of Object.keys(c.rows)) {
      const key = `children[${i}].rows.${table}`;
      if (!cat.tables.has(table)) {
        out.push(error('children.rows', `${key}: ${table} is not a table of schema ${config.database.schema}`, `correct the table name in ${key}`, table));
        continue;
      }
      if (!goes.has(table)) {
        out.push(error('children.rows', `${key}: ${table} does not sync with ${c.id} (tables, children[${i}].tables)`,
          `include ${table} in tables.include (and children[${i}].tables), or remove ${key}`, table));
        continue;
      }
      const probe = facts.rowFilters?.find((f) => f.child === i && f.table === table);
      if (probe?.error) {
        out.push(error('children.rows', `${key}: the server cannot run the expression against ${table}: ${probe.error}`,
          `correct the expression (it is evaluated as SELECT ... FROM ${table} WHERE (expression), other tables named without their schema)`, table));
      }
    }
  });
  return out;
}
