// Writes a snapshot of the application schema to a byte stream (a file or an
// HTTP response): header, every table's rows, then — once capture has journaled
// past the snapshot's binlog position — the child's cursor on this node is set
// and the trailer (journal seq, row counts, sha256) closes the file.
// Memory stays flat: rows stream from the server with backpressure into gzip
// (and, for a file, through the sealing of sealed.ts).
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zc, type Gzip } from 'node:zlib';
import type { DbSettings, Queryable } from '../../apply/core/db.js';
import type { Logger } from '../../apply/core/log.js';
import { journalSeqAt, startChildCursor, type WaitForCapture } from './cursor.js';
import {
  encodeHeader, encodeRow, encodeTableStart, encodeTrailer, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type SnapshotHeader,
} from './snapshot-format.js';
import { formatPosition, type BinlogPosition } from '../capture/position.js';
import { createProgress, type Progress } from './progress.js';
import { sealer } from './sealed.js';
import { admitSnapshotCursor, type SnapshotRails } from './rails.js';
import { openSnapshotSource } from './snapshot-source.js';
import type { Catalog } from '../../apply/core/catalog.js';
import type { Filters } from '../rows/membership-sql.js';
import { startMembers } from '../rows/scan.js';

export interface SnapshotDeps {
  /** connection settings of this node's server */
  readonly settings: DbSettings;
  /** a pool on the same server, for the state schema */
  readonly db: Queryable;
  readonly schema: string;
  readonly stateSchema: string;
  /** this node's id */
  readonly node: string;
  readonly log: Logger;
  /**
   * Resolves once capture has journaled every transaction up to `pos`;
   * keepAlive() should be called every few seconds while waiting (viaCapture, viaCheckpoint).
   */
  readonly waitForCapture: WaitForCapture;
  /** progress bar / log lines (default: a bar on stderr when it is a terminal, log lines otherwise) */
  readonly progress?: (totalRows: number) => Progress;
  /** gzip level 1..9 (default 6) */
  readonly gzipLevel?: number;
  /** called once the snapshot transaction is open, before the first byte is written (HTTP status line) */
  readonly onOpen?: () => void;
  /**
   * Seal the output for `peer` with this secret, the child's token (snapshot
   * files: sealed.ts). The HTTP body is not sealed: TLS protects it.
   */
  readonly sealWith?: string;
  /** plaintext bytes per sealed chunk (default 64 KiB) */
  readonly sealChunk?: number;
  /** the site's cursor moves only if it loses nothing, or the loss is forced (and then recorded) */
  readonly rails: SnapshotRails;
  /** a child with row filters: only its rows are written (agent/rows/) */
  readonly subset?: (catalog: Catalog) => Filters | null;
}

export interface SnapshotResult {
  readonly position: BinlogPosition;
  readonly journalSeq: string;
  readonly tables: number;
  readonly rows: number;
  /** uncompressed bytes */
  readonly bytes: number;
  readonly seconds: number;
}

const CHUNK = 64 * 1024;
const KEEPALIVE_MS = 10_000;

/** Buffers lines into chunks for gzip, hashing every byte, honouring backpressure. */
class LineSink {
  private parts: string[] = [];
  private held = 0;
  private lastKeepAlive = Date.now();
  bytes = 0;
  /** rejects as soon as the output fails (or ends early), so a stalled write never hangs */
  private readonly failed: Promise<never>;
  constructor(private readonly gz: Gzip, private readonly hash: Hash, piping: Promise<void>) {
    this.failed = piping.then(() => {
      throw new Error('snapshot output ended early');
    });
    this.failed.catch(() => undefined);
  }

  async line(s: string): Promise<void> {
    this.parts.push(s);
    this.held += s.length;
    if (this.held >= CHUNK) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const buf = Buffer.from(this.parts.join(''), 'utf8');
    this.parts = [];
    this.held = 0;
    this.hash.update(buf);
    this.bytes += buf.length;
    if (this.gz.destroyed) await this.failed;
    if (!this.gz.write(buf)) await Promise.race([once(this.gz, 'drain'), this.failed]);
  }

