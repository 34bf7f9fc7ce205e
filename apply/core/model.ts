// The change-set model shared by capture, the wire codec, routing and apply.
// Everything here is plain data: no I/O, no database handles.

/**
 * A reference to another row by its network-wide identity (a foreign-key value
 * after translation). `table` is the referenced table, `id` its identity string.
 */
export interface Ref {
  readonly ref: string;
  readonly id: string;
}

/**
 * One column value as it travels.
 * - string: text in the column's canonical text form (what mysql2 returns with
 *   dateStrings, supportBigNumbers and bigNumberStrings: '2026-01-02 03:04:05.123456',
 *   '18446744073709551615', DECIMAL as written by the server, SET as 'a,b', JSON as text,
 *   YEAR as '2026', TIME as '-838:59:59')
 * - Buffer: bytes of a binary column (BINARY, VARBINARY, BLOB, BIT, GEOMETRY)
 * - Ref: a foreign key translated to the referenced row's identity
 * - null: SQL NULL (distinct from '')
 */
export type Value = string | Buffer | Ref | null;

export type Row = Readonly<Record<string, Value>>;

export function isRef(v: Value): v is Ref {
  return v !== null && typeof v === 'object' && !Buffer.isBuffer(v) && 'ref' in v;
}

export interface InsertOp {
  readonly kind: 'insert';
  readonly table: string;
  /** identity of the row (see identityOf in agent/schema) */
  readonly id: string;
  /** every column except local-id columns (auto-increment or shared primary key) */
  readonly row: Row;
}

export interface UpdateOp {
  readonly kind: 'update';
  readonly table: string;
  readonly id: string;
  /** the changed columns, new values */
  readonly set: Row;
  /** the same columns, old values (conflict detection) */
  readonly old: Row;
}

export interface DeleteOp {
  readonly kind: 'delete';
  readonly table: string;
  readonly id: string;
  /** digest of the old row (rowDigest) */
  readonly digest: string;
}

export type Op = InsertOp | UpdateOp | DeleteOp;

/**
 * One source transaction (or one applied change set re-captured on a node it
 * reached). `id` is network-wide and assigned once, on the origin node.
 */
export interface ChangeSet {
  /** `${origin}:${hlc}`, unique in the network */
  readonly id: string;
  /** node id where the change was first committed */
  readonly origin: string;
  /** hybrid logical clock stamp from the origin, decimal string of a uint64 (see hlc.ts) */
  readonly hlc: string;
  /** commit time on the origin, 'YYYY-MM-DDTHH:MM:SSZ' */
  readonly time: string;
  readonly ops: readonly Op[];
}

/** A change set as it sits in a batch: with the sender's journal sequence number. */
export interface BatchEntry {
  /** the sender's journal sequence; the receiver acks the highest it has durably taken */
  readonly seq: string;
  readonly cs: ChangeSet;
}

export interface BatchHeader {
  /** wire format version, currently 1 */
  readonly version: 1;
  readonly from: string;
  readonly to: string;
  /** the sender's batch counter for this peer */
  readonly seq: string;
  /** highest journal seq of the receiver that the sender has durably taken ('0' if none) */
  readonly ack: string;
  /** true when the sender had more to send than fitted in this batch */
  readonly more: boolean;
  /** the sender's incarnation: a new one after the sender was restored from a backup (absent toward peers that do not read it) */
  readonly inc?: string;
  /** the receiver's incarnation the ack refers to, as the sender last saw it (absent when unknown) */
  readonly rinc?: string;
}

/** An incarnation: 16 to 64 lower-case hex digits. */
export const INCARNATION = /^[0-9a-f]{16,64}$/;

export const WIRE_NAMESPACE = 'urn:spokesync:batch:1';
