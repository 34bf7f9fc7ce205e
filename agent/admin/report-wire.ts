// Status reports on the wire: one request header (x-spokesync-report) with the
// child's own report first, then the latest it holds of every node below it.
// JSON, deflated, base64url. Bounded both ways: the sender trims what does not
// fit (relayed histories first, then the deepest nodes) and says so in its log;
// the receiver reads at most MAX_REPORT_CHARS and MAX_REPORT_NODES and checks
// every field, dropping what does not fit the format. Never row values.
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { HistoryEntry } from './history.js';
import { MAX_SCHEMA_TABLES, type NodeReport } from './report.js';

/** Largest header value sent (the parent reads headers up to 32 KiB in all). */
export const MAX_REPORT_CHARS = 24 * 1024;
/** Most nodes one report carries, and most a receiver reads. */
export const MAX_REPORT_NODES = 1000;
/** Exchanges of each relayed node carried up. */
export const RELAYED_HISTORY = 10;
const MAX_INFLATED = 4 * 1024 * 1024;

/** One node of a report: its own report and, for nodes below the sender, what their parents saw of them. */
export interface ReportEntry {
  readonly report: NodeReport;
  /** its last successful exchange with its parent, by that parent (ISO 8601) */
  readonly seenAt?: string | null;
  /** its clock minus its parent's, as that parent measured it */
  readonly clockOffsetMs?: number | null;
  /** its last exchanges with its parent, newest first, as that parent recorded them */
  readonly history?: readonly HistoryEntry[];
}

export interface Encoded {
  readonly value: string;
  /** nodes left out, and whether relayed histories were cut, to fit */
  readonly dropped: number;
  readonly historyCut: boolean;
}

const encode = (entries: readonly ReportEntry[]): string => deflateRawSync(Buffer.from(JSON.stringify({ v: 1, nodes: entries }))).toString('base64url');

/** The header value for `entries` (own report first, nearest nodes next), trimmed to `max` characters. */
export function encodeReport(entries: readonly ReportEntry[], max = MAX_REPORT_CHARS): Encoded {
  let list = entries.slice(0, MAX_REPORT_NODES);
  let dropped = entries.length - list.length;
  let value = encode(list);
  if (value.length <= max) return { value, dropped, historyCut: false };
  for (const keep of [3, 0]) {
    list = list.map((e) => (e.history && e.history.length > keep ? { ...e, history: e.history.slice(0, keep) } : e));
    value = encode(list);
    if (value.length <= max) return { value, dropped, historyCut: true };
  }
  // then the farthest nodes go, halving the cut until it fits
  let lo = 1;
  let hi = list.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (encode(list.slice(0, mid)).length <= max) lo = mid;
    else hi = mid - 1;
  }
  dropped += list.length - lo;
  return { value: encode(list.slice(0, lo)), dropped, historyCut: true };
}

export interface Decoded {
  readonly entries: ReportEntry[];
  /** entries that did not fit the format, and why (the first few) */
  readonly bad: readonly string[];
}

/** Reads a header value: throws when it is not a report at all; entries that are not well formed are left out. */
export function decodeReport(value: string): Decoded {
  if (value.length > MAX_REPORT_CHARS * 2 || !/^[A-Za-z0-9_-]*$/.test(value)) throw new Error('not a base64url value of a sane size');
  const json = inflateRawSync(Buffer.from(value, 'base64url'), { maxOutputLength: MAX_INFLATED }).toString('utf8');
  const doc = JSON.parse(json) as unknown;
  if (!isObj(doc) || doc.v !== 1 || !Array.isArray(doc.nodes)) throw new Error('not a version 1 report');
  const entries: ReportEntry[] = [];
  const bad: string[] = [];
  for (const [i, raw] of (doc.nodes as unknown[]).slice(0, MAX_REPORT_NODES).entries()) {
    try {
      entries.push(readEntry(raw));
    } catch (e) {
      if (i === 0) throw new Error(`its first node: ${(e as Error).message}`, { cause: e });
      if (bad.length < 5) bad.push(`node ${i}: ${(e as Error).message}`);
    }
  }
  return { entries, bad };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

class Bad extends Error {}

function field(o: Obj, k: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
}
function obj(o: Obj, k: string): Obj {
  const v = field(o, k);
  if (!isObj(v)) throw new Bad(`${k} is not an object`);
  return v;
}
function str(o: Obj, k: string, max: number, re?: RegExp): string {
  const v = field(o, k);
  if (typeof v !== 'string' || (re && !re.test(v))) throw new Bad(`${k} is not valid`);
  return v.length > max ? v.slice(0, max) : v;
}
function strOrNull(o: Obj, k: string, max: number, re?: RegExp): string | null {
  return field(o, k) === null || field(o, k) === undefined ? null : str(o, k, max, re);
}
function num(o: Obj, k: string): number {
  const v = field(o, k);
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) throw new Bad(`${k} is not a count`);
  return Math.floor(v);
}
function numOrNull(o: Obj, k: string): number | null {
  return field(o, k) === null || field(o, k) === undefined ? null : num(o, k);
}
function int(o: Obj, k: string): number | null {
  const v = field(o, k);
  if (v === null || v === undefined) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new Bad(`${k} is not a whole number`);
  return v;
}

