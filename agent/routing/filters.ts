// Which tables travel to which peer: one-way tables (config.tables.direction)
// and a child's own include/exclude filter (children[].tables). Pure. A child's
// row filters ride along (Route.rows, attached by the node: agent/rows/).
import { matchGlob } from '../config/tables.js';
import type { Config, TableFilter } from '../config/types.js';
import type { RowRoute } from '../rows/routed.js';

export type PeerRole = 'parent' | 'child';

/** How changes travel toward one peer. */
export interface Route {
  readonly peer: string;
  readonly role: PeerRole;
  /** whether ops on this table go to the peer */
  accepts(table: string): boolean;
  /** true when every table goes (no filter to evaluate) */
  readonly acceptsAll: boolean;
  /** a child's row filters (children[].rows): which ops of each change set go, decided per batch */
  readonly rows?: RowRoute;
}

/** A predicate for a child's table filter (as config/tables.ts reads it), or null when it keeps every table. */
export function tableFilter(f: TableFilter | undefined): ((table: string) => boolean) | null {
  if (!f || (f.include.includes('*') && f.exclude.length === 0)) return null;
  return (t) => f.include.some((p) => matchGlob(p, t)) && !f.exclude.some((p) => matchGlob(p, t));
}

/** The tables configured to flow only `direction`. */
function oneWay(config: Pick<Config, 'tables'>, direction: 'up' | 'down'): ReadonlySet<string> {
  return new Set(Object.entries(config.tables.direction).filter(([, d]) => d === direction).map(([t]) => t));
}

/**
 * The route toward `peer`. Toward the parent, tables set 'down' stay here;
 * toward a child, tables set 'up' stay here and the child's filter applies.
 */
export function routeTo(config: Pick<Config, 'tables' | 'children'>, peer: string, role: PeerRole): Route {
  const blocked = oneWay(config, role === 'parent' ? 'down' : 'up');
  const child = role === 'child' ? config.children.find((c) => c.id === peer) : undefined;
  const own = tableFilter(child?.tables);
  const acceptsAll = blocked.size === 0 && own === null;
  return {
    peer,
    role,
    acceptsAll,
    accepts: (t) => !blocked.has(t) && (own === null || own(t)),
  };
}

/**
 * Which one-way tables may not come from a peer of `role`: 'up' tables come
 * only from children, 'down' tables only from the parent. The sender filters
 * the same way; this holds when the two configs disagree. Returns the table's
 * direction when it is refused, else null.
 */
export function refusedFrom(config: Pick<Config, 'tables'>, role: PeerRole): (table: string) => 'up' | 'down' | null {
  const direction = role === 'parent' ? 'up' : 'down';
  const blocked = oneWay(config, direction);
  return (t) => (blocked.has(t) ? direction : null);
}
