// Which tables travel to which peer: one-way tables (config.tables.direction)
// and a child's own include/exclude filter (children[].tables). Pure.
import type { Config, TableFilter } from '../config/types.js';

export type PeerRole = 'parent' | 'child';

/** How changes travel toward one peer. */
export interface Route {
  readonly peer: string;
  readonly role: PeerRole;
  /** whether ops on this table go to the peer */
  accepts(table: string): boolean;
  /** true when every table goes (no filter to evaluate) */
  readonly acceptsAll: boolean;
}

/** `*` any run of characters, `?` one character; everything else literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** A predicate for a table filter: an empty include list means every table. */
export function tableFilter(f: TableFilter | undefined): ((table: string) => boolean) | null {
  if (!f || (f.include.length === 0 && f.exclude.length === 0)) return null;
  const inc = f.include.map(globToRegExp);
  const exc = f.exclude.map(globToRegExp);
  return (t) => (inc.length === 0 || inc.some((r) => r.test(t))) && !exc.some((r) => r.test(t));
}

/**
 * The route toward `peer`. Toward the parent, tables set 'down' stay here;
 * toward a child, tables set 'up' stay here and the child's filter applies.
 */
export function routeTo(config: Pick<Config, 'tables' | 'children'>, peer: string, role: PeerRole): Route {
  const blocked = role === 'parent' ? 'down' : 'up';
  const oneWay = new Set(Object.entries(config.tables.direction).filter(([, d]) => d === blocked).map(([t]) => t));
  const child = role === 'child' ? config.children.find((c) => c.id === peer) : undefined;
  const own = tableFilter(child?.tables);
  const acceptsAll = oneWay.size === 0 && own === null;
  return {
    peer,
    role,
    acceptsAll,
    accepts: (t) => !oneWay.has(t) && (own === null || own(t)),
  };
}
