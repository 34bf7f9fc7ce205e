// What a group needs to know before it runs, in one round trip at the start
// of its transaction: which change ids are in the ledger or in quarantine, and
// the stored versions of every row the group touches (with the insert versions in idmap and insert_ranges).
import type { Queryable } from '../core/db.js';
import { stateTable } from '../core/state-schema.js';
import type { Versions } from './versions.js';

export interface Known {
  readonly ledger: Set<string>;
  readonly quarantine: Set<string>;
}

export async function groupLookup(
  tx: Queryable, stateSchema: string, ids: readonly string[], versions: Versions, rows: readonly (readonly [string, string, boolean])[],
): Promise<Known> {
  const out: Known = { ledger: new Set(), quarantine: new Set() };
  const unread = versions.unread(rows.map(([table, id]) => [table, id] as const));
  // rows only inserted are normally not here: their insert versions kept as runs are read if they are (readInsertRanges)
  const changed = new Set(rows.filter(([, , insert]) => !insert).map(([table, id]) => `${table}\u0000${id}`));
  const parts: string[] = [];
  const params: unknown[] = [];
  const list = (n: number): string => Array(n).fill('?').join(', ');
  if (ids.length > 0) {
    parts.push(`SELECT 'l' AS src, change_id AS a, NULL AS b, NULL AS c, NULL AS d FROM ${stateTable(stateSchema, 'ledger')} WHERE change_id IN (${list(ids.length)})`);
    parts.push(`SELECT 'q', change_id, NULL, NULL, NULL FROM ${stateTable(stateSchema, 'quarantine')} WHERE change_id IN (${list(ids.length)})`);
    params.push(...ids, ...ids);
  }
  for (const [table, tids] of unread) {
    const q = versions.query(`v${table}`, table, tids, tids.filter((id) => changed.has(`${table}\u0000${id}`)));
    parts.push(q.sql);
    params.push(...q.params);
  }
  if (parts.length === 0) return out;
  const result = await tx.query<{ src: string; a: string; b: string | null; c: string | null; d: string | null }>(parts.join('\nUNION ALL '), params);
  const found: { tbl: string; identity: string; col: string; hlc: string; node: string }[] = [];
  for (const r of result) {
    if (r.src === 'l') out.ledger.add(r.a);
    else if (r.src === 'q') out.quarantine.add(r.a);
    else found.push({ tbl: r.src.slice(1), identity: r.a, col: r.b ?? '', hlc: String(r.c), node: r.d ?? '' });
  }
  versions.absorb(unread, found);
  return out;
}
