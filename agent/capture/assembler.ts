// Transaction assembler: SourceEvents in binlog order → whole source
// transactions, split into the change sets they carry. Pure.
//
// Apply writes a ledger row first in every change set it applies, and may put
// several change sets in one transaction: ledger row, its ops, next ledger
// row, its ops... Each ledger row therefore starts a new part that keeps the
// change set's original id, origin, stamp and peer. Ops before any ledger row
// are a change set committed on this node.
//
// Savepoints: MariaDB logs SAVEPOINT x inside a transaction, and ROLLBACK TO x
// when the rolled-back part cannot simply be cut from the transaction's log
// (a non-transactional table was written meanwhile); the row events logged
// between them did not commit, so they are dropped here. Neither ends the
// transaction.
import { SpokesyncError } from '../../apply/core/errors.js';
import type { RowChange, SourceEvent } from './events.js';
import type { BinlogPosition } from './position.js';
import { CARRY_TABLE, isLocalCarry } from '../../apply/replay/carry.js';

export interface LedgerMark {
  readonly changeId: string;
  readonly origin: string;
  readonly fromPeer: string;
  readonly hlc: string;
  /** 'YYYY-MM-DDTHH:MM:SSZ' */
  readonly time: string;
}

export interface TxnPart {
  /** null: committed on this node */
  readonly ledger: LedgerMark | null;
  readonly changes: RowChange[];
  /** ops apply carried for a relay to forward (apply/replay/carry.ts): `<cs>` bodies */
  carried?: unknown[];
}

export type Assembled =
  /** a transaction with something to journal */
  | {
      readonly kind: 'txn';
      readonly parts: readonly TxnPart[];
      readonly end: BinlogPosition;
      readonly gtid: string;
      /** commit time, ms since the epoch (second precision) */
      readonly timestamp: number;
      /** binlog bytes of its row events */
      readonly bytes: number;
      readonly rows: number;
    }
  /** a statement logged as text, outside any transaction */
  | { readonly kind: 'statement'; readonly schema: string; readonly sql: string; readonly end: BinlogPosition; readonly timestamp: number }
  /** nothing to journal up to `end` */
  | { readonly kind: 'skip'; readonly end: BinlogPosition; readonly gtid: string };

export interface AssemblerOptions {
  readonly schema: string;
  readonly stateSchema: string;
  readonly tables: ReadonlySet<string>;
}

interface Open {
  gtid: string;
  parts: TxnPart[];
  bytes: number;
  rows: number;
  /** savepoints set, oldest first */
  savepoints: Savepoint[];
}

/** Where the transaction stood when a savepoint was set. */
interface Savepoint {
  readonly name: string;
  readonly parts: number;
  /** changes in the last part then */
  readonly changes: number;
  readonly bytes: number;
  readonly rows: number;
}

const fresh = (gtid: string): Open => ({ gtid, parts: [], bytes: 0, rows: 0, savepoints: [] });

export class TransactionAssembler {
  private open: Open | null = null;

  constructor(private readonly opts: AssemblerOptions) {}

  /** Binlog bytes held by the transaction being assembled. */
  get openBytes(): number {
    return this.open?.bytes ?? 0;
  }

  /** Forgets a half-read transaction (the source is restarting at a checkpoint). */
  reset(): void {
    this.open = null;
  }

  /** Feeds one event; returns what it completed, if anything. */
  push(ev: SourceEvent): Assembled | null {
    switch (ev.kind) {
      case 'begin':
        this.closeEmpty('a transaction began before the previous one committed');
        this.open = fresh(ev.gtid);
        return null;
      case 'rows': {
        const open = (this.open ??= fresh(''));
        open.bytes += ev.bytes;
        for (const c of ev.changes) this.add(open, c);
        return null;
      }
      case 'commit': {
        const open = this.open;
        this.open = null;
        if (!open || !open.parts.some((p) => p.ledger !== null || p.changes.length > 0 || p.carried !== undefined)) {
          return { kind: 'skip', end: ev.end, gtid: open?.gtid ?? '' };
        }
        return { kind: 'txn', parts: open.parts, end: ev.end, gtid: open.gtid, timestamp: ev.timestamp, bytes: open.bytes, rows: open.rows };
      }
      case 'rollback': {
        const gtid = this.open?.gtid ?? '';
        this.open = null;
        return { kind: 'skip', end: ev.end, gtid };
      }
      case 'savepoint':
        if (this.open) savepoint(this.open, ev.action, ev.name);
        return null;
      case 'statement':
        this.closeEmpty('a statement was logged inside a transaction that changed rows');
        this.open = null;
        return { kind: 'statement', schema: ev.schema, sql: ev.sql, end: ev.end, timestamp: ev.timestamp };
      case 'position':
        return this.open ? null : { kind: 'skip', end: ev.end, gtid: '' };
    }
  }

