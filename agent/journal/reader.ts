// The journal reader: what is pending for one peer. One journal, one cursor per
// peer; rows are streamed in pages (metadata first, bodies only for rows that go),
// never the whole journal. A row never goes back to the peer it came from; a row
// touching tables the peer does not take goes without those ops, or not at all;
// toward a child with row filters, without the ops whose rows do not belong to
// it, or not at all (agent/rows/routed.ts).
import type { Queryable } from '../../apply/core/db.js';
import { bodyLengthSql, bodyXml } from './body.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { Route } from '../routing/filters.js';
import type { RoutedItem } from '../rows/routed.js';
import { isLeaveOrigin } from '../rows/origins.js';

/** One journal row as it goes into a batch: our seq and the <cs> element. */
export interface Outgoing {
  readonly seq: string;
  readonly body: string;
}

export interface Caps {
  readonly records: number;
  readonly bytes: number;
}

export interface PendingBatch {
  readonly entries: Outgoing[];
  /** sum of body bytes */
  readonly bytes: number;
  /** the caps stopped the batch while more rows were waiting */
  readonly more: boolean;
  /**
   * every row in (after, skipTo] is not for this peer, so its cursor may move
   * there without the peer acking anything ('0' when there is nothing to skip)
   */
  readonly skipTo: string;
}

/** Drops the ops on tables the peer does not take; null when nothing remains. */
export type Trim = (body: string, accepts: (table: string) => boolean) => string | null;

export type Decision = 'skip' | 'send' | 'trim';

/**
 * A peer restored from a backup gets back its own change sets that it had sent
 * us (agent/exchange/recovery.ts): those of our journal after `from` stamped up to `hlc`.
 */
export interface Resend {
  readonly from: string;
  readonly hlc: string;
}

interface MetaRow {
  seq: string | number;
  from_peer: string | null;
  origin: string;
  hlc: string | number;
  tables: string;
  len: string | number;
  /** a fill or leave made here for one filtered child: that child (agent/rows/fill.ts) */
  to_peer?: string | null;
}

/** Whether a row that came from `peer` goes back to it: its own change set, lost when it was restored. */
function goesBack(row: { seq?: string | number; origin?: string; hlc?: string | number }, peer: string, resend: Resend | undefined): boolean {
  return resend !== undefined && row.origin === peer && row.seq !== undefined && row.hlc !== undefined &&
    BigInt(row.seq) > BigInt(resend.from) && BigInt(row.hlc) <= BigInt(resend.hlc);
}

/** What to do with one journal row for this route. Pure. */
export function decide(
  row: { from_peer: string | null; tables: string; seq?: string | number; origin?: string; hlc?: string | number; to_peer?: string | null },
  route: Route, resend?: Resend,
): Decision {
  if (row.from_peer === route.peer && !goesBack(row, route.peer, resend)) return 'skip';
  // a fill or leave made here goes to its child alone; a leave applied here goes no further
  if (row.to_peer !== undefined && row.to_peer !== null) {
    if (row.to_peer !== route.peer) return 'skip';
  } else if (row.origin !== undefined && isLeaveOrigin(row.origin)) return 'skip';
  if (route.acceptsAll) return 'send';
  const tables = row.tables.split(',').filter((t) => t.length > 0);
  const passing = tables.filter((t) => route.accepts(t)).length;
  if (passing === 0) return 'skip';
  return passing === tables.length ? 'send' : 'trim';
}

const PAGE = 200;

interface Chosen {
  readonly seq: string;
  readonly decision: Decision;
  readonly len: number;
  /** a fill or leave made for this peer: it goes as it is */
  readonly made?: boolean;
}

export class JournalReader {
  private readonly journal: string;
  private readonly fills: string;
  constructor(
    private readonly db: Queryable,
    stateSchema: string,
    private readonly trim: Trim,
    private readonly pageSize = PAGE,
  ) {
    this.journal = stateTable(stateSchema, 'journal');
    this.fills = stateTable(stateSchema, 'fills');
  }

  private async page(after: string, limit: number): Promise<MetaRow[]> {
    return this.db.query<MetaRow>(
      `SELECT j.seq, j.from_peer, j.origin, j.hlc, j.tables, ${bodyLengthSql('j.body')} AS len, f.peer AS to_peer
         FROM ${this.journal} j LEFT JOIN ${this.fills} f ON f.change_id = j.change_id WHERE j.seq > ? ORDER BY j.seq LIMIT ?`,
      [after, limit],
    );
  }

