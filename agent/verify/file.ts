// verify by file, for peers without a link (and for a parent, which never
// calls its children): `verify --out FILE` writes this node's checksums for one
// peer, `verify --in FILE` at that peer compares itself with them. The file
// holds, per table, its shape and every row's identity, chunk digits and
// short fingerprint (no value), and the rows in flight at the writer toward the
// reader; gzipped, then sealed like USB files with the token the two share.
// The reader loads it into a temporary table on its own server and compares
// through the same questions as over HTTP (FileSide), so memory stays flat.
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, pipeline as pipelineCb } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { Catalog } from '../../apply/core/catalog.js';
import type { Db, DbSettings, Queryable } from '../../apply/core/db.js';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import type { InsertOp } from '../../apply/core/model.js';
import { shapeOf, type TableShape } from '../../apply/codec/shape.js';
import type { Config } from '../config/types.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { splitLines } from '../provision/lines.js';
import { rawConnection } from '../provision/snapshot-source.js';
import { open, seal, type FileKind, type UsbHeader } from '../usb/usb-file.js';
import { canonicalIdentity, rowsInFlight } from './in-flight.js';
import { chunkHash, rowSql } from './row-sql.js';
import { subsetOf } from './side.js';
import { qid } from '../../apply/core/db.js';
import type { Filters } from '../rows/membership-sql.js';
import type { CheckAnswer, CheckQuery, Chunk, RowHash, RowsQuery, SumsQuery, VerifySide } from './side.js';

const FORMAT = 'spokesync-verify';

export const VERIFY_FILE: FileKind = {
  magic: Buffer.from('SPOKESYNC-VERIFY', 'ascii'),
  label: 'verify',
  name: 'verify file',
  use: 'compare with it with `spokesync verify --in FILE`',
  error: (message, cause) => new SpokesyncError('SPOKESYNC_E_USB_FILE', message, {
    ...(cause === undefined ? {} : { cause }),
    fix: 'The file is damaged, cut short, changed, or meant for another node: write it again with `spokesync verify --out FILE --peer <this node>`.',
  }),
};

/** The peer a file goes to or comes from, and the token the two share. */
export interface FilePeer {
  readonly id: string;
  readonly secret: string;
}

/** A child by its id, or the parent (by its id when known). */
export function filePeer(config: Config, knownParent: string | null, id: string | undefined): FilePeer {
  const child = id === undefined ? undefined : config.children.find((c) => c.id === id);
  if (child) return { id: child.id, secret: child.token };
  const parentId = id ?? knownParent;
  if (!config.parent || parentId === null) {
    throw new SpokesyncError('SPOKESYNC_E_USAGE', id === undefined
      ? 'name the peer the file is for with --peer ID (a child, or the parent)'
      : `'${id}' is neither a child of this node nor its parent`);
  }
  if (knownParent !== null && parentId !== knownParent) {
    throw new SpokesyncError('SPOKESYNC_E_USAGE', `'${parentId}' is neither a child of this node nor its parent (${knownParent})`);
  }
  return { id: parentId, secret: config.parent.token };
}

export interface WriteOptions {
  readonly settings: DbSettings;
  readonly db: Queryable;
  readonly catalog: Catalog;
  readonly tables: readonly string[];
  readonly stateSchema: string;
  readonly node: string;
  readonly peer: FilePeer;
  /** a child with row filters: only its subset (agent/rows/) */
  readonly subset?: Filters | null;
}

/** Writes this node's checksums for `peer` to `path` (path.partial until complete). */
export async function writeVerifyFile(o: WriteOptions, path: string): Promise<{ tables: number; rows: number; bytes: number }> {
  const moving = await rowsInFlight(o.db, o.stateSchema, o.peer.id, null);
  const { conn, q } = await rawConnection(o.settings);
  let rows = 0;
  async function* lines(): AsyncGenerator<Buffer> {
    yield line({ format: FORMAT, version: 1, node: o.node, peer: o.peer.id, createdAt: new Date().toISOString() });
    // one consistent read for every table (row filters name tables without their schema)
    if (o.subset) await q.exec(`USE ${qid(o.catalog.schema)}`);
    await q.exec('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    for (const name of o.tables) {
      const r = subsetOf(rowSql(o.catalog, name), o.catalog, o.subset ?? null);
      yield line({ table: name, shape: shapeOf(r.table) });
      const stream = conn.query({
        sql: `SELECT ${chunkHash(r)}, ${r.identity}, LEFT(${r.fingerprint}, 16) FROM ${r.from}`, rowsAsArray: true, typeCast: false,
      }).stream({ highWaterMark: 256 });
      for await (const raw of stream as AsyncIterable<(Buffer | null)[]>) {
        rows++;
        yield line([raw[0]!.toString('latin1'), raw[1] === null ? null : raw[1]!.toString('utf8'), raw[2]!.toString('latin1')]);
      }
    }
    await q.exec('COMMIT');
    yield line({ inFlight: [...moving].flatMap(([t, ids]) => [...ids].map((id) => [t, id])) });
    yield line({ end: true, rows });
  }
  const partial = `${path}.partial`;
  const out = createWriteStream(partial, { mode: 0o600 });
  try {
    await pipeline(Readable.from(lines()), createGzip(),
      (src: AsyncIterable<Buffer>) => seal(src, { sender: o.node, receiver: o.peer.id, secret: o.peer.secret, kind: VERIFY_FILE }), out);
    await rename(partial, path);
  } catch (e) {
    await rm(partial, { force: true });
    throw e;
  } finally {
    conn.destroy();
  }
  return { tables: o.tables.length, rows, bytes: out.bytesWritten };
}

