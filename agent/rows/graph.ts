// The rule of membership for one child with row filters (children[].rows),
// read from the catalogue's foreign keys. Pure.
//
// - An *owner* table has a filter: its row goes when the expression matches.
// - A *follower* table reaches an owner table through single-column foreign
//   keys (its *edges*): person_name, person_address, patient → person;
//   encounter → patient → person; obs → person. Its row goes when every owner
//   row its edges name matches: a row with several owners (a relationship of
//   two people, an encounter_provider naming a patient's encounter and a
//   provider) goes only where all of them go. An edge that is NULL names no
//   owner; a row whose edges are all NULL belongs to no one and goes
//   everywhere. Edges of a cycle (obs → obs groups, orders ↔ encounter) count
//   only toward a table nearer to the owner, which breaks it.
// - Tables an owner table refers to, directly or through others, are
//   *shared* even when they would follow it (users: person.creator → users,
//   users.person_id → person), and so is every table with no edge to an owner
//   (concept, location, encounter_type): their rows go to every child.
// - A row of an owner or follower table that another row going to the child
//   refers to goes too, so the child's foreign keys hold: a user's person, a
//   provider's person, an encounter another patient's obs names. It goes
//   alone: the rows that follow it do not come with it.

/** What the graph needs of a table (apply/core/catalog.ts TableInfo has it). */
export interface GraphTable {
  readonly name: string;
  readonly column: ReadonlyMap<string, { readonly nullable: boolean }>;
  readonly foreignKeys: readonly { readonly columns: readonly string[]; readonly refTable: string; readonly refColumns: readonly string[] }[];
}

export type TableRole = 'shared' | 'owner' | 'follower';

/** A single-column foreign key: `table.column` → `refTable.refColumn`. */
export interface Edge {
  readonly table: string;
  readonly column: string;
  readonly refTable: string;
  readonly refColumn: string;
  readonly nullable: boolean;
}

export interface RowGraph {
  /** the tables with a filter */
  readonly owners: ReadonlySet<string>;
  role(table: string): TableRole;
  /** a follower's edges toward its owners (none for other tables), in column order */
  edges(table: string): readonly Edge[];
  /** foreign keys other than edges from synced tables into an owner or follower table: the rows they name go with the rows that go */
  referencedBy(table: string): readonly Edge[];
  /** steps from the table to an owner table (0 for an owner table; undefined for a shared one) */
  distance(table: string): number | undefined;
}

function singleColumnEdges(t: GraphTable): Edge[] {
  return t.foreignKeys
    .filter((fk) => fk.columns.length === 1)
    .map((fk) => ({
      table: t.name, column: fk.columns[0]!, refTable: fk.refTable, refColumn: fk.refColumns[0]!, nullable: t.column.get(fk.columns[0]!)?.nullable !== false,
    }));
}

/** Tables reachable from `from` by any foreign key (the tables themselves left out). */
function referenced(tables: ReadonlyMap<string, GraphTable>, from: ReadonlySet<string>): Set<string> {
  const seen = new Set<string>();
  const queue = [...from];
  while (queue.length > 0) {
    const t = tables.get(queue.pop()!);
    if (!t) continue;
    for (const fk of t.foreignKeys) {
      if (from.has(fk.refTable) || seen.has(fk.refTable)) continue;
      seen.add(fk.refTable);
      queue.push(fk.refTable);
    }
  }
  return seen;
}

/**
 * The rule for one child: `owners` are its filtered tables, `synced` the tables
 * it receives (shared rows of other tables name no row it needs).
 */
export function rowGraph(tables: ReadonlyMap<string, GraphTable>, owners: Iterable<string>, synced: ReadonlySet<string>): RowGraph {
  const ownerSet = new Set(owners);
  const refs = referenced(tables, ownerSet);
  // ownership edges: from a table that is neither an owner nor referred to by one
  const candidates = new Map<string, Edge[]>();
  for (const t of tables.values()) {
    if (ownerSet.has(t.name) || refs.has(t.name)) continue;
    const es = singleColumnEdges(t).filter((e) => e.refTable !== t.name);
    if (es.length > 0) candidates.set(t.name, es);
  }
  // shortest distance to an owner table, breadth first: a table is placed in the round after its nearest target
  const distance = new Map<string, number>([...ownerSet].map((o) => [o, 0]));
  for (let d = 1; ; d++) {
    const placed = [...candidates].filter(([name, es]) => !distance.has(name) && es.some((e) => distance.get(e.refTable) === d - 1));
    if (placed.length === 0) break;
    for (const [name] of placed) distance.set(name, d);
  }
  // an edge on a cycle (its target leads back to its table) counts only toward a nearer table
  const reaches = (from: string, to: string): boolean => {
    const seen = new Set([from]);
    const queue = [from];
    while (queue.length > 0) {
      for (const e of candidates.get(queue.pop()!) ?? []) {
        if (e.refTable === to) return true;
        if (distance.has(e.refTable) && !seen.has(e.refTable)) {
          seen.add(e.refTable);
          queue.push(e.refTable);
        }
      }
    }
    return false;
  };
  const edges = new Map<string, Edge[]>();
  for (const [name, d] of distance) {
    if (d === 0) continue;
    edges.set(name, candidates.get(name)!.filter((e) => {
      const to = distance.get(e.refTable);
      return to !== undefined && (to < d || !reaches(e.refTable, name));
    }));
  }
  const role = (t: string): TableRole => (ownerSet.has(t) ? 'owner' : edges.has(t) ? 'follower' : 'shared');
  // a row that goes has every owner its edges name going too: only other keys name rows it needs
  const isEdge = (e: Edge): boolean => (edges.get(e.table) ?? []).some((x) => x.column === e.column);
  const referencedBy = new Map<string, Edge[]>();
  for (const t of tables.values()) {
    if (!synced.has(t.name)) continue;
    for (const e of singleColumnEdges(t)) {
      if (role(e.refTable) === 'shared' || isEdge(e)) continue;
      let list = referencedBy.get(e.refTable);
      if (!list) referencedBy.set(e.refTable, (list = []));
      list.push(e);
    }
  }
  return {
    owners: ownerSet,
    role,
    edges: (t) => edges.get(t) ?? [],
    referencedBy: (t) => referencedBy.get(t) ?? [],
    distance: (t) => distance.get(t),
  };
}

/** Each path from `table` to an owner table, as `a.col → b.col → …` (README, status, tests). */
export function ownerPaths(g: RowGraph, table: string): string[] {
  if (g.role(table) === 'owner') return [table];
  const out: string[] = [];
  for (const e of g.edges(table)) {
    for (const rest of ownerPaths(g, e.refTable)) out.push(`${table}.${e.column} → ${rest}`);
  }
  return out;
}
