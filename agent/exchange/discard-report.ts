// Discards reach the parent (apply/FORMAT.md "Discard reports"): a child posts
// the quarantined change sets it gave up and has not yet reported to POST
// /v1/discards before its exchange; the parent records them (node = the child)
// and `spokesync status` there shows them. A parent without the route answers
// 404: the reports wait for one that has it, the exchange goes on.
// USB files carry the same reports (agent/usb/discard-field.ts) and share the recording here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import got from 'got';
import type { Queryable } from '../../apply/core/db.js';
import type { Logger } from '../../apply/core/log.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { ChildConfig, ParentConfig } from '../config/types.js';
import { parentRequestOptions } from './parent-http.js';

export const DISCARDS_PATH = '/v1/discards';
/** reports per request, and the largest body the parent reads */
const PER_REQUEST = 50;
const MAX_BODY = 256 * 1024;

export interface DiscardReport {
  readonly changeId: string;
  readonly origin: string;
  readonly fromPeer: string;
  readonly tables: string;
  readonly quarantinedFor: string;
  readonly tries: number;
  readonly discardedAt: string;
  readonly discardedBy: string;
  readonly why: string;
}

interface RouteServer {
  addRoute(method: string, path: string, handler: (req: IncomingMessage, res: ServerResponse, child: ChildConfig) => Promise<void>): void;
}

/** Child: this node's discards the parent has not acknowledged yet, oldest first. */
export async function unreportedDiscards(db: Queryable, stateSchema: string, node: string, limit = PER_REQUEST): Promise<DiscardReport[]> {
  const rows = await db.query<{
    change_id: string; origin: string; from_peer: string; tables: string; quarantined_for: string; tries: number | string;
    discarded_at: string; discarded_by: string; why: string;
  }>(
    `SELECT change_id, origin, from_peer, tables, quarantined_for, tries, discarded_at, discarded_by, why FROM ${stateTable(stateSchema, 'discards')}
      WHERE node = ? AND reported_at IS NULL ORDER BY discarded_at, change_id LIMIT ${Math.max(0, Math.floor(limit))}`, [node]);
  return rows.map((r) => ({
    changeId: r.change_id, origin: r.origin, fromPeer: r.from_peer, tables: r.tables, quarantinedFor: r.quarantined_for,
    tries: Number(r.tries), discardedAt: r.discarded_at, discardedBy: r.discarded_by, why: r.why,
  }));
}

/** Child: marks these discards as taken by the parent; returns how many were still unreported. */
export async function markReported(db: Queryable, stateSchema: string, node: string, changeIds: readonly string[]): Promise<number> {
  if (changeIds.length === 0) return 0;
  const { affectedRows } = await db.exec(
    `UPDATE ${stateTable(stateSchema, 'discards')} SET reported_at = UTC_TIMESTAMP(6)
      WHERE node = ? AND reported_at IS NULL AND change_id IN (${changeIds.map(() => '?').join(', ')})`, [node, ...changeIds]);
  return affectedRows;
}

/** Child: posts this node's unreported discards to the parent; marks those it took. Nothing unreported: no request, no write. */
export async function reportDiscards(db: Queryable, stateSchema: string, node: string, parent: ParentConfig, log: Logger): Promise<number> {
  const reports = await unreportedDiscards(db, stateSchema, node);
  if (reports.length === 0) return 0;
  const res = await got(`${parent.url.replace(/\/+$/, '')}${DISCARDS_PATH}`, {
    ...parentRequestOptions(parent), method: 'POST', json: { node, discards: reports }, timeout: { request: parent.timeout }, responseType: 'text',
  });
  if (res.statusCode !== 200) {
    log.warn('the parent did not take the discard reports; they are sent again at the next exchange', { status: res.statusCode, discards: reports.length });
    return 0;
  }
  await markReported(db, stateSchema, node, reports.map((r) => r.changeId));
  return reports.length;
}

/**
 * Parent: records a child's discard reports under the child's id (one already
 * here is ignored, so a report sent twice is recorded and logged once); returns how many were new.
 */
export async function recordDiscards(db: Queryable, stateSchema: string, child: string, reports: readonly DiscardReport[], log: Logger): Promise<number> {
  const table = stateTable(stateSchema, 'discards');
  let added = 0;
  for (const r of reports) {
    const { affectedRows } = await db.exec(
      `INSERT IGNORE INTO ${table} (node, change_id, origin, from_peer, tables, quarantined_for, tries, discarded_at, discarded_by, why, reported_at, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6), NULL)`,
      [child, r.changeId, r.origin, r.fromPeer, r.tables, r.quarantinedFor, r.tries, r.discardedAt, r.discardedBy, r.why],
    );
    if (affectedRows > 0) {
      added++;
      log.warn('a child discarded a quarantined change set', { child, change: r.changeId, tables: r.tables, by: r.discardedBy, why: r.why });
    }
  }
  return added;
}

/** Parent: the change ids of the discards recorded for `child`, most recently recorded first. */
export async function recordedDiscards(db: Queryable, stateSchema: string, child: string, limit: number): Promise<string[]> {
  const rows = await db.query<{ change_id: string }>(
    `SELECT change_id FROM ${stateTable(stateSchema, 'discards')} WHERE node = ?
      ORDER BY reported_at DESC, change_id LIMIT ${Math.max(0, Math.floor(limit))}`, [child]);
  return rows.map((r) => r.change_id);
}

/** Parent: adds POST /v1/discards to the exchange server. */
export function registerDiscardRoute(server: RouteServer, deps: { db: Queryable; stateSchema: string; log: Logger }): void {
  server.addRoute('POST', DISCARDS_PATH, async (req, res, child) => {
    const answer = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    let text = '';
    for await (const c of req) {
      text += (c as Buffer).toString('utf8');
      if (text.length > MAX_BODY) return answer(413, 'SPOKESYNC_E_HTTP: discard reports too large\n');
    }
    const reports = parseReports(text);
    if (!reports) return answer(400, 'SPOKESYNC_E_XML: malformed discard reports\n');
    await recordDiscards(deps.db, deps.stateSchema, child.id, reports, deps.log);
    answer(200, `${reports.length}\n`);
  });
}

const TEXT = (n: number) => (v: unknown): v is string => typeof v === 'string' && v.length <= n;
const FIELDS: ReadonlyArray<[keyof DiscardReport, (v: unknown) => boolean]> = [
  ['changeId', TEXT(120)], ['origin', TEXT(64)], ['fromPeer', TEXT(64)], ['tables', TEXT(4000)], ['quarantinedFor', TEXT(1000)],
  ['tries', (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 32],
  ['discardedAt', (v) => typeof v === 'string' && /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?$/.test(v)],
  ['discardedBy', TEXT(255)], ['why', TEXT(1000)],
];

function parseReports(text: string): DiscardReport[] | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  return validReports((body as { discards?: unknown } | null)?.discards);
}

/** The list as discard reports, or null when it is not one (at most 50, every field as in the state schema). */
export function validReports(list: unknown): DiscardReport[] | null {
  if (!Array.isArray(list) || list.length > PER_REQUEST) return null;
  for (const r of list) {
    if (r === null || typeof r !== 'object') return null;
    for (const [k, ok] of FIELDS) if (!ok((r as Record<string, unknown>)[k])) return null;
  }
  return list as DiscardReport[];
}