const line = (v: unknown): Buffer => Buffer.from(`${JSON.stringify(v)}\n`, 'utf8');

const BATCH = 1000;

/** A peer's checksums loaded from its file: a temporary table on one connection of this node's server. */
export class FileSide implements VerifySide {
  private constructor(
    private readonly conn: Queryable & { release(): void },
    /** the temporary table, in the state schema */
    private readonly temp: string,
    readonly sender: string,
    readonly createdAt: string,
    private readonly shapeOf: ReadonlyMap<string, TableShape>,
    /** table → identities (canonical) in flight at the writer */
    private readonly moving: ReadonlyMap<string, ReadonlySet<string>>,
    private readonly catalog: Catalog,
  ) {}

  /** Opens and loads a file made for `node`; `peerOf` names the sender's shared token (or refuses it). */
  static async load(db: Db, stateSchema: string, path: string, node: string, catalog: Catalog, peerOf: (sender: string) => FilePeer): Promise<FileSide> {
    const temp = stateTable(stateSchema, 'verify_rows');
    let header: UsbHeader | undefined;
    const secretFor = (h: UsbHeader): string => {
      if (h.receiver !== node) throw VERIFY_FILE.error(`the file is for '${h.receiver}', this node is '${node}'`);
      return peerOf(h.sender).secret;
    };
    async function* plain(): AsyncGenerator<Buffer> {
      for await (const item of open(createReadStream(path), secretFor, VERIFY_FILE)) {
        if (item.type === 'header') header = item.header;
        else yield item.data;
      }
    }
    const gunzip = createGunzip();
    pipelineCb(Readable.from(plain()), gunzip, () => undefined);
    const conn = await db.connection();
    try {
      await conn.exec(`DROP TEMPORARY TABLE IF EXISTS ${temp}`);
      await conn.exec(`CREATE TEMPORARY TABLE ${temp} (
        tbl VARCHAR(64) NOT NULL, ih CHAR(32) CHARACTER SET ascii NOT NULL, k VARCHAR(2000) NULL, h CHAR(16) CHARACTER SET ascii NOT NULL,
        KEY (tbl, ih), KEY (tbl, k(255))) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
      const shapes = new Map<string, TableShape>();
      const moving = new Map<string, Set<string>>();
      let first: { format?: unknown; peer?: unknown; createdAt?: unknown } | undefined;
      let table: string | undefined;
      let batch: unknown[] = [];
      let rows = 0;
      let ended = false;
      const flush = async (): Promise<void> => {
        if (batch.length === 0) return;
        await conn.exec(`INSERT INTO ${temp} (tbl, ih, k, h) VALUES ${Array(batch.length / 4).fill('(?, ?, ?, ?)').join(', ')}`, batch);
        batch = [];
      };
      try {
        for await (const raw of splitLines(gunzip as AsyncIterable<Buffer>, 16 * 1024 * 1024)) {
          if (ended) throw new Error('lines after the end');
          const v = JSON.parse(raw.toString('utf8')) as unknown;
          if (!first) {
            const head = v as { format?: unknown; peer?: unknown; createdAt?: unknown } | null;
            if (head?.format !== FORMAT || head.peer !== node) throw new Error('not a verify file for this node');
            first = head;
          } else if (Array.isArray(v)) {
            const [ih, k, h] = v as [unknown, unknown, unknown];
            if (table === undefined || typeof ih !== 'string' || !/^[0-9a-f]{32}$/.test(ih) || (k !== null && typeof k !== 'string')
              || typeof h !== 'string' || !/^[0-9a-f]{16}$/.test(h)) throw new Error('a row line is malformed');
            batch.push(table, ih, k, h);
            rows++;
            if (batch.length >= BATCH * 4) await flush();
          } else if (typeof (v as { table?: unknown }).table === 'string') {
            await flush();
            const t = v as { table: string; shape: TableShape };
            table = t.table;
            shapes.set(t.table, t.shape);
          } else if (Array.isArray((v as { inFlight?: unknown }).inFlight)) {
            for (const [t, id] of (v as { inFlight: [string, string][] }).inFlight) moving.set(t, (moving.get(t) ?? new Set()).add(id));
          } else if ((v as { end?: unknown }).end === true) {
            if ((v as { rows?: unknown }).rows !== rows) throw new Error('the file holds another number of rows than its end says');
            ended = true;
          } else {
            throw new Error('an unknown line');
          }
        }
        await flush();
      } catch (e) {
        throw isSpokesyncError(e) ? e : VERIFY_FILE.error(`the file does not hold readable checksums: ${(e as Error).message}`, e);
      }
      if (!ended || !header) throw VERIFY_FILE.error('the file ends before its last line: it is truncated');
      return new FileSide(conn, temp, header.sender, String(first?.createdAt ?? ''), shapes, moving, catalog);
    } catch (e) {
      await conn.exec(`DROP TEMPORARY TABLE IF EXISTS ${temp}`).catch(() => undefined);
      conn.release();
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.conn.exec(`DROP TEMPORARY TABLE IF EXISTS ${this.temp}`).catch(() => undefined);
    this.conn.release();
  }

  async shapes(tables: readonly string[]): Promise<(TableShape | null)[]> {
    return tables.map((t) => this.shapeOf.get(t) ?? null);
  }

  async sums(q: readonly SumsQuery[]): Promise<Chunk[][]> {
    const out: Chunk[][] = [];
    for (const s of q) {
      const under = s.under === null || (s.under[0]?.length ?? 0) === 0 ? null : s.under;
      const chunk = s.depth === 0 ? `''` : `LEFT(ih, ${Math.floor(s.depth)})`;
      const rows = await this.conn.query<{ p: string; n: string | number; s: string }>(
        `SELECT ${chunk} AS p, COUNT(*) AS n, CAST(COALESCE(SUM(CAST(CONV(LEFT(h, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) AS s FROM ${this.temp}
          WHERE tbl = ?${under ? ` AND LEFT(ih, ${under[0]!.length}) IN (${under.map(() => '?').join(', ')})` : ''}${s.depth === 0 ? '' : ' GROUP BY p'}`,
        [s.table, ...(under ?? [])]);
      out.push(rows.filter((c) => Number(c.n) > 0).map((c) => ({ p: String(c.p), n: Number(c.n), s: String(c.s) })));
    }
    return out;
  }

  async rows(q: readonly RowsQuery[]): Promise<RowHash[][]> {
    const out: RowHash[][] = [];
    for (const s of q) {
      if (s.under.length === 0) {
        out.push([]);
        continue;
      }
      const rows = await this.conn.query<{ k: string | null; h: string }>(
        `SELECT k, h FROM ${this.temp} WHERE tbl = ? AND LEFT(ih, ${s.under[0]!.length}) IN (${s.under.map(() => '?').join(', ')})`, [s.table, ...s.under]);
      out.push(rows.map((r) => [r.k, r.h] as const));
    }
    return out;
  }

  async check(q: readonly CheckQuery[]): Promise<CheckAnswer[]> {
    const out: CheckAnswer[] = [];
    for (const c of q) {
      const found = new Map<string, string>();
      if (c.keys.length > 0) {
        const rows = await this.conn.query<{ k: string; h: string }>(
          `SELECT k, h FROM ${this.temp} WHERE tbl = ? AND k IN (${c.keys.map(() => '?').join(', ')})`, [c.table, ...c.keys]);
        for (const r of rows) found.set(r.k, r.h);
      }
      const moving = this.moving.get(c.table);
      out.push({
        hashes: c.keys.map((k) => found.get(k) ?? null),
        inFlight: c.keys.filter((k) => moving?.has(canonicalIdentity(this.catalog, c.table, k)) === true),
      });
    }
    return out;
  }

  fetch(_table: string, _keys: readonly string[]): Promise<InsertOp[]> {
    return Promise.reject(new SpokesyncError('SPOKESYNC_E_USAGE', 'a verify file holds no values: repair works over the network only'));
  }

  clock(): Promise<bigint> {
    return Promise.reject(new SpokesyncError('SPOKESYNC_E_USAGE', 'a verify file holds no clock: repair works over the network only'));
  }
}
