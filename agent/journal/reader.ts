// The journal reader: what is pending for one peer. One journal, one cursor per
// peer; rows are streamed in pages (metadata first, bodies only for rows that go),
// never the whole journal. A row never goes back to the peer it came from; a row
// touching tables the peer does not take goes without those ops, or not at all.
import type { Queryable } from '../../apply/core/db.js';
import { bodyLengthSql, bodyXml } from './body.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { Route } from '../routing/filters.js';

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
}

/** Whether a row that came from `peer` goes back to it: its own change set, lost when it was restored. */
function goesBack(row: { seq?: string | number; origin?: string; hlc?: string | number }, peer: string, resend: Resend | undefined): boolean {
  return resend !== undefined && row.origin === peer && row.seq !== undefined && row.hlc !== undefined &&
    BigInt(row.seq) > BigInt(resend.from) && BigInt(row.hlc) <= BigInt(resend.hlc);
}

/** What to do with one journal row for this route. Pure. */
export function decide(
  row: { from_peer: string | null; tables: string; seq?: string | number; origin?: string; hlc?: string | number }, route: Route, resend?: Resend,
): Decision {
  if (row.from_peer === route.peer && !goesBack(row, route.peer, resend)) return 'skip';
  if (route.acceptsAll) return 'send';
  const tables = row.tables.split(',').filter((t) => t.length > 0);
  const passing = tables.filter((t) => route.accepts(t)).length;
  if (passing === 0) return 'skip';
  return passing === tables.length ? 'send' : 'trim';
}

const PAGE = 200;

export class JournalReader {
  private readonly journal: string;
  constructor(
    private readonly db: Queryable,
    stateSchema: string,
    private readonly trim: Trim,
    private readonly pageSize = PAGE,
  ) {
    this.journal = stateTable(stateSchema, 'journal');
  }

  private async page(after: string, limit: number): Promise<MetaRow[]> {
    return this.db.query<MetaRow>(
      `SELECT seq, from_peer, origin, hlc, tables, ${bodyLengthSql('body')} AS len FROM ${this.journal} WHERE seq > ? ORDER BY seq LIMIT ?`,
      [after, limit],
    );
  }

  private async bodies(rows: readonly { seq: string; decision: Decision }[], route: Route): Promise<Outgoing[]> {
    if (rows.length === 0) return [];
    const got = await this.db.query<{ seq: string | number; body: Buffer | string }>(
      `SELECT seq, body FROM ${this.journal} WHERE seq IN (?) ORDER BY seq`,
      [rows.map((r) => r.seq)],
    );
    const byseq = new Map(got.map((g) => [String(g.seq), Buffer.isBuffer(g.body) ? bodyXml(g.body).toString('utf8') : g.body]));
    const out: Outgoing[] = [];
    for (const r of rows) {
      const body = byseq.get(r.seq);
      if (body === undefined) continue;
      const sent = r.decision === 'trim' ? this.trim(body, route.accepts) : body;
      if (sent !== null) out.push({ seq: r.seq, body: sent });
    }
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
      const chosen: { seq: string; decision: Decision }[] = [];
      let stopped = false;
      for (const r of rows) {
        const seq = String(r.seq);
        const d = decide(r, route, resend);
        if (d === 'skip') {
          if (leading) skipTo = seq;
          cursor = seq;
          continue;
        }
        const len = Number(r.len);
        const count = entries.length + chosen.length;
        if (count > 0 && (count + 1 > caps.records || bytes + len > caps.bytes)) {
          stopped = true;
          break;
        }
        leading = false;
        chosen.push({ seq, decision: d });
        bytes += len;
        cursor = seq;
      }
      entries.push(...(await this.bodies(chosen, route)));
      if (stopped) return { entries, bytes, more: true, skipTo };
      if (rows.length < this.pageSize) return { entries, bytes, more: false, skipTo };
    }
  }

  /** Every pending entry for `route` after `after`, in order, page by page (USB files). */
  async *stream(route: Route, after: string, resend?: Resend): AsyncGenerator<Outgoing> {
    let cursor = after;
    for (;;) {
      const rows = await this.page(cursor, this.pageSize);
      const chosen: { seq: string; decision: Decision }[] = [];
      let bytes = 0;
      for (const r of rows) {
        cursor = String(r.seq);
        const d = decide(r, route, resend);
        if (d === 'skip') continue;
        chosen.push({ seq: cursor, decision: d });
        bytes += Number(r.len);
        // keep the bodies held at once small, whatever the page size
        if (bytes > 4 * 1024 * 1024) {
          yield* await this.bodies(chosen.splice(0), route);
          bytes = 0;
        }
      }
      yield* await this.bodies(chosen, route);
      if (rows.length < this.pageSize) return;
    }
  }

  /** How many journal rows after `after` (up to `upTo` when given) are still to go to `route` (status). */
  async count(route: Route, after: string, opts: { upTo?: string | undefined; resend?: Resend | undefined } = {}): Promise<number> {
    const { upTo, resend } = opts;
    if (route.acceptsAll) {
      const back = resend ? ' OR (origin = ? AND seq > ? AND hlc <= ?)' : '';
      const [r] = await this.db.query<{ n: string | number }>(
        `SELECT COUNT(*) AS n FROM ${this.journal} WHERE seq > ?${upTo === undefined ? '' : ' AND seq <= ?'} AND (from_peer IS NULL OR from_peer <> ?${back})`,
        [after, ...(upTo === undefined ? [] : [upTo]), route.peer, ...(resend ? [route.peer, resend.from, resend.hlc] : [])],
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
