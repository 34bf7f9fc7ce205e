// Value helpers for apply (pure): comparing what the server holds with what a
// change set carries, the wire form of a server value, JSON for the conflict
// log, and SQL time literals.
import type { ColumnInfo } from '../core/catalog.js';
import type { Value } from '../core/model.js';
import { isRef } from '../core/model.js';

/** A value as mysql2 returns it or as apply binds it: text, number, bytes or NULL. */
export type LocalValue = string | number | Buffer | null;

const FLOATS = new Set(['float', 'double', 'real']);

/** Whether two local values are the same value of the column. */
export function sameValue(a: unknown, b: unknown, col: ColumnInfo | undefined): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) {
    const ba = Buffer.isBuffer(a) ? a : Buffer.from(String(a), 'utf8');
    const bb = Buffer.isBuffer(b) ? b : Buffer.from(String(b), 'utf8');
    return ba.equals(bb);
  }
  if (col && FLOATS.has(col.dataType)) return Number(a) === Number(b);
  return String(a) === String(b);
}

/**
 * The parameter for a wire value of the column. YEAR text is bound as a number:
 * the server reads the string '0' as 2000 but the number 0 as 0000.
 */
export function bindValue(v: string | Buffer, col: ColumnInfo | undefined): LocalValue {
  if (col?.dataType === 'year' && typeof v === 'string' && /^[0-9]{1,4}$/.test(v)) return Number(v);
  return v;
}

/** The wire form of a value read from the server (not a foreign key). */
export function wireScalar(v: unknown, col: ColumnInfo): string | Buffer | null {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return v;
  if (col.binary) return Buffer.from(String(v), 'utf8');
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** A wire value for the JSON of the conflict log: bytes as base64, references as {ref, id}. */
export function jsonValue(v: Value | undefined): unknown {
  if (v === undefined || v === null) return null;
  if (Buffer.isBuffer(v)) return { base64: v.toString('base64') };
  if (isRef(v)) return { ref: v.ref, id: v.id };
  return v;
}

export function jsonRow(row: Readonly<Record<string, Value>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(row)) out[k] = jsonValue(row[k]);
  return out;
}

/** DATETIME(6) text for a millisecond clock reading (UTC). */
export function sqlTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** DATETIME text of a change set commit time ('YYYY-MM-DDTHH:MM:SSZ'). */
export function sqlCommitTime(time: string): string {
  return time.replace('T', ' ').replace('Z', '');
}