  /**
   * The bodies of these rows as they go to `route`: trimmed to its tables,
   * then to its rows (row filters); null for a row of which nothing goes.
   * `after`: the peer's acknowledged seq.
   */
  private async bodies(rows: readonly Chosen[], route: Route, after: string): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    if (rows.length === 0) return out;
    const got = await this.db.query<{ seq: string | number; body: Buffer | string; deleted?: string | null }>(
      `SELECT seq, body${route.rows ? ', deleted' : ''} FROM ${this.journal} WHERE seq IN (?) ORDER BY seq`,
      [rows.map((r) => r.seq)],
    );
    const byseq = new Map(got.map((g) => [String(g.seq), g]));
    const items: RoutedItem[] = [];
    for (const r of rows) {
      const g = byseq.get(r.seq);
      if (g === undefined) continue;
      const body = Buffer.isBuffer(g.body) ? bodyXml(g.body).toString('utf8') : g.body;
      const sent = r.decision === 'trim' ? this.trim(body, route.accepts) : body;
      if (sent !== null && route.rows && r.made !== true) items.push({ seq: r.seq, body: sent, deleted: g.deleted ?? null });
      else out.set(r.seq, sent);
    }
    if (route.rows) for (const [seq, body] of await route.rows.filter(after, items)) out.set(seq, body);
    return out;
  }

  /** The next batch for `route` after our seq `after`, within the caps (at least one entry goes). */
  async read(route: Route, after: string, caps: Caps, resend?: Resend): Promise<PendingBatch> {
    const entries: Outgoing[] = [];
    let bytes = 0;
    let skipTo = '0';
    let leading = true;
    let cursor = after;
    for (;;) {
      const rows = await this.page(cursor, this.pageSize);
      let i = 0;
      while (i < rows.length) {
        // the rows that fit after what is taken (skipped ones cost nothing), their bodies read together
        const chunk: Chosen[] = [];
        let chunkBytes = 0;
        let going = 0;
        let full = false;
        for (; i < rows.length; i++) {
          const r = rows[i]!;
          const d = decide(r, route, resend);
          if (d !== 'skip') {
            const len = Number(r.len);
            const count = entries.length + going;
            if (count > 0 && (count + 1 > caps.records || bytes + chunkBytes + len > caps.bytes)) {
              full = true;
              break;
            }
            chunkBytes += len;
            going++;
          }
          chunk.push({ seq: String(r.seq), decision: d, len: Number(r.len), made: r.to_peer != null });
        }
        const sent = await this.bodies(chunk.filter((c) => c.decision !== 'skip'), route, after);
        let dropped = false;
        for (const c of chunk) {
          const body = c.decision === 'skip' ? null : sent.get(c.seq);
          cursor = c.seq;
          if (body === undefined) continue;
          if (body === null) {
            // nothing of it goes: past it once nothing before it waits
            dropped ||= c.decision !== 'skip';
            if (leading) skipTo = c.seq;
            continue;
          }
          leading = false;
          entries.push({ seq: c.seq, body });
          bytes += c.len;
        }
        // a row filter left room: the rows that did not fit may now
        if (full && !dropped) return { entries, bytes, more: true, skipTo };
      }
      if (rows.length < this.pageSize) {
        await route.rows?.settled();
        return { entries, bytes, more: false, skipTo };
      }
    }
  }

  /** Every pending entry for `route` after `after`, in order, page by page (USB files). */
  async *stream(route: Route, after: string, resend?: Resend): AsyncGenerator<Outgoing> {
    let cursor = after;
    for (;;) {
      const rows = await this.page(cursor, this.pageSize);
      let chosen: Chosen[] = [];
      let bytes = 0;
      for (let i = 0; i <= rows.length; i++) {
        const r = rows[i];
        if (r !== undefined) {
          cursor = String(r.seq);
          const d = decide(r, route, resend);
          if (d === 'skip') continue;
          chosen.push({ seq: cursor, decision: d, len: Number(r.len), made: r.to_peer != null });
          bytes += Number(r.len);
        }
        // at the page's end, or sooner: the bodies held at once stay small, whatever the page size
        if (chosen.length > 0 && (r === undefined || bytes > 4 * 1024 * 1024)) {
          const sent = await this.bodies(chosen, route, after);
          for (const c of chosen) {
            const body = sent.get(c.seq);
            if (body !== null && body !== undefined) yield { seq: c.seq, body };
          }
          chosen = [];
          bytes = 0;
        }
      }
      if (rows.length < this.pageSize) {
        await route.rows?.settled();
        return;
      }
    }
  }

  /** How many journal rows after `after` (up to `upTo` when given) are still to go to `route` (status). */
  async count(route: Route, after: string, opts: { upTo?: string | undefined; resend?: Resend | undefined } = {}): Promise<number> {
    const { upTo, resend } = opts;
    if (route.acceptsAll) {
      const back = resend ? ' OR (origin = ? AND seq > ? AND hlc <= ?)' : '';
      // (fills and leaves as decide() takes them)
      const fill = `COALESCE((SELECT f.peer = ? FROM ${this.fills} f WHERE f.change_id = j.change_id), origin NOT LIKE '%--leave')`;
      const [r] = await this.db.query<{ n: string | number }>(
        `SELECT COUNT(*) AS n FROM ${this.journal} j WHERE seq > ?${upTo === undefined ? '' : ' AND seq <= ?'} AND (from_peer IS NULL OR from_peer <> ?${back}) AND ${fill}`,
        [after, ...(upTo === undefined ? [] : [upTo]), route.peer, ...(resend ? [route.peer, resend.from, resend.hlc] : []), route.peer],
      );
      return Number(r?.n ?? 0);
    }
    let n = 0;
    let cursor = after;
    for (;;) {
      const rows = await this.page(cursor, 1000);
      for (const r of rows) {
        if (upTo !== undefined && BigInt(r.seq) > BigInt(upTo)) return n;
        if (decide(r, route, resend) !== 'skip') n++;
      }
      const last = rows[rows.length - 1];
      if (!last || rows.length < 1000) return n;
      cursor = String(last.seq);
    }
  }
}