const ID = /^[a-z0-9-]{1,64}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
/** a table name as MariaDB allows it: 1 to 64 characters, none of them a control character */
const TABLE = /^\P{Cc}{1,64}$/u;
const DIGEST = /^[0-9a-f]{8,16}$/;

/** schema.byTable: at most MAX_SCHEMA_TABLES table names, each with a short hex digest. */
function byTable(s: Obj): Record<string, string> | undefined {
  const v = field(s, 'byTable');
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw new Bad('byTable is not an object');
  const entries = Object.entries(v);
  if (entries.length > MAX_SCHEMA_TABLES) throw new Bad('byTable lists too many tables');
  for (const [t, h] of entries) if (!TABLE.test(t) || typeof h !== 'string' || !DIGEST.test(h)) throw new Bad('byTable is not valid');
  return Object.fromEntries(entries) as Record<string, string>;
}

/** A nested object read by `read`; a fault in it names its path. */
function sub<T>(o: Obj, k: string, read: (v: Obj) => T): T {
  const v = obj(o, k);
  try {
    return read(v);
  } catch (e) {
    throw new Bad(`${k}.${(e as Error).message}`, { cause: e });
  }
}

/** One node's report, every field checked; strings are cut to their limits. */
export function readNodeReport(r: Obj): NodeReport {
  return {
    node: str(r, 'node', 64, ID),
    parent: strOrNull(r, 'parent', 64, ID),
    at: str(r, 'at', 40, ISO),
    software: str(r, 'software', 40),
    stateVersion: num(r, 'stateVersion'),
    schema: sub(r, 'schema', (s) => {
      const tables = byTable(s);
      return { hash: str(s, 'hash', 64, /^[0-9a-f]{1,64}$/), tables: num(s, 'tables'), ...(tables ? { byTable: tables } : {}) };
    }),
    capture: sub(r, 'capture', (c) => {
      const running = field(c, 'running');
      if (typeof running !== 'boolean') throw new Bad('running is not valid');
      return {
        running, position: strOrNull(c, 'position', 300), behindBytes: numOrNull(c, 'behindBytes'), lagSeconds: numOrNull(c, 'lagSeconds'),
        error: strOrNull(c, 'error', 300),
      };
    }),
    pending: sub(r, 'pending', (p) => ({ up: numOrNull(p, 'up'), down: num(p, 'down') })),
    quarantined: num(r, 'quarantined'),
    held: sub(r, 'held', (h) => {
      const tables = field(h, 'tables');
      if (!Array.isArray(tables) || tables.length > 20 || !tables.every((t) => typeof t === 'string' && t.length <= 64)) throw new Bad('tables is not valid');
      return { count: num(h, 'count'), tables: tables as string[] };
    }),
    conflicts: num(r, 'conflicts'),
    // older nodes do not say
    conflictsUnreviewed: numOrNull(r, 'conflictsUnreviewed'),
    lastSuccess: strOrNull(r, 'lastSuccess', 40, ISO),
    lastError: field(r, 'lastError') === null || field(r, 'lastError') === undefined ? null
      : sub(r, 'lastError', (l) => ({ at: str(l, 'at', 40, ISO), error: str(l, 'error', 300) })),
    stateBytes: numOrNull(r, 'stateBytes'),
  };
}

function readHistory(v: unknown): HistoryEntry[] {
  if (!Array.isArray(v)) throw new Bad('history is not a list');
  return v.slice(0, RELAYED_HISTORY).map((h) => {
    if (!isObj(h)) throw new Bad('a history entry is not an object');
    return {
      at: str(h, 'at', 40, ISO), durationMs: num(h, 'durationMs'), bytesUp: num(h, 'bytesUp'), bytesDown: num(h, 'bytesDown'),
      setsUp: num(h, 'setsUp'), setsDown: num(h, 'setsDown'), result: str(h, 'result', 300),
    };
  });
}

function readEntry(raw: unknown): ReportEntry {
  if (!isObj(raw)) throw new Bad('not an object');
  const report = sub(raw, 'report', readNodeReport);
  const history = field(raw, 'history') === undefined || field(raw, 'history') === null ? undefined : readHistory(field(raw, 'history'));
  return {
    report,
    ...(field(raw, 'seenAt') === undefined ? {} : { seenAt: strOrNull(raw, 'seenAt', 40, ISO) }),
    ...(field(raw, 'clockOffsetMs') === undefined ? {} : { clockOffsetMs: int(raw, 'clockOffsetMs') }),
    ...(history ? { history } : {}),
  };
}
