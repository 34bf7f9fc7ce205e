// The snapshot file: gzip-compressed UTF-8 lines, written and read as a stream.
//
//   {"format":"spokesync-snapshot","version":1,...}   header: source node, schema, binlog position, tables + DDL
//   {"table":"person"}                                 the rows of one table follow
//   ["1","a1b2…",null,"AAEC"]                          one row: a JSON array, one entry per column in the header's
//                                                      order; null is SQL NULL, text columns are strings, binary
//                                                      columns are base64 strings
//   (empty line)                                       keep-alive while the source waits; ignored
//   {"trailer":{"journalSeq":"42","rows":{...},"sha256":"…"}}
//
// sha256 covers every byte (uncompressed) before the trailer line. The trailer
// also carries the source's journal seq that the snapshot covers: it is only
// known once the source's capture has passed the snapshot's binlog position.
// Pure: no I/O here.
import { SpokesyncError } from '../../apply/core/errors.js';
import type { BinlogPosition } from '../capture/position.js';

export const SNAPSHOT_FORMAT = 'spokesync-snapshot';
export const SNAPSHOT_VERSION = 1;

export interface SnapshotColumn {
  readonly name: string;
  /** values are bytes, carried as base64 */
  readonly binary: boolean;
}

export interface SnapshotTable {
  readonly name: string;
  /** SHOW CREATE TABLE on the source */
  readonly ddl: string;
  /** the columns each row carries (generated columns are left out: the server computes them) */
  readonly columns: readonly SnapshotColumn[];
  /** information_schema estimate, for progress only */
  readonly estimatedRows: number;
}

export interface SnapshotHeader {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly version: typeof SNAPSHOT_VERSION;
  /** node id of the source (the parent) */
  readonly node: string;
  /** the child this snapshot seeds; its cursor on the source starts at the trailer's journalSeq */
  readonly peer: string;
  /** the application schema on the source */
  readonly schema: string;
  readonly charset: string;
  readonly collation: string;
  /** ISO time the snapshot was taken */
  readonly createdAt: string;
  /** VERSION() of the source server */
  readonly server: string;
  /** the source binlog position the data corresponds to */
  readonly binlog: BinlogPosition;
  readonly tables: readonly SnapshotTable[];
}

export interface SnapshotTrailer {
  /** the source's journal seq covering everything up to `binlog` (decimal string) */
  readonly journalSeq: string;
  readonly rows: Readonly<Record<string, number>>;
  /** hex sha256 of every byte before the trailer line */
  readonly sha256: string;
}

/** One decoded value: SQL NULL, text, or bytes. */
export type SnapshotValue = string | Buffer | null;

export type SnapshotLine =
  | { readonly kind: 'header'; readonly header: SnapshotHeader }
  | { readonly kind: 'table'; readonly table: string }
  | { readonly kind: 'row'; readonly values: readonly unknown[] }
  | { readonly kind: 'trailer'; readonly trailer: SnapshotTrailer }
  | { readonly kind: 'keepalive' };

export function encodeHeader(h: SnapshotHeader): string {
  return JSON.stringify(h) + '\n';
}

export function encodeTableStart(name: string): string {
  return JSON.stringify({ table: name }) + '\n';
}

/** A row from raw column bytes (null for SQL NULL), in the table's column order. */
export function encodeRow(raw: readonly (Buffer | null)[], columns: readonly SnapshotColumn[]): string {
  const out = raw.map((b, i) => (b === null ? null : columns[i]!.binary ? b.toString('base64') : b.toString('utf8')));
  return JSON.stringify(out) + '\n';
}

export function encodeTrailer(t: SnapshotTrailer): string {
  return JSON.stringify({ trailer: t }) + '\n';
}

function bad(message: string, cause?: unknown): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_SNAPSHOT', message, cause === undefined ? undefined : { cause });
}

/** Classifies and parses one line (without its newline). Throws SPOKESYNC_E_SNAPSHOT on anything unexpected. */
export function decodeLine(line: string, lineNo: number): SnapshotLine {
  if (line === '') return { kind: 'keepalive' };
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw bad(`snapshot line ${lineNo} is not valid JSON`, e);
  }
  if (Array.isArray(v)) return { kind: 'row', values: v };
  if (typeof v !== 'object' || v === null) throw bad(`snapshot line ${lineNo} is neither a row nor a record`);
  const o = v as Record<string, unknown>;
  if (typeof o.table === 'string') return { kind: 'table', table: o.table };
  if (o.trailer !== undefined) return { kind: 'trailer', trailer: checkTrailer(o.trailer) };
  if (o.format !== undefined) return { kind: 'header', header: checkHeader(o) };
  throw bad(`snapshot line ${lineNo} is an unknown record`);
}

