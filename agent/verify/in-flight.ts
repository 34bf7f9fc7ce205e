// Which rows are in flight at a node toward one peer: named by a change set
// that has not reached the peer yet (journaled here, not acknowledged by the
// peer) or that waits here (quarantined, held). Such a row may differ between
// the two nodes for a while without anything being wrong, so verify reports it
// apart from real differences. Only the rows asked about are looked for.
import type { Catalog } from '../../apply/core/catalog.js';
import type { Queryable } from '../../apply/core/db.js';
import { encodeIdentity } from '../../apply/core/identity.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { readHeld } from '../../apply/replay/held.js';
import { readQuarantine } from '../../apply/replay/quarantine.js';
import { bodyXml } from '../journal/body.js';
import { getCursor } from '../routing/cursors.js';

const PAGE = 200;

/**
 * The identity as the network writes it (encodeIdentity), from the SQL form
 * row-sql.ts computes (the server's JSON for a key tuple).
 */
export function canonicalIdentity(catalog: Catalog, table: string, sqlForm: string, depth = 0): string {
  const t = catalog.table(table);
  const rule = t.identity;
  if (!rule || rule.kind === 'uuid' || depth > 8) return sqlForm;
  if (rule.kind === 'shared') return canonicalIdentity(catalog, rule.refTable, sqlForm, depth + 1);
  if (rule.columns.length === 1 && !sqlForm.startsWith('[')) {
    const fk = t.refs.get(rule.columns[0]!);
    return fk ? canonicalIdentity(catalog, fk.table, sqlForm, depth + 1) : sqlForm;
  }
  let parts: unknown;
  try {
    parts = JSON.parse(sqlForm);
  } catch {
    return sqlForm;
  }
  if (!Array.isArray(parts) || !parts.every((p) => typeof p === 'string')) return sqlForm;
  return encodeIdentity((parts as string[]).map((p, i) => {
    const fk = t.refs.get(rule.columns[i] ?? '');
    return fk ? canonicalIdentity(catalog, fk.table, p, depth + 1) : p;
  }));
}

/** table → identities (canonical) */
export type RowSet = Map<string, Set<string>>;

function note(found: RowSet, wanted: RowSet | null, body: Buffer | string): void {
  let cs;
  try {
    cs = decodeChangeSet(Buffer.isBuffer(body) ? bodyXml(body) : body);
  } catch {
    // a body that does not read names no row: the caller's other checks still hold
    return;
  }
  for (const op of cs.ops) {
    if (wanted && !wanted.get(op.table)?.has(op.id)) continue;
    let ids = found.get(op.table);
    if (!ids) found.set(op.table, (ids = new Set()));
    ids.add(op.id);
  }
}

const touches = (tables: readonly string[], wanted: RowSet | null): boolean => wanted === null || tables.some((t) => wanted.has(t));

/** Of the `wanted` rows (null: any row), those in flight here toward `peer`. */
export async function rowsInFlight(db: Queryable, stateSchema: string, peer: string, wanted: RowSet | null): Promise<RowSet> {
  const found: RowSet = new Map();
  if (wanted?.size === 0) return found;
  let after = (await getCursor(db, stateSchema, peer)).ackedSeq;
  for (;;) {
    const rows = await db.query<{ seq: string | number; tables: string; body: Buffer }>(
      `SELECT seq, tables, body FROM ${stateTable(stateSchema, 'journal')}
        WHERE seq > ? AND (from_peer IS NULL OR from_peer <> ?) ORDER BY seq LIMIT ${PAGE}`, [after, peer]);
    for (const r of rows) if (touches(r.tables.split(','), wanted)) note(found, wanted, r.body);
    if (rows.length < PAGE) break;
    after = String(rows[rows.length - 1]!.seq);
  }
  for await (const q of readQuarantine(db, stateSchema, Date.now())) note(found, wanted, q.body);
  for await (const h of readHeld(db, stateSchema)) if (touches(h.tables, wanted)) note(found, wanted, h.body);
  return found;
}
