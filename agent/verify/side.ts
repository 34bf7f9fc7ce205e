// One side of a comparison: the questions verify asks a node about its synced
// tables, answered here from this node's own server (LocalSide) and, over the
// exchange endpoint, by the parent's (verify-http.ts). Every answer is computed in
// the server: checksums per chunk, identities and short fingerprints of the
// rows of small chunks; values leave only for repair (fetch).
import type { Catalog } from '../../apply/core/catalog.js';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import type { InsertOp } from '../../apply/core/model.js';
import { shapeOf, type TableShape } from '../../apply/codec/shape.js';
import { RowMapper } from '../../apply/replay/rowmap.js';
import { qid } from '../../apply/core/db.js';
import { subsetSql, type Filters } from '../rows/membership-sql.js';
import { canonicalIdentity, rowsInFlight, type RowSet } from './in-flight.js';
import { KEY_ALIAS, byIdentitySql, rowSql, rowsSql, sumsSql, type RowSql } from './row-sql.js';
import { readCheckpoint } from '../journal/writer.js';

export interface SumsQuery {
  readonly table: string;
  /** hex digits of the chunks wanted (0: the whole table) */
  readonly depth: number;
  /** only chunks under these prefixes (all shorter than depth, of one length); null: all */
  readonly under: readonly string[] | null;
}

/** A chunk: its prefix, row count and checksum (decimal sum of 60-bit fingerprints). */
export interface Chunk {
  readonly p: string;
  readonly n: number;
  readonly s: string;
}

export interface RowsQuery {
  readonly table: string;
  readonly under: readonly string[];
}

/** A row: identity (SQL form; null when it cannot be named) and short fingerprint. */
export type RowHash = readonly [string | null, string];

export interface CheckQuery {
  readonly table: string;
  /** identities, SQL form */
  readonly keys: readonly string[];
}

export interface CheckAnswer {
  /** fingerprint of each asked row now, null when it is not here */
  readonly hashes: readonly (string | null)[];
  /** the asked rows (SQL form) in flight at this node toward the other side */
  readonly inFlight: readonly string[];
}

export interface VerifySide {
  /** each table's shape, null when it is not synced there (toward this comparison) */
  shapes(tables: readonly string[]): Promise<(TableShape | null)[]>;
  sums(q: readonly SumsQuery[]): Promise<Chunk[][]>;
  rows(q: readonly RowsQuery[]): Promise<RowHash[][]>;
  check(q: readonly CheckQuery[]): Promise<CheckAnswer[]>;
  /** the rows as inserts (wire values, canonical identities), for repair */
  fetch(table: string, keys: readonly string[]): Promise<InsertOp[]>;
  /**
   * A stamp at or above the version of every row here: capture's clock as last
   * checkpointed, once capture has journaled every commit. A row rewritten
   * elsewhere to win over this side's version is stamped above it.
   */
  clock(): Promise<bigint>;
}

/** Most rows one rows() answer holds, and most chunks one sums() answer holds: bounds what one answer costs. */
export const MAX_ROWS = 100_000;
/** Most identities one check or fetch takes. */
export const MAX_KEYS = 20_000;
/** Deepest chunk: all 32 hex digits of MD5. */
export const MAX_DEPTH = 32;

export interface LocalSideOptions {
  readonly db: Queryable;
  readonly stateSchema: string;
  /** the catalogue as it is now */
  readonly catalog: () => Promise<Catalog>;
  /** the tables compared with the other side (synced here, and toward it) */
  readonly tables: (catalog: Catalog) => ReadonlySet<string>;
  /** the peer on the other side: what is not acknowledged by it is in flight */
  readonly peer: string;
  /** resolves once capture has journaled every commit so far (before in-flight rows are looked for) */
  readonly caughtUp: () => Promise<void>;
  /**
   * A child with row filters: only its subset is compared (agent/rows/); `db`
   * must then have the application schema as default schema (its rules name tables so).
   */
  readonly subset?: (catalog: Catalog) => Filters | null;
}

export class LocalSide implements VerifySide {
  private cat: Catalog | null = null;
  private readonly sql = new Map<string, RowSql>();

  constructor(private readonly o: LocalSideOptions) {}

  private async catalog(): Promise<Catalog> {
    return (this.cat ??= await this.o.catalog());
  }

  /** The table's SQL; SPOKESYNC_E_UNKNOWN_TABLE when it is not compared here. */
  private async table(name: string): Promise<RowSql> {
    const hit = this.sql.get(name);
    if (hit) return hit;
    const catalog = await this.catalog();
    if (!catalog.tables.has(name) || !this.o.tables(catalog).has(name)) {
      throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_TABLE', `table ${JSON.stringify(name.slice(0, 64))} is not synced with ${this.o.peer} here`);
    }
    const r = subsetOf(rowSql(catalog, name), catalog, this.o.subset?.(catalog) ?? null);
    this.sql.set(name, r);
    return r;
  }

  async shapes(tables: readonly string[]): Promise<(TableShape | null)[]> {
    const catalog = await this.catalog();
    const synced = this.o.tables(catalog);
    return tables.map((t) => {
      const info = catalog.tables.get(t);
      return info && synced.has(t) && info.identity ? shapeOf(info) : null;
    });
  }

