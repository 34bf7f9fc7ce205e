// Quarantine: change sets that cannot apply yet, kept durably (body = the <cs>
// element) and retried in origin order, each once its backoff delay has passed
// (or sooner when something was applied since); never dropped silently.
// Later change sets of the same origin that touch a quarantined change set's
// rows are held behind it, so one origin's edits of a row stay in order.
import type { Db, Queryable } from '../core/db.js';
import { stateTable } from '../core/state-schema.js';
import { unlogged } from '../core/unlogged.js';
import type { ChangeSet } from '../core/model.js';
import { decodeChangeSet } from '../codec/decode.js';
import { sqlTime } from './value-compare.js';

export interface QuarantineRow {
  readonly changeId: string;
  readonly origin: string;
  readonly fromPeer: string;
  readonly hlc: string;
  readonly body: Buffer;
  readonly tries: number;
  /** its delay has passed (or an operator asked for a retry) */
  readonly due: boolean;
}

/** The delay before the next try of a change set that failed `tries` times. */
export type RetryDelay = (tries: number) => number;

export async function quarantine(
  tx: Queryable, stateSchema: string, cs: ChangeSet, fromPeer: string, body: string, reason: string, waitsFor: string | null, nowMs: number, delay: RetryDelay,
): Promise<void> {
  await tx.exec(
    `INSERT INTO ${stateTable(stateSchema, 'quarantine')}
       (change_id, origin, from_peer, hlc, received_at, last_try, next_try, tries, reason, waits_for, body)
     VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
    [cs.id, cs.origin, fromPeer, cs.hlc, sqlTime(nowMs), sqlTime(nowMs), sqlTime(nowMs + delay(1)), clip(reason, 1000),
      waitsFor === null ? null : clip(waitsFor, 700), body],
  );
}

/** A quarantined change set that failed once more. */
export interface FailedTry {
  readonly changeId: string;
  readonly reason: string;
  readonly waitsFor: string | null;
}

/**
 * Records failed tries (tries, last and next try, reason). This is the node's
 * own bookkeeping, never captured: where the account may (BINLOG ADMIN), it is
 * written with sql_log_bin = 0 on a connection of its own, so an idle node
 * retrying its quarantine adds nothing to the binlog; otherwise it is written
 * logged, once per change set per delay. Returns whether it was binlogged.
 */
export async function recordTries(db: Db, stateSchema: string, failed: readonly FailedTry[], nowMs: number, delay: RetryDelay): Promise<boolean> {
  if (failed.length === 0) return false;
  const { binlogged } = await unlogged(db, async (conn) => {
    const table = stateTable(stateSchema, 'quarantine');
    for (const f of failed) {
      const [row] = await conn.query<{ tries: number | string }>(`SELECT tries FROM ${table} WHERE change_id = ?`, [f.changeId]);
      if (!row) continue;
      const tries = Number(row.tries) + 1;
      await conn.exec(
        `UPDATE ${table} SET tries = ?, last_try = ?, next_try = ?, reason = ?, waits_for = ? WHERE change_id = ?`,
        [tries, sqlTime(nowMs), sqlTime(nowMs + delay(tries)), clip(f.reason, 1000), f.waitsFor === null ? null : clip(f.waitsFor, 700), f.changeId],
      );
    }
  });
  return binlogged;
}

/** Makes quarantined change sets due now (all of them when `ids` is undefined); returns how many. */
export async function makeDue(db: Queryable, stateSchema: string, ids?: readonly string[]): Promise<number> {
  if (ids !== undefined && ids.length === 0) return 0;
  const r = await db.exec(
    `UPDATE ${stateTable(stateSchema, 'quarantine')} SET next_try = NULL${ids ? ` WHERE change_id IN (${ids.map(() => '?').join(', ')})` : ''}`,
    ids ?? [],
  );
  return r.affectedRows;
}

/** Locks a quarantined change set for a retry; false when it is no longer there (discarded meanwhile). */
export async function claim(tx: Queryable, stateSchema: string, changeId: string): Promise<boolean> {
  const rows = await tx.query(`SELECT 1 FROM ${stateTable(stateSchema, 'quarantine')} WHERE change_id = ? FOR UPDATE`, [changeId]);
  return rows.length > 0;
}

/** Removes a change set from quarantine (applied, or found in the ledger). */
export async function release(tx: Queryable, stateSchema: string, changeId: string): Promise<void> {
  await tx.exec(`DELETE FROM ${stateTable(stateSchema, 'quarantine')} WHERE change_id = ?`, [changeId]);
}

/** Every quarantined change set in origin order (hlc, then origin), a page at a time; `due` as of nowMs. */
export async function* readQuarantine(db: Queryable, stateSchema: string, nowMs: number, page = 200): AsyncGenerator<QuarantineRow> {
  let after: [string, string, string] | undefined;
  for (;;) {
    const rows = await db.query<{ change_id: string; origin: string; from_peer: string; hlc: string; body: Buffer; tries: number | string; due: number | string }>(
      `SELECT change_id, origin, from_peer, hlc, body, tries, (next_try IS NULL OR next_try <= ?) AS due FROM ${stateTable(stateSchema, 'quarantine')}
        ${after ? 'WHERE (hlc, origin, change_id) > (?, ?, ?)' : ''}
        ORDER BY hlc, origin, change_id LIMIT ?`,
      [sqlTime(nowMs), ...(after ?? []), page],
    );
    for (const r of rows) {
      yield { changeId: r.change_id, origin: r.origin, fromPeer: r.from_peer, hlc: String(r.hlc), body: r.body, tries: Number(r.tries), due: Number(r.due) === 1 };
    }
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

/** One quarantined change set as `spokesync quarantine` lists it. */
export interface QuarantineItem {
  readonly changeId: string;
  readonly origin: string;
  readonly fromPeer: string;
  readonly tables: readonly string[];
  readonly reason: string;
  readonly waitsFor: string | null;
  readonly firstTry: string;
  readonly lastTry: string;
  readonly tries: number;
  /** null: at the next retry */
  readonly nextTry: string | null;
}

interface ItemRow {
  change_id: string; origin: string; from_peer: string; reason: string; waits_for: string | null;
  received_at: string; last_try: string; tries: number | string; next_try: string | null; body: Buffer;
}

const ITEM_COLUMNS = 'change_id, origin, from_peer, reason, waits_for, received_at, last_try, tries, next_try, body';

function item(r: ItemRow): QuarantineItem & { readonly cs: ChangeSet | Error } {
  let cs: ChangeSet | Error;
  try {
    cs = decodeChangeSet(r.body);
  } catch (e) {
    cs = e instanceof Error ? e : new Error(String(e));
  }
  return {
    changeId: r.change_id, origin: r.origin, fromPeer: r.from_peer, reason: r.reason, waitsFor: r.waits_for,
    tables: cs instanceof Error ? [] : [...new Set(cs.ops.map((o) => o.table))],
    firstTry: r.received_at, lastTry: r.last_try, tries: Number(r.tries), nextTry: r.next_try, cs,
  };
}

/** Every quarantined change set, in origin order. */
export async function listQuarantine(db: Queryable, stateSchema: string): Promise<QuarantineItem[]> {
  const rows = await db.query<ItemRow>(`SELECT ${ITEM_COLUMNS} FROM ${stateTable(stateSchema, 'quarantine')} ORDER BY hlc, origin, change_id`);
  return rows.map((r) => {
    const { cs: _cs, ...rest } = item(r);
    return rest;
  });
}

/** One quarantined change set with its decoded body (an Error when it cannot be read), or null. */
export async function quarantined(db: Queryable, stateSchema: string, changeId: string): Promise<(QuarantineItem & { readonly cs: ChangeSet | Error }) | null> {
  const [r] = await db.query<ItemRow>(`SELECT ${ITEM_COLUMNS} FROM ${stateTable(stateSchema, 'quarantine')} WHERE change_id = ?`, [changeId]);
  return r ? item(r) : null;
}

/** Which of `ids` are in quarantine. */
export async function inQuarantine(db: Queryable, stateSchema: string, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db.query<{ change_id: string }>(
    `SELECT change_id FROM ${stateTable(stateSchema, 'quarantine')} WHERE change_id IN (${ids.map(() => '?').join(', ')})`, [...ids]);
  return new Set(rows.map((r) => r.change_id));
}

/**
 * Gives up a quarantined change set: it leaves quarantine and is kept whole in
 * `discards` with who, when and why, in one transaction. False when it is not
 * in quarantine (any more).
 */
export async function discard(
  db: Db, stateSchema: string, node: string, changeId: string, by: string, why: string, nowMs: number,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [r] = await tx.query<ItemRow>(`SELECT ${ITEM_COLUMNS} FROM ${stateTable(stateSchema, 'quarantine')} WHERE change_id = ? FOR UPDATE`, [changeId]);
    if (!r) return false;
    const it = item(r);
    await tx.exec(
      `INSERT INTO ${stateTable(stateSchema, 'discards')}
         (node, change_id, origin, from_peer, tables, quarantined_for, tries, discarded_at, discarded_by, why, reported_at, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)`,
      [node, changeId, r.origin, r.from_peer, clip(it.tables.join(','), 4000), r.reason, Number(r.tries), sqlTime(nowMs), clip(by, 255), clip(why, 1000), r.body],
    );
    await release(tx, stateSchema, changeId);
    return true;
  });
}

/** A discard, here or reported by a child. */
export interface DiscardEntry {
  readonly node: string;
  readonly changeId: string;
  readonly origin: string;
  readonly fromPeer: string;
  readonly tables: readonly string[];
  readonly quarantinedFor: string;
  readonly tries: number;
  readonly discardedAt: string;
  readonly discardedBy: string;
  readonly why: string;
  /** this node's: when the parent took the report (null: not yet); a child's: when it arrived */
  readonly reportedAt: string | null;
}

/** Discards, newest first (at most `limit`), and how many there are. */
export async function listDiscards(db: Queryable, stateSchema: string, limit = 20): Promise<{ count: number; entries: DiscardEntry[] }> {
  const table = stateTable(stateSchema, 'discards');
  const [n] = await db.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${table}`);
  const rows = await db.query<{
    node: string; change_id: string; origin: string; from_peer: string; tables: string; quarantined_for: string; tries: number | string;
    discarded_at: string; discarded_by: string; why: string; reported_at: string | null;
  }>(
    `SELECT node, change_id, origin, from_peer, tables, quarantined_for, tries, discarded_at, discarded_by, why, reported_at
       FROM ${table} ORDER BY discarded_at DESC, node, change_id LIMIT ?`, [Math.max(0, Math.floor(limit))]);
  return {
    count: Number(n?.n ?? 0),
    entries: rows.map((r) => ({
      node: r.node, changeId: r.change_id, origin: r.origin, fromPeer: r.from_peer, tables: r.tables === '' ? [] : r.tables.split(','),
      quarantinedFor: r.quarantined_for, tries: Number(r.tries), discardedAt: r.discarded_at, discardedBy: r.discarded_by, why: r.why,
      reportedAt: r.reported_at,
    })),
  };
}

function clip(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 3) + '...' : s;
}
