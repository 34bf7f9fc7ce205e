// A parent keeps the latest status report of every node below it (state table
// `node_reports`), as each child passes them up, and passes them on to its own
// parent, so the root knows every node at any depth. A child may report only
// on itself and the nodes below it (exchange/origins.ts, the rule for change
// sets): an entry about this node, the parent, a sibling or a node of another
// branch is dropped and logged; the rest of the report is kept.
import type { Db, Queryable } from '../../apply/core/db.js';
import type { Logger } from '../../apply/core/log.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { unlogged } from '../../apply/core/unlogged.js';
import { sqlTime } from '../../apply/replay/value-compare.js';
import type { Origins } from '../exchange/origins.js';
import type { HistoryEntry } from './history.js';
import { RELAYED_HISTORY, readNodeReport, type ReportEntry } from './report-wire.js';
import type { NodeReport } from './report.js';
import { isoOf } from './time.js';

/** Most nodes kept: reports about further nodes are dropped, with a log line. */
export const MAX_STORED_NODES = 5000;

/** A stored report of a node below this one. */
export interface StoredReport {
  readonly node: string;
  /** the child it came through */
  readonly via: string;
  readonly parent: string;
  readonly report: NodeReport;
  /** its last successful exchange with its parent (ISO 8601), as that parent saw it */
  readonly seenAt: string | null;
  readonly clockOffsetMs: number | null;
  readonly history: readonly HistoryEntry[];
  /** when this node took it (ISO 8601) */
  readonly receivedAt: string;
}

export interface StoreContext {
  readonly db: Db;
  readonly stateSchema: string;
  readonly origins: Origins;
  readonly log: Logger;
}

/** How a report arrived. */
export interface Arrival {
  readonly receivedAt: Date;
  /** the round went well: the child was seen then */
  readonly ok: boolean;
  /** the report was made just before it arrived, so its time tells the child's clock (not so in a USB file) */
  readonly clockKnown: boolean;
}

/** Keeps the entries `child` sent (the first is the child's own). Returns the nodes kept. */
export async function storeReports(ctx: StoreContext, child: string, self: string, entries: readonly ReportEntry[], arrival: Arrival): Promise<string[]> {
  const { receivedAt, ok } = arrival;
  const { db, stateSchema, log } = ctx;
  const [own, ...below] = entries;
  if (!own || own.report.node !== child) {
    log.warn('status report refused: its first node is not the child that sent it', { child, node: own?.report.node ?? null });
    return [];
  }
  const seen = new Set<string>([child]);
  const unique = below.filter((e) => !seen.has(e.report.node) && seen.add(e.report.node));
  const { accepted, refused } = await ctx.origins.claim(child, unique.map((e) => e.report.node));
  if (refused.length > 0) {
    log.warn('status report entries refused: a child reports only on itself and the nodes below it', {
      child, refused: refused.slice(0, 10), count: refused.length,
      fix: 'if the tree was changed on purpose (a node moved under another parent), delete its row from the origins table here; otherwise check who holds this child\'s token',
    });
  }
  const ok$ = new Set(accepted);
  const table = stateTable(stateSchema, 'node_reports');
  const [{ n } = { n: 0 }] = await db.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${table}`);
  let room = MAX_STORED_NODES - Number(n);
  const existing = new Set((await db.query<{ node: string }>(`SELECT node FROM ${table} WHERE via = ?`, [child])).map((r) => r.node));
  const rows: unknown[][] = [];
  const at = sqlTime(receivedAt.getTime());
  const add = (node: string, parent: string, report: NodeReport, seenAt: string | null, offset: number | null, history: readonly HistoryEntry[] | null): void => {
    if (!existing.has(node) && room-- <= 0) return;
    rows.push([node, child, parent, JSON.stringify(report), seenAt, offset, history === null ? null : JSON.stringify(history.slice(0, RELAYED_HISTORY)), at]);
  };
  add(child, self, { ...own.report, parent: self }, ok ? at : null, arrival.clockKnown ? Date.parse(own.report.at) - receivedAt.getTime() : null, null);
  const known = new Set([child, ...accepted]);
  let full = 0;
  for (const e of unique) {
    if (!ok$.has(e.report.node)) continue;
    const before = rows.length;
    // a parent outside the reported branch is not believed: the node hangs under the child
    const parent = e.report.parent !== null && known.has(e.report.parent) && e.report.parent !== e.report.node ? e.report.parent : child;
    add(e.report.node, parent, { ...e.report, parent }, e.seenAt ? sqlTime(Date.parse(e.seenAt)) : null, e.clockOffsetMs ?? null, e.history ?? []);
    if (rows.length === before) full++;
  }
  if (full > 0) log.warn('status reports not kept: this node keeps reports of at most MAX_STORED_NODES nodes', { child, notKept: full, max: MAX_STORED_NODES });
  await unlogged(db, async (q) => {
    for (let i = 0; i < rows.length; i += 200) {
      const part = rows.slice(i, i + 200);
      await q.exec(
        `INSERT INTO ${table} (node, via, parent, report, seen_at, clock_offset_ms, history, received_at)
         VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
         ON DUPLICATE KEY UPDATE via = VALUES(via), parent = VALUES(parent), report = VALUES(report),
           seen_at = COALESCE(VALUES(seen_at), seen_at), clock_offset_ms = VALUES(clock_offset_ms),
           history = VALUES(history), received_at = VALUES(received_at)`,
        part.flat(),
      );
    }
  });
  return rows.map((r) => r[0] as string);
}

/** Every stored report, nearest first (a child before the nodes below it). */
export async function storedReports(db: Queryable, stateSchema: string): Promise<StoredReport[]> {
  const rows = await db.query<{
    node: string; via: string; parent: string; report: string; seen_at: string | null; clock_offset_ms: number | string | null;
    history: string | null; received_at: string;
  }>(`SELECT node, via, parent, report, seen_at, clock_offset_ms, history, received_at FROM ${stateTable(stateSchema, 'node_reports')} ORDER BY via, node`);
  const out: StoredReport[] = [];
  for (const r of rows) {
    let report: NodeReport;
    try {
      report = readNodeReport(JSON.parse(r.report) as Record<string, unknown>);
    } catch {
      continue;
    }
    let history: HistoryEntry[];
    try {
      history = r.history === null ? [] : (JSON.parse(r.history) as HistoryEntry[]);
    } catch {
      history = [];
    }
    out.push({
      node: r.node, via: r.via, parent: r.parent, report, seenAt: isoOf(r.seen_at),
      clockOffsetMs: r.clock_offset_ms === null ? null : Number(r.clock_offset_ms), history, receivedAt: isoOf(r.received_at) ?? '',
    });
  }
  // a child first, then by depth along parent links
  const depth = new Map<string, number>();
  const byNode = new Map(out.map((s) => [s.node, s]));
  const depthOf = (n: string, guard = 0): number => {
    const d = depth.get(n);
    if (d !== undefined) return d;
    const s = byNode.get(n);
    const v = !s || s.node === s.via || guard > 64 ? 0 : depthOf(s.parent, guard + 1) + 1;
    depth.set(n, v);
    return v;
  };
  return out.sort((a, b) => depthOf(a.node) - depthOf(b.node) || (a.node < b.node ? -1 : 1));
}
