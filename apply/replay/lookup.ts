// What a group needs to know before it runs, in one round trip at the start
// of its transaction: which change ids are in the ledger or in quarantine, the
// stored versions of every row the group changes, and the tombstones of the rows it only inserts.
import type { Queryable } from '../core/db.js';
import { stateTable } from '../core/state-schema.js';
import { rowKey } from './target.js';
import type { Versions } from './versions.js';

export interface Known {
  readonly ledger: Set<string>;
  readonly quarantine: Set<string>;
}

export async function groupLookup(
  tx: Queryable, stateSchema: string, ids: readonly string[], versions: Versions, rows: readonly (readonly [string, string, boolean])[],
): Promise<Known> {
  const out: Known = { ledger: new Set(), quarantine: new Set() };
  // rows only inserted are normally not here: only their tombstones are read now, the rest if they are here (readExisting)
  const changed = new Set(rows.filter(([, , insert]) => !insert).map(([table, id]) => rowKey(table, id)));
  const unread = versions.unread(rows.filter(([table, id]) => changed.has(rowKey(table, id))).map(([table, id]) => [table, id] as const));
  const tombs = versions.tombstonesUnread(rows.filter(([table, id]) => !changed.has(rowKey(table, id))).map(([table, id]) => [table, id] as const));
  const parts: string[] = [];
  const params: unknown[] = [];
  const list = (n: number): string => Array(n).fill('?').join(', ');
  if (ids.length > 0) {
    parts.push(`SELECT 'l' AS src, change_id AS a, NULL AS b, NULL AS c, NULL AS d FROM ${stateTable(stateSchema, 'ledger')} WHERE change_id IN (${list(ids.length)})`);
    parts.push(`SELECT 'q', change_id, NULL, NULL, NULL FROM ${stateTable(stateSchema, 'quarantine')} WHERE change_id IN (${list(ids.length)})`);
    params.push(...ids, ...ids);
  }
  for (const [table, tids] of unread) {
    const q = versions.query(`v${table}`, table, tids);
    parts.push(q.sql);
    params.push(...q.params);
  }
  for (const [table, tids] of tombs) {
    const q = versions.tombstoneQuery(`t${table}`, table, tids);
    parts.push(q.sql);
    params.push(...q.params);
  }
  if (parts.length === 0) return out;
  const result = await tx.query<{ src: string; a: string; b: string | null; c: string | null; d: string | null }>(parts.join('\nUNION ALL '), params);
  const found: { tbl: string; identity: string; col: string; hlc: string; node: string }[] = [];
  const tombsFound: typeof found = [];
  for (const r of result) {
    if (r.src === 'l') out.ledger.add(r.a);
    else if (r.src === 'q') out.quarantine.add(r.a);
    else (r.src[0] === 't' ? tombsFound : found).push({ tbl: r.src.slice(1), identity: r.a, col: r.b ?? '', hlc: String(r.c), node: r.d ?? '' });
  }
  versions.absorb(unread, found);
  versions.absorbTombstones(tombs, tombsFound);
  return out;
}