  private add(open: Open, c: RowChange): void {
    if (c.schema === this.opts.stateSchema && c.table === 'ledger') {
      if (c.op === 'insert') open.parts.push({ ledger: ledgerMark(c.raw ? c.raw.decode() : c.after), changes: [] });
      return;
    }
    if (c.schema === this.opts.stateSchema && c.table === CARRY_TABLE) {
      if (c.op === 'insert') carry(open, c.raw ? c.raw.decode() : c.after);
      return;
    }
    if (c.schema !== this.opts.schema || !this.opts.tables.has(c.table)) return;
    let part = open.parts[open.parts.length - 1];
    if (!part) {
      part = { ledger: null, changes: [] };
      open.parts.push(part);
    }
    part.changes.push(c);
    open.rows++;
  }

  /** An open group may be left without a commit marker only if it changed nothing we keep. */
  private closeEmpty(why: string): void {
    if (this.open && this.open.parts.length > 0) {
      throw new SpokesyncError('SPOKESYNC_E_CAPTURE', `unexpected binlog sequence: ${why}`);
    }
  }
}

function savepoint(open: Open, action: 'set' | 'rollback' | 'release', name: string): void {
  let at = open.savepoints.length - 1;
  while (at >= 0 && open.savepoints[at]!.name !== name) at--;
  if (action === 'set') {
    if (at >= 0) open.savepoints.splice(at, 1);
    const last = open.parts[open.parts.length - 1];
    open.savepoints.push({ name, parts: open.parts.length, changes: last?.changes.length ?? 0, bytes: open.bytes, rows: open.rows });
  } else if (action === 'release') {
    if (at >= 0) open.savepoints.length = at;
  } else {
    // a savepoint that was never logged was set before anything was: back to the start
    const p = open.savepoints[at] ?? { name, parts: 0, changes: 0, bytes: 0, rows: 0 };
    open.savepoints.length = at + 1;
    open.parts.length = p.parts;
    const last = open.parts[p.parts - 1];
    if (last) last.changes.length = p.changes;
    open.bytes = p.bytes;
    open.rows = p.rows;
  }
}

/**
 * A carry row belongs to the change set of the ledger row it follows, or, written by a
 * local transaction (repair), to the change set committed here; anything else is a
 * sequence capture cannot attribute.
 */
function carry(open: Open, row: Readonly<Record<string, unknown>>): void {
  let part = open.parts[open.parts.length - 1];
  const id = row['change_id'];
  if (isLocalCarry(String(id))) {
    if (!part || part.ledger !== null) open.parts.push((part = { ledger: null, changes: [] }));
    (part.carried ??= []).push(row['body']);
    return;
  }
  if (!part?.ledger || part.ledger.changeId !== String(id)) {
    throw new SpokesyncError('SPOKESYNC_E_CAPTURE', `unexpected binlog sequence: carried ops of ${String(id)} outside that change set`);
  }
  (part.carried ??= []).push(row['body']);
}

function ledgerMark(row: Readonly<Record<string, unknown>>): LedgerMark {
  const text = (name: string): string => {
    const v = row[name];
    if (v === null || v === undefined) throw new SpokesyncError('SPOKESYNC_E_CAPTURE', `ledger row without ${name} in the binlog`);
    return String(v);
  };
  return {
    changeId: text('change_id'),
    origin: text('origin'),
    fromPeer: text('from_peer'),
    hlc: text('hlc'),
    time: isoTime(text('commit_time')),
  };
}

/** '2026-01-02 03:04:05[.ffffff]' → '2026-01-02T03:04:05Z' */
export function isoTime(datetime: string): string {
  return `${datetime.slice(0, 10)}T${datetime.slice(11, 19)}Z`;
}

/** ms since the epoch → 'YYYY-MM-DDTHH:MM:SSZ' */
export function isoFromMs(ms: number): string {
  return `${new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}
