// Shared set-up for the capture tests: a throwaway server, a Db on it, a
// Capture over chosen tables, and readers for what capture journaled.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { bodyXml } from '../../agent/journal/body.js';
import type { ChangeSet, Value } from '../../apply/core/model.js';
import { Capture, type CaptureOptions } from '../../agent/capture/capture.js';
import { openDb, type Db } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { loadCatalog } from '../../apply/core/catalog.js';
import type { CaptureProcArgs } from './capture-proc.js';
import { startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';

export const STATE = 'spokesync';

export interface JournalRow {
  readonly seq: number;
  readonly changeId: string;
  readonly origin: string;
  readonly fromPeer: string | null;
  readonly hlc: string;
  readonly tables: string;
  readonly opCount: number;
  readonly file: string;
  readonly pos: number;
  readonly cs: ChangeSet;
  /** the <cs> element (decompressed when the journal keeps it compressed) */
  readonly body: Buffer;
}

export function dbFor(s: TestServer, schema?: string): Db {
  return openDb({ host: s.host, port: s.port, user: 'root', ...(schema === undefined ? {} : { schema }) });
}

/** A throwaway server with an empty `app` schema and a root Db on it, both gone at the test's teardown. */
export async function appServer(t: { teardown(f: () => unknown): void }): Promise<{ s: TestServer; db: Db }> {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = dbFor(s);
  t.teardown(() => db.close());
  await db.exec('CREATE DATABASE app');
  return { s, db };
}

export async function makeCapture(
  s: TestServer, db: Db, schema: string, tables: readonly string[], extra: Partial<CaptureOptions> = {},
): Promise<Capture> {
  const catalog = await loadCatalog(db, schema);
  return new Capture({
    db,
    settings: { host: s.host, port: s.port, user: 'root' },
    catalog,
    schema,
    stateSchema: STATE,
    tables: new Set(tables),
    node: 'kigali',
    serverId: 100 + Math.floor(Math.random() * 1000),
    log: silentLogger,
    ...extra,
  });
}

export async function journal(db: Db, afterSeq = 0, state = STATE): Promise<JournalRow[]> {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT seq, change_id, origin, from_peer, hlc, tables, op_count, body, binlog_file, binlog_pos
       FROM ${state}.journal WHERE seq > ? ORDER BY seq`,
    [afterSeq],
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    changeId: String(r.change_id),
    origin: String(r.origin),
    fromPeer: r.from_peer === null ? null : String(r.from_peer),
    hlc: String(r.hlc),
    tables: String(r.tables),
    opCount: Number(r.op_count),
    file: String(r.binlog_file),
    pos: Number(r.binlog_pos),
    cs: decodeChangeSet(bodyXml(r.body as Buffer)),
    body: bodyXml(r.body as Buffer),
  }));
}

/** A value as SELECT through apply/core/db.ts returns it, in canonical form (numbers as their text). */
export function fromSelect(v: unknown): Value {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v;
  throw new Error(`SELECT returned a ${typeof v}`);
}

/** Readable description of a value for assertion messages. */
export function show(v: unknown): string {
  if (Buffer.isBuffer(v)) return `Buffer<${v.toString('hex').slice(0, 80)}>`;
  return JSON.stringify(v);
}

export function sameCanonical(a: Value | undefined, b: Value | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') return a.ref === b.ref && a.id === b.id;
  return a === b;
}

export interface CaptureChild {
  readonly proc: ChildProcess;
  /** capture is running */
  readonly ready: Promise<void>;
  /** catch-up mode: capture reached the end of the binlog */
  readonly caughtUp: Promise<CaughtUp>;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

/** What a capture process in catch-up mode reports when it reached the end of the binlog. */
export interface CaughtUp {
  readonly ms: number;
  /** CPU time of the capture process (all threads) over the same span */
  readonly cpuMs: number;
  readonly journaled: number;
  readonly stateBinlogged?: boolean;
}

/** Runs test/helpers/capture-proc.js in a child process. */
export function spawnCapture(args: CaptureProcArgs, nodeArgs: readonly string[] = []): CaptureChild {
  const file = fileURLToPath(new URL('./capture-proc.js', import.meta.url));
  const proc = spawn(process.execPath, [...nodeArgs, file, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-20_000); });
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  let onReady: () => void = () => undefined;
  let onCaughtUp: (v: CaughtUp) => void = () => undefined;
  const ready = new Promise<void>((resolve) => { onReady = resolve; });
  const caughtUp = new Promise<CaughtUp>((resolve) => { onCaughtUp = resolve; });
  const failed = exited.then((code) => { throw new Error(`capture process exited (${code}) before it was ready: ${err.slice(-2000)}`); });
  failed.catch(() => undefined);
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const msg = JSON.parse(line) as { ready?: boolean; caughtUp?: boolean; ms?: number; cpuMs?: number; journaled?: number; stateBinlogged?: boolean };
    if (msg.ready) onReady();
    if (msg.caughtUp) onCaughtUp({ ms: msg.ms ?? 0, cpuMs: msg.cpuMs ?? 0, journaled: msg.journaled ?? 0, ...(msg.stateBinlogged === undefined ? {} : { stateBinlogged: msg.stateBinlogged }) });
  });
  // handled here so a child killed on purpose is not an unhandled rejection; awaiting still throws
  const readyOrFailed = Promise.race([ready, failed]);
  const caughtUpOrFailed = Promise.race([caughtUp, failed]);
  readyOrFailed.catch(() => undefined);
  caughtUpOrFailed.catch(() => undefined);
  return {
    proc,
    ready: readyOrFailed,
    caughtUp: caughtUpOrFailed,
    exited,
    stderr: () => err,
  };
}