const NODE_ID = /^[a-z0-9-]+$/;

function checkPosition(v: unknown): BinlogPosition | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { file, pos } = v as { file?: unknown; pos?: unknown };
  if (typeof file !== 'string' || file === '' || file.length > 255) return undefined;
  if (typeof pos !== 'number' || !Number.isSafeInteger(pos) || pos < 0) return undefined;
  return { file, pos };
}

function checkHeader(o: Record<string, unknown>): SnapshotHeader {
  if (o.format !== SNAPSHOT_FORMAT) throw bad('not a spokesync snapshot');
  if (o.version !== SNAPSHOT_VERSION) {
    throw bad(`snapshot format version ${String(o.version)} is not supported (this spokesync reads version ${SNAPSHOT_VERSION})`);
  }
  const str = (k: string): string => {
    const x = o[k];
    if (typeof x !== 'string') throw bad(`snapshot header: ${k} is missing`);
    return x;
  };
  const node = str('node');
  const peer = str('peer');
  if (!NODE_ID.test(node) || !NODE_ID.test(peer)) throw bad('snapshot header: node ids are malformed');
  const binlog = checkPosition(o.binlog);
  if (!binlog) throw bad('snapshot header: binlog position is malformed');
  if (!Array.isArray(o.tables)) throw bad('snapshot header: tables is missing');
  const names = new Set<string>();
  const tables = o.tables.map((t: unknown): SnapshotTable => {
    const x = t as Record<string, unknown> | null;
    if (typeof x !== 'object' || x === null || typeof x.name !== 'string' || typeof x.ddl !== 'string' || !Array.isArray(x.columns)) {
      throw bad('snapshot header: a table entry is malformed');
    }
    if (names.has(x.name) || x.name === '' || x.name.length > 64) throw bad('snapshot header: table names are malformed');
    names.add(x.name);
    const columns = x.columns.map((c: unknown): SnapshotColumn => {
      const y = c as Record<string, unknown> | null;
      if (typeof y !== 'object' || y === null || typeof y.name !== 'string' || typeof y.binary !== 'boolean') {
        throw bad(`snapshot header: a column of ${x.name} is malformed`);
      }
      return { name: y.name, binary: y.binary };
    });
    if (!/^CREATE TABLE /i.test(x.ddl)) throw bad(`snapshot header: the DDL of ${x.name} is not a CREATE TABLE`);
    return { name: x.name, ddl: x.ddl, columns, estimatedRows: typeof x.estimatedRows === 'number' ? x.estimatedRows : 0 };
  });
  return {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    node,
    peer,
    schema: str('schema'),
    charset: str('charset'),
    collation: str('collation'),
    createdAt: str('createdAt'),
    server: str('server'),
    binlog,
    tables,
  };
}

function checkTrailer(v: unknown): SnapshotTrailer {
  const o = v as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null) throw bad('snapshot trailer is malformed');
  if (typeof o.journalSeq !== 'string' || !/^\d{1,20}$/.test(o.journalSeq)) throw bad('snapshot trailer: journalSeq is malformed');
  if (typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256)) throw bad('snapshot trailer: sha256 is malformed');
  const rows: Record<string, number> = {};
  if (typeof o.rows !== 'object' || o.rows === null) throw bad('snapshot trailer: rows is malformed');
  for (const [k, n] of Object.entries(o.rows)) {
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw bad('snapshot trailer: a row count is malformed');
    rows[k] = n;
  }
  return { journalSeq: o.journalSeq, rows, sha256: o.sha256 };
}

/** The typed values of a row line, checked against the table's columns. */
export function decodeRow(values: readonly unknown[], columns: readonly SnapshotColumn[], table: string): SnapshotValue[] {
  if (values.length !== columns.length) {
    throw bad(`a row of ${table} has ${values.length} values for ${columns.length} columns`);
  }
  return values.map((v, i) => {
    if (v === null) return null;
    if (typeof v !== 'string') throw bad(`a row of ${table} holds a value that is neither text, base64 nor null`);
    return columns[i]!.binary ? Buffer.from(v, 'base64') : v;
  });
}