  /** An empty line pushed through to the reader, so idle links and timeouts stay open. */
  async keepAlive(): Promise<void> {
    if (Date.now() - this.lastKeepAlive < KEEPALIVE_MS) return;
    this.lastKeepAlive = Date.now();
    await this.line('\n');
    await this.flush();
    await new Promise<void>((resolve) => this.gz.flush(zc.Z_SYNC_FLUSH, () => resolve()));
  }
}

/** Writes a snapshot for child `peer` to `out` and starts that child's cursor. `out` is ended. */
export async function writeSnapshot(deps: SnapshotDeps, peer: string, out: Writable): Promise<SnapshotResult> {
  if (deps.rails.route.peer !== peer) throw new Error(`the snapshot is for ${peer}, its rails for ${deps.rails.route.peer}`);
  const started = Date.now();
  const log = deps.log.child({ peer });
  const source = await openSnapshotSource(deps.settings, deps.schema, deps.subset);
  try {
    deps.onOpen?.();
  } catch (e) {
    await source.close();
    throw e;
  }
  const gz = createGzip({ level: deps.gzipLevel ?? 6 });
  const piping = deps.sealWith === undefined
    ? pipeline(gz, out)
    : pipeline(gz, sealer({
      sender: deps.node, receiver: peer, secret: deps.sealWith, ...(deps.sealChunk === undefined ? {} : { chunkSize: deps.sealChunk }),
    }), out);
  piping.catch(() => undefined);
  const hash = createHash('sha256');
  const sink = new LineSink(gz, hash, piping);
  const totalRows = source.tables.reduce((n, t) => n + t.estimatedRows, 0);
  const progress = (deps.progress ?? ((total) => createProgress({ label: 'snapshot', totalRows: total, log })))(totalRows);
  let rows = 0;
  try {
    log.info('snapshot started', { position: formatPosition(source.position), tables: source.tables.length });
    const header: SnapshotHeader = {
      format: SNAPSHOT_FORMAT,
      version: SNAPSHOT_VERSION,
      node: deps.node,
      peer,
      schema: deps.schema,
      charset: source.charset,
      collation: source.collation,
      createdAt: new Date().toISOString(),
      server: source.server,
      binlog: source.position,
      tables: source.tables,
    };
    await sink.line(encodeHeader(header));
    const counts: Record<string, number> = {};
    for (const t of source.tables) {
      progress.table(t.name);
      await sink.line(encodeTableStart(t.name));
      let n = 0;
      for await (const raw of source.rows(t)) {
        const line = encodeRow(raw as (Buffer | null)[], t.columns);
        await sink.line(line);
        n++;
        progress.add(1, line.length);
      }
      counts[t.name] = n;
      rows += n;
    }
    const owners = deps.subset ? await source.owners() : null;
    await source.close();
    await sink.flush();
    await deps.waitForCapture(source.position, () => sink.keepAlive());
    const journalSeq = await journalSeqAt(deps.db, deps.stateSchema, source.position);
    await admitSnapshotCursor(deps.db, deps.stateSchema, deps.node, deps.rails, journalSeq);
    // the owner rows it holds from now (row filters), before its cursor moves
    if (owners) await startMembers(deps.db, deps.stateSchema, peer, owners);
    // The cursor is set before the trailer goes out: a child only completes a clone
    // once it has the trailer, so it never holds data the parent has no cursor for.
    await startChildCursor(
      deps.db, deps.stateSchema, peer, journalSeq,
      `snapshot at ${formatPosition(source.position)}, journal seq ${journalSeq}`,
    );
    await sink.flush();
    const digest = hash.digest('hex');
    gz.end(encodeTrailer({ journalSeq, rows: counts, sha256: digest }));
    await piping;
    progress.done(true);
    const result = {
      position: source.position, journalSeq, tables: source.tables.length, rows, bytes: sink.bytes,
      seconds: (Date.now() - started) / 1000,
    };
    log.info('snapshot written', { ...result, position: formatPosition(result.position) });
    return result;
  } catch (e) {
    progress.done(false);
    gz.destroy(e as Error);
    await piping.catch(() => undefined);
    await source.close().catch(() => undefined);
    throw e;
  }
}
