// Which tables sync: the include/exclude globs of the config applied to the
// live catalogue. Pure. Table names are matched case-sensitively, as MariaDB
// on Linux stores them (lower_case_table_names=0).
import type { Catalog } from '../../apply/core/catalog.js';
import type { Config, Direction, TableFilter } from './types.js';

/** Whether a pattern has glob characters (`*` any run, `?` one character). */
export function isGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

const compiled = new Map<string, RegExp>();

export function matchGlob(pattern: string, name: string): boolean {
  let re = compiled.get(pattern);
  if (!re) {
    const body = pattern.replace(/[.+^${}()|[\]\\-]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, 's');
    compiled.set(pattern, re);
  }
  return re.test(name);
}

/** The names that a filter keeps: matched by some include and by no exclude, sorted. */
export function filterTables(names: Iterable<string>, filter: TableFilter): string[] {
  const out: string[] = [];
  for (const name of names) {
    if (filter.include.some((p) => matchGlob(p, name)) && !filter.exclude.some((p) => matchGlob(p, name))) out.push(name);
  }
  return out.sort();
}

/** The application tables this node syncs (the state schema never does). */
export function syncedTables(config: Config, catalog: Catalog): string[] {
  if (catalog.schema === config.database.stateSchema) return [];
  return filterTables(catalog.tables.keys(), config.tables);
}

/** The synced tables that go to one child: its own filter on top of `tables`. */
export function childTables(config: Config, childId: string, catalog: Catalog): string[] {
  const synced = syncedTables(config, catalog);
  const child = config.children.find((c) => c.id === childId);
  return child?.tables ? filterTables(synced, child.tables) : synced;
}

/** Patterns that match none of the names (a literal name here is most likely a typo). */
export function unmatchedPatterns(patterns: readonly string[], names: Iterable<string>): string[] {
  const list = [...names];
  return patterns.filter((p) => !list.some((n) => matchGlob(p, n)));
}

/** The direction a table syncs in: tables.direction, or `both`. */
export function tableDirection(config: Config, table: string): Direction {
  return config.tables.direction[table] ?? 'both';
}
