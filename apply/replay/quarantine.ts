// Quarantine: change sets that cannot apply yet, kept durably (body = the <cs>
// element) and retried in origin order on every exchange; never dropped.
// Later change sets of the same origin that touch a quarantined change set's
// rows are held behind it, so one origin's edits of a row stay in order.
import type { Queryable } from '../core/db.js';
import { stateTable } from '../core/state-schema.js';
import type { ChangeSet } from '../core/model.js';
import { sqlTime } from './value-compare.js';

export interface QuarantineRow {
  readonly changeId: string;
  readonly origin: string;
  readonly fromPeer: string;
  readonly hlc: string;
  readonly body: Buffer;
}

export async function quarantine(
  tx: Queryable, stateSchema: string, cs: ChangeSet, fromPeer: string, body: string, reason: string, waitsFor: string | null, nowMs: number,
): Promise<void> {
  const at = sqlTime(nowMs);
  await tx.exec(
    `INSERT INTO ${stateTable(stateSchema, 'quarantine')}
       (change_id, origin, from_peer, hlc, received_at, last_try, tries, reason, waits_for, body)
     VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
    [cs.id, cs.origin, fromPeer, cs.hlc, at, at, clip(reason, 1000), waitsFor === null ? null : clip(waitsFor, 700), body],
  );
}

/** Another failed try of a quarantined change set. */
export async function retried(tx: Queryable, stateSchema: string, changeId: string, reason: string, waitsFor: string | null, nowMs: number): Promise<void> {
  await tx.exec(
    `UPDATE ${stateTable(stateSchema, 'quarantine')} SET tries = tries + 1, last_try = ?, reason = ?, waits_for = ? WHERE change_id = ?`,
    [sqlTime(nowMs), clip(reason, 1000), waitsFor === null ? null : clip(waitsFor, 700), changeId],
  );
}

/** Removes a change set from quarantine (applied, or found in the ledger). */
export async function release(tx: Queryable, stateSchema: string, changeId: string): Promise<void> {
  await tx.exec(`DELETE FROM ${stateTable(stateSchema, 'quarantine')} WHERE change_id = ?`, [changeId]);
}

/** Every quarantined change set in origin order (hlc, then origin), a page at a time. */
export async function* readQuarantine(db: Queryable, stateSchema: string, page = 200): AsyncGenerator<QuarantineRow> {
  let after: [string, string, string] | undefined;
  for (;;) {
    const rows = await db.query<{ change_id: string; origin: string; from_peer: string; hlc: string; body: Buffer }>(
      `SELECT change_id, origin, from_peer, hlc, body FROM ${stateTable(stateSchema, 'quarantine')}
        ${after ? 'WHERE (hlc, origin, change_id) > (?, ?, ?)' : ''}
        ORDER BY hlc, origin, change_id LIMIT ?`,
      [...(after ?? []), page],
    );
    for (const r of rows) yield { changeId: r.change_id, origin: r.origin, fromPeer: r.from_peer, hlc: String(r.hlc), body: r.body };
    if (rows.length < page) return;
    const last = rows[rows.length - 1]!;
    after = [String(last.hlc), last.origin, last.change_id];
  }
}

export interface QuarantineSummary {
  readonly count: number;
  /** when the oldest quarantined change set arrived ('YYYY-MM-DD HH:MM:SS.ffffff' UTC), null when none */
  readonly oldest: string | null;
  readonly byOrigin: ReadonlyArray<{ readonly origin: string; readonly count: number }>;
  /** the first few, in origin order */
  readonly entries: ReadonlyArray<{
    readonly changeId: string; readonly origin: string; readonly fromPeer: string; readonly tries: number;
    readonly reason: string; readonly waitsFor: string | null; readonly receivedAt: string; readonly lastTry: string;
  }>;
}

/** What `spokesync status` shows about quarantine. */
export async function quarantineSummary(db: Queryable, stateSchema: string, limit = 10): Promise<QuarantineSummary> {
  const table = stateTable(stateSchema, 'quarantine');
  const by = await db.query<{ origin: string; n: string | number; oldest: string }>(
    `SELECT origin, COUNT(*) AS n, MIN(received_at) AS oldest FROM ${table} GROUP BY origin ORDER BY origin`,
  );
  const entries = await db.query<{
    change_id: string; origin: string; from_peer: string; tries: number | string; reason: string;
    waits_for: string | null; received_at: string; last_try: string;
  }>(
    `SELECT change_id, origin, from_peer, tries, reason, waits_for, received_at, last_try FROM ${table}
      ORDER BY hlc, origin, change_id LIMIT ?`,
    [Math.max(0, Math.floor(limit))],
  );
  const oldest = by.map((b) => b.oldest).sort()[0] ?? null;
  return {
    count: by.reduce((n, b) => n + Number(b.n), 0),
    oldest,
    byOrigin: by.map((b) => ({ origin: b.origin, count: Number(b.n) })),
    entries: entries.map((e) => ({
      changeId: e.change_id, origin: e.origin, fromPeer: e.from_peer, tries: Number(e.tries), reason: e.reason,
      waitsFor: e.waits_for, receivedAt: e.received_at, lastTry: e.last_try,
    })),
  };
}

function clip(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 3) + '...' : s;
}
