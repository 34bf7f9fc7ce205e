// What a journal row keeps of the rows its change set deletes beyond the wire
// form: each deleted row's references (column → referenced row), so that row
// filters can route the delete by the owners the row had (agent/rows/). The
// wire carries only a delete's identity and digest. Pure.
import type { Ref } from '../../apply/core/model.js';
import type { DeletedRefs } from '../capture/mapper.js';

type Stored = [table: string, id: string, refs: Record<string, [table: string, id: string]>][];

/** The journal column's text (null when nothing was deleted). */
export function encodeDeleted(list: readonly DeletedRefs[]): string | null {
  if (list.length === 0) return null;
  const out: Stored = list.map((d) => [d.table, d.id, Object.fromEntries(Object.entries(d.refs).map(([c, r]) => [c, [r.ref, r.id]]))]);
  return JSON.stringify(out);
}

/** table → identity → references; empty for a journal row without the column (journaled before it existed, or no delete). */
export function decodeDeleted(text: string | null | undefined): Map<string, Map<string, Record<string, Ref>>> {
  const out = new Map<string, Map<string, Record<string, Ref>>>();
  if (!text) return out;
  for (const [table, id, refs] of JSON.parse(text) as Stored) {
    let m = out.get(table);
    if (!m) out.set(table, (m = new Map()));
    m.set(id, Object.fromEntries(Object.entries(refs).map(([c, [ref, rid]]) => [c, { ref, id: rid }])));
  }
  return out;
}
