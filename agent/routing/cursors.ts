// Per-peer cursors in `peers`: acked_seq (our journal seq the peer has durably
// taken; only moves forward, and never on an ack above sent_seq, the highest seq
// we put in a batch for the peer) and received_seq (the top of the peer's last
// batch we took, which we ack; the ledger, not this cursor, keeps a change set
// from applying twice, so a replayed batch or a stale ack changes nothing).
import type { Queryable } from '../../apply/core/db.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { sqlTime } from '../../apply/replay/value-compare.js';

export interface PeerCursor {
  readonly peer: string;
  readonly ackedSeq: string;
  readonly receivedSeq: string;
  readonly batchSeq: string;
  /** highest journal seq of ours put in a batch for the peer */
  readonly sentSeq: string;
  /** the last exchange attempt (UTC, as the database gives it) and how it ended */
  readonly lastContact: string | null;
  readonly lastResult: string | null;
  /** the last exchange that ended well */
  readonly lastSuccess: string | null;
  /** the peer's incarnation last seen in its batches (null: it sent none yet) */
  readonly incarnation: string | null;
  /** when the peer was last seen restored from a backup, with how its cursor was rewound and what goes back to it */
  readonly restore: PeerRestore | null;
}

/** A peer restored from a backup, as this node saw it. */
export interface PeerRestore {
  readonly at: string;
  /** acked_seq before the rewind */
  readonly rewoundFrom: string;
  /** its own change sets after this seq of ours, stamped up to `hlc`, go back to it */
  readonly resendFrom: string;
  readonly hlc: string;
}

interface PeerRow {
  peer: string;
  acked_seq: string | number;
  received_seq: string | number;
  batch_seq: string | number;
  sent_seq?: string | number;
  last_contact: string | null;
  last_result: string | null;
  incarnation?: string | null;
  restored_at?: string | null;
  rewound_from?: string | number | null;
  resend_from?: string | number | null;
  resend_hlc?: string | number | null;
  last_success?: string | null;
}

const fromRow = (r: PeerRow): PeerCursor => ({
  peer: r.peer,
  ackedSeq: String(r.acked_seq),
  receivedSeq: String(r.received_seq),
  batchSeq: String(r.batch_seq),
  sentSeq: String(r.sent_seq ?? 0),
  lastContact: r.last_contact,
  lastResult: r.last_result,
  incarnation: r.incarnation ?? null,
  restore: r.restored_at
    ? { at: r.restored_at, rewoundFrom: String(r.rewound_from ?? 0), resendFrom: String(r.resend_from ?? 0), hlc: String(r.resend_hlc ?? 0) }
    : null,
  lastSuccess: r.last_success ?? null,
});

/** A decimal sequence string, or '0' when it is not one (hostile input never reaches SQL as text). */
export function seqOf(s: string | undefined): string {
  return s !== undefined && /^[0-9]{1,20}$/.test(s) && BigInt(s) <= 18446744073709551615n ? BigInt(s).toString() : '0';
}

export function maxSeq(a: string, b: string): string {
  return BigInt(a) >= BigInt(b) ? a : b;
}

export async function getCursor(db: Queryable, stateSchema: string, peer: string): Promise<PeerCursor> {
  const rows = await db.query<PeerRow>(`SELECT * FROM ${stateTable(stateSchema, 'peers')} WHERE peer = ?`, [peer]);
  const r = rows[0];
  return r ? fromRow(r) : {
    peer, ackedSeq: '0', receivedSeq: '0', batchSeq: '0', sentSeq: '0', lastContact: null, lastResult: null, lastSuccess: null,
    incarnation: null, restore: null,
  };
}

export async function listCursors(db: Queryable, stateSchema: string): Promise<PeerCursor[]> {
  const rows = await db.query<PeerRow>(`SELECT * FROM ${stateTable(stateSchema, 'peers')} ORDER BY peer`);
  return rows.map(fromRow);
}

/**
 * Moves `acked` of `peer` forward (never back), clamped to the highest seq in our
 * journal; sets `received` (the top of the batch just taken) when given.
 */
export async function advanceCursor(
  db: Queryable,
  stateSchema: string,
  peer: string,
  to: { acked?: string; received?: string },
): Promise<void> {
  const acked = seqOf(to.acked);
  const journal = stateTable(stateSchema, 'journal');
  const peers = stateTable(stateSchema, 'peers');
  const [top] = await db.query<{ m: string | number | null }>(`SELECT MAX(seq) AS m FROM ${journal}`);
  const ackClamped = BigInt(acked) > BigInt(top?.m ?? 0) ? String(top?.m ?? 0) : acked;
  const received = to.received === undefined ? null : seqOf(to.received);
  await db.exec(
    `INSERT INTO ${peers} (peer, acked_seq, received_seq) VALUES (?, ?, ?)
     ON DUPLICATE KEY UPDATE acked_seq = GREATEST(acked_seq, VALUES(acked_seq)),
                             received_seq = ${received === null ? 'received_seq' : 'VALUES(received_seq)'}`,
    [peer, ackClamped, received ?? '0'],
  );
}

/** Notes that entries of ours up to `seq` went into a batch for `peer` (acks up to it are in range). */
export async function markSent(db: Queryable, stateSchema: string, peer: string, seq: string): Promise<void> {
  await db.exec(
    `INSERT INTO ${stateTable(stateSchema, 'peers')} (peer, sent_seq) VALUES (?, ?)
     ON DUPLICATE KEY UPDATE sent_seq = GREATEST(sent_seq, VALUES(sent_seq))`,
    [peer, seqOf(seq)],
  );
}

/** Our next batch counter toward `peer`. */
export async function nextBatchSeq(db: Queryable, stateSchema: string, peer: string): Promise<string> {
  const peers = stateTable(stateSchema, 'peers');
  await db.exec(
    `INSERT INTO ${peers} (peer, batch_seq) VALUES (?, 1) ON DUPLICATE KEY UPDATE batch_seq = batch_seq + 1`,
    [peer],
  );
  const [r] = await db.query<{ batch_seq: string | number }>(`SELECT batch_seq FROM ${peers} WHERE peer = ?`, [peer]);
  return String(r?.batch_seq ?? 1);
}

/** Records the outcome of an exchange with `peer` ('ok' or an error code and message, no secrets); 'ok' is also the last success. */
export async function recordContact(db: Queryable, stateSchema: string, peer: string, result: string, at = new Date()): Promise<void> {
  const when = sqlTime(at.getTime());
  await db.exec(
    `INSERT INTO ${stateTable(stateSchema, 'peers')} (peer, last_contact, last_result, last_success) VALUES (?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE last_contact = VALUES(last_contact), last_result = VALUES(last_result),
                             last_success = COALESCE(VALUES(last_success), last_success)`,
    [peer, when, result.slice(0, 500), result === 'ok' ? when : null],
  );
}

export async function getMeta(db: Queryable, stateSchema: string, key: string): Promise<string | null> {
  const [r] = await db.query<{ v: string }>(`SELECT v FROM ${stateTable(stateSchema, 'meta')} WHERE k = ?`, [key]);
  return r?.v ?? null;
}

export async function setMeta(db: Queryable, stateSchema: string, key: string, value: string): Promise<void> {
  await db.exec(
    `INSERT INTO ${stateTable(stateSchema, 'meta')} (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)`,
    [key, value],
  );
}

/** meta key holding the parent's node id, learned from its first authenticated batch */
export const PARENT_ID_KEY = 'parent.id';