  async sums(q: readonly SumsQuery[]): Promise<Chunk[][]> {
    const out: Chunk[][] = [];
    let total = 0;
    for (const s of q) {
      checkDepth(s.depth, s.under);
      const r = await this.table(s.table);
      const { sql, params } = sumsSql(r, s.depth, s.under, MAX_ROWS + 1 - total);
      const rows = await this.o.db.query<{ p: string; n: string | number; s: string }>(sql, params);
      total += rows.length;
      if (total > MAX_ROWS) throw new SpokesyncError('SPOKESYNC_E_USAGE', `more than ${MAX_ROWS} chunks asked for at once`);
      out.push(rows.filter((c) => Number(c.n) > 0).map((c) => ({ p: String(c.p), n: Number(c.n), s: String(c.s) })));
    }
    return out;
  }

  async rows(q: readonly RowsQuery[]): Promise<RowHash[][]> {
    const out: RowHash[][] = [];
    let total = 0;
    for (const s of q) {
      checkDepth(s.under[0]?.length ?? 0, s.under);
      const r = await this.table(s.table);
      const { sql, params } = rowsSql(r, s.under, MAX_ROWS + 1 - total);
      const rows = await this.o.db.query<{ k: string | null; h: string }>(sql, params);
      total += rows.length;
      if (total > MAX_ROWS) throw new SpokesyncError('SPOKESYNC_E_USAGE', `more than ${MAX_ROWS} rows asked for at once`);
      out.push(rows.map((x) => [x.k === null ? null : String(x.k), String(x.h)] as const));
    }
    return out;
  }

  async check(q: readonly CheckQuery[]): Promise<CheckAnswer[]> {
    checkKeys(q.reduce((n, c) => n + c.keys.length, 0));
    await this.o.caughtUp();
    const catalog = await this.catalog();
    const wanted: RowSet = new Map();
    const hashes: Map<string, string>[] = [];
    for (const c of q) {
      const r = await this.table(c.table);
      const found = new Map<string, string>();
      if (c.keys.length > 0) {
        const { sql, params } = byIdentitySql(r, c.keys, 'hash');
        for (const row of await this.o.db.query<Record<string, unknown>>(sql, params)) found.set(String(row[KEY_ALIAS]), String(row['h']));
      }
      hashes.push(found);
      const ids = wanted.get(c.table) ?? new Set<string>();
      for (const k of c.keys) ids.add(canonicalIdentity(catalog, c.table, k));
      wanted.set(c.table, ids);
    }
    const moving = await rowsInFlight(this.o.db, this.o.stateSchema, this.o.peer, wanted);
    return q.map((c, i) => ({
      hashes: c.keys.map((k) => hashes[i]!.get(k) ?? null),
      inFlight: c.keys.filter((k) => moving.get(c.table)?.has(canonicalIdentity(catalog, c.table, k)) === true),
    }));
  }

  async clock(): Promise<bigint> {
    await this.o.caughtUp();
    const cp = await readCheckpoint(this.o.db, this.o.stateSchema);
    return cp ? BigInt(cp.hlc) : 0n;
  }

  async fetch(table: string, keys: readonly string[]): Promise<InsertOp[]> {
    checkKeys(keys.length);
    if (keys.length === 0) return [];
    const r = await this.table(table);
    const catalog = await this.catalog();
    const mapper = new RowMapper(catalog, this.o.stateSchema);
    const { sql, params } = byIdentitySql(r, keys, 'row');
    const out: InsertOp[] = [];
    for (const raw of await this.o.db.query<Record<string, unknown>>(sql, params)) {
      const key = raw[KEY_ALIAS];
      if (key === null || key === undefined) continue;
      out.push({ kind: 'insert', table, id: canonicalIdentity(catalog, table, String(key)), row: await mapper.toWire(this.o.db, r.table, raw) });
    }
    return out;
  }
}

/** The table's rows limited to a child's subset: the same SQL over only the rows that go to it. */
export function subsetOf(r: RowSql, catalog: Catalog, filters: Filters | null): RowSql {
  const sub = filters ? subsetSql(filters, r.table.name) : null;
  if (!sub || sub.alias !== 't0') return r;
  const base = `${qid(catalog.schema)}.${qid(r.table.name)} AS t0`;
  if (!r.from.startsWith(base)) throw new Error(`the SQL of table ${r.table.name} does not start from it`);
  return { ...r, from: `(SELECT t0.* FROM ${base} WHERE ${sub.where}) AS t0${r.from.slice(base.length)}` };
}

function checkDepth(depth: number, under: readonly string[] | null): void {
  const bad = !Number.isInteger(depth) || depth < 0 || depth > MAX_DEPTH
    || (under !== null && under.some((p) => typeof p !== 'string' || !/^[0-9a-f]*$/.test(p) || p.length !== under[0]!.length || p.length > depth));
  if (bad) throw new SpokesyncError('SPOKESYNC_E_USAGE', 'a chunk is named by up to 32 lower-case hex digits, all of one length');
}

function checkKeys(n: number): void {
  if (n > MAX_KEYS) throw new SpokesyncError('SPOKESYNC_E_USAGE', `more than ${MAX_KEYS} rows asked for at once`);
}
