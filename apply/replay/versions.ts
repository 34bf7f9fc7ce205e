// Column versions for conflict resolution. Capture writes `versions` (last
// writer hlc + node per row and column; col '*' is a row's delete tombstone)
// for updates and deletes, and records an insert once per row: in the run of
// `insert_ranges` that holds its local id (rows named by uuid with an integer
// key), in the row's `idmap` row (hlc, node), or in `versions` as col '+' for
// tables without a one-column key. A column's version is the newest of its own and its row's
// insert version (the tombstone stands alone). Apply reads them outside its transaction, so a re-read after waitForCapture()
// sees what capture wrote meanwhile. What this batch has written and capture
// has not seen yet sits in an overlay whose layers follow the transaction.
//
// One write comes from apply itself: a column whose winning value equals the
// stored one produces no binlog row, so capture cannot record the new version;
// apply records it (never lowering a version) at the end of the group.
import { rangeKey } from '../core/row-identity.js';
import type { Queryable } from '../core/db.js';
import { qid } from '../core/db.js';
import type { Catalog, TableInfo } from '../core/catalog.js';
import { stateTable } from '../core/state-schema.js';
import { compareVersions } from '../core/hlc.js';
import { Layers } from './layers.js';
import { rowKey } from './target.js';

export interface Version {
  readonly hlc: string;
  readonly node: string;
}

/** The row-tombstone column in `versions`. */
export const TOMBSTONE = '*';
/** The row-insert column: in `versions` (tables without a one-column key), and how idmap's insert versions are read. */
export const ROW_INSERT = '+';
/** Overlay key of a row inserted by this batch (not a column name: names are at most 64 characters). */
const INSERTED = '\u0001inserted';

interface NoopWrite {
  readonly table: string;
  readonly id: string;
  readonly col: string;
  readonly v: Version;
}

const CHUNK = 500;


export class Versions {
  private readonly stored = new Map<string, Map<string, Version>>();
  /** tombstones of rows read for that alone (rows a group only inserts), null when none; `stored` wins over it */
  private readonly tombs = new Map<string, Version | null>();
  /** versions this applier has written, layered with the transaction */
  readonly overlay = new Layers<Version>();
  /** versions apply itself must write before the group commits */
  readonly noops = new Layers<NoopWrite>();

  constructor(
    /** reads run here, outside the apply transaction (a pool) */
    private readonly db: Queryable,
    private readonly stateSchema: string,
    /** the application schema as it is now */
    private readonly catalog: () => Catalog,
  ) {}

  /** The query for the stored versions of rows of a table (storedVersionsQuery), rows tagged with `src`. */
  query(src: string, table: string, ids: readonly string[]): { sql: string; params: unknown[] } {
    const c = this.catalog();
    return storedVersionsQuery(this.stateSchema, c.tables.get(table), c.schema, src, table, ids);
  }

  /** The query for the tombstones alone of rows of a table, rows tagged with `src` (as query's). */
  tombstoneQuery(src: string, table: string, ids: readonly string[]): { sql: string; params: unknown[] } {
    return {
      sql: `SELECT ? AS src, identity AS a, col AS b, hlc AS c, node AS d FROM ${stateTable(this.stateSchema, 'versions')}
             WHERE tbl = ? AND col = '${TOMBSTONE}' AND identity IN (${Array(ids.length).fill('?').join(', ')})`,
      params: [src, table, ...ids],
    };
  }

  /**
   * Reads every version of rows an insert found here after all: groupLookup read
   * only the tombstones of rows a group only inserts, as they are normally not here yet.
   */
  async readExisting(table: string, ids: readonly string[]): Promise<void> {
    const unread = ids.filter((id) => !this.stored.has(rowKey(table, id)));
    if (unread.length > 0) await this.read(table, unread);
  }

  /**
   * A new batch: forget what was read from the table. What this applier wrote
   * stays (capture may not have recorded it yet) until trim() finds it too much.
   */
  reset(): void {
    this.stored.clear();
    this.tombs.clear();
    this.overlay.rollbackAll();
    this.noops.rollbackAll();
    this.noops.clear();
  }

  /** Entries this applier remembers having written. */
  get remembered(): number {
    return this.overlay.size;
  }

  /** Forgets what this applier wrote (call once capture has recorded it). */
  forgetWritten(): void {
    this.overlay.rollbackAll();
    this.overlay.clear();
  }

  /** The rows (by table) whose stored versions have not been read yet. */
  unread(rows: Iterable<readonly [string, string]>): Map<string, string[]> {
    const byTable = new Map<string, Set<string>>();
    for (const [table, id] of rows) {
      if (this.stored.has(rowKey(table, id))) continue;
      let ids = byTable.get(table);
      if (!ids) byTable.set(table, (ids = new Set()));
      ids.add(id);
    }
    return new Map([...byTable].map(([t, ids]) => [t, [...ids]]));
  }

  /** The rows (by table) whose tombstone is not known yet (neither read alone nor with the row's other versions). */
  tombstonesUnread(rows: Iterable<readonly [string, string]>): Map<string, string[]> {
    const byTable = new Map<string, Set<string>>();
    for (const [table, id] of rows) {
      const key = rowKey(table, id);
      if (this.stored.has(key) || this.tombs.has(key)) continue;
      let ids = byTable.get(table);
      if (!ids) byTable.set(table, (ids = new Set()));
      ids.add(id);
    }
    return new Map([...byTable].map(([t, ids]) => [t, [...ids]]));
  }

  /** Takes tombstones read elsewhere: every row in `read` has had its tombstone read; `found` are the tombstones. */
  absorbTombstones(read: ReadonlyMap<string, readonly string[]>, found: Iterable<{ tbl: string; identity: string; hlc: string; node: string }>): void {
    for (const [table, ids] of read) for (const id of ids) this.tombs.set(rowKey(table, id), null);
    for (const r of found) {
      const key = rowKey(r.tbl, r.identity);
      if (this.tombs.has(key)) this.tombs.set(key, { hlc: String(r.hlc), node: r.node });
    }
  }

  /** Takes versions read elsewhere: every row in `read` has been read; `found` are its rows in `versions`. */
  absorb(read: ReadonlyMap<string, readonly string[]>, found: Iterable<{ tbl: string; identity: string; col: string; hlc: string; node: string }>): void {
    for (const [table, ids] of read) for (const id of ids) this.stored.set(rowKey(table, id), new Map());
    for (const r of found) this.keep(r.tbl, r.identity, r.col, { hlc: String(r.hlc), node: r.node });
  }

  /** A stored version read; a row can have several insert versions (idmap rows of old local ids): the newest counts. */
  private keep(table: string, id: string, col: string, v: Version): void {
    const row = this.stored.get(rowKey(table, id));
    if (!row) return;
    const had = col === ROW_INSERT ? row.get(col) : undefined;
    if (!had || newer(v, had)) row.set(col, v);
  }

  /** Reads one row's versions again (after waiting for capture). */
  async refresh(table: string, id: string): Promise<void> {
    await this.read(table, [id]);
  }

  private async read(table: string, ids: readonly string[]): Promise<void> {
    for (const id of ids) this.stored.set(rowKey(table, id), new Map());
    const q = this.query('v', table, ids);
    const rows = await this.db.query<{ a: string; b: string; c: string; d: string }>(q.sql, q.params);
    for (const r of rows) this.keep(table, r.a, r.b, { hlc: String(r.c), node: r.d });
  }

  /**
   * The local version of a column, undefined when unknown: the newest of what
   * the table says and what this applier wrote (capture may lag behind it).
   */
  get(table: string, id: string, col: string): Version | undefined {
    const key = rowKey(table, id);
    const stored = this.stored.get(key);
    const column = col !== TOMBSTONE;
    let best = stored ? stored.get(col) : column ? undefined : this.tombs.get(key) ?? undefined;
    for (const v of [
      column ? stored?.get(ROW_INSERT) : undefined,
      this.overlay.get(`${key}\u0000${col}`),
      column ? this.overlay.get(`${key}\u0000${INSERTED}`) : undefined,
    ]) {
      if (v && (!best || newer(v, best))) best = v;
    }
    return best;
  }

  /** A row was inserted by this batch at version v: every column it carried has that version. */
  noteInserted(table: string, id: string, v: Version): void {
    this.overlay.set(`${rowKey(table, id)}\u0000${INSERTED}`, v);
  }

  /** Whether the stored versions of the row have been read. */
  has(table: string, id: string): boolean {
    return this.stored.has(rowKey(table, id));
  }

  /** A column was written by this batch at version v (capture will record it). */
  note(table: string, id: string, col: string, v: Version): void {
    this.overlay.set(`${rowKey(table, id)}\u0000${col}`, v);
  }

  /** A column won with the value it already had: apply records the version itself. */
  noteUnchanged(table: string, id: string, col: string, v: Version): void {
    this.note(table, id, col, v);
    this.noops.set(`${rowKey(table, id)}\u0000${col}`, { table, id, col, v });
  }

  /** Writes the pending unchanged-winner versions in the group's transaction (never lowers one). */
  async flush(tx: Queryable): Promise<void> {
    const writes = [...this.noops.pending().values()];
    for (let i = 0; i < writes.length; i += CHUNK) {
      const part = writes.slice(i, i + CHUNK);
      await tx.exec(
        `INSERT INTO ${stateTable(this.stateSchema, 'versions')} (tbl, identity, col, hlc, node) VALUES ${part.map(() => '(?, ?, ?, ?, ?)').join(', ')}
         ON DUPLICATE KEY UPDATE
           node = IF((VALUES(hlc), VALUES(node)) > (hlc, node), VALUES(node), node),
           hlc = IF((VALUES(hlc), VALUES(node)) > (hlc, node), VALUES(hlc), hlc)`,
        part.flatMap((w) => [w.table, w.id, w.col, w.v.hlc, w.v.node]),
      );
    }
  }
}

/**
 * The stored versions of rows of one table, as rows (src, a: identity, b: col,
 * c: hlc, d: node), src being the text given: `versions`, and as col '+' the
 * insert versions in `idmap` and in `insert_ranges` (insertRangesQuery).
 */
export function storedVersionsQuery(
  stateSchema: string, t: TableInfo | undefined, appSchema: string, src: string, table: string, ids: readonly string[],
): { sql: string; params: unknown[] } {
  const list = Array(ids.length).fill('?').join(', ');
  let sql = `SELECT ? AS src, identity AS a, col AS b, hlc AS c, node AS d FROM ${stateTable(stateSchema, 'versions')} WHERE tbl = ? AND identity IN (${list})
    UNION ALL SELECT ?, identity, '${ROW_INSERT}', hlc, node FROM ${stateTable(stateSchema, 'idmap')} WHERE tbl = ? AND identity IN (${list}) AND hlc IS NOT NULL`;
  const params: unknown[] = [src, table, ...ids, src, table, ...ids];
  const ranges = insertRangesQuery(stateSchema, t, appSchema, src, table, ids);
  if (ranges) {
    sql += `\n    UNION ALL ${ranges.sql}`;
    params.push(...ranges.params);
  }
  return { sql, params };
}

/**
 * The insert versions of live rows of a range table (identity.ts rangeKey) kept
 * in `insert_ranges`, found through each row's local id, unless an idmap row with
 * a version stands for that id; rows as storedVersionsQuery's. Null for any other table.
 */
export function insertRangesQuery(
  stateSchema: string, t: TableInfo | undefined, appSchema: string, src: string, table: string, ids: readonly string[],
): { sql: string; params: unknown[] } | null {
  const pk = t ? rangeKey(t) : undefined;
  if (!t || pk === undefined || t.identity?.kind !== 'uuid') return null;
  const ranges = stateTable(stateSchema, 'insert_ranges');
  const key = `l.${qid(pk)}`;
  // the range holding a key: the last one starting at or below it (a correlated MAX would read every range below it)
  return {
    sql: `SELECT ? AS src, l.${qid(t.identity.column)} AS a, '${ROW_INSERT}' AS b, r.hlc AS c, r.node AS d FROM ${qid(appSchema)}.${qid(t.name)} l
      JOIN ${ranges} r ON r.tbl = ? AND r.lo = (SELECT x.lo FROM ${ranges} x WHERE x.tbl = ? AND x.lo <= ${key} ORDER BY x.lo DESC LIMIT 1) AND r.hi >= ${key}
     WHERE l.${qid(t.identity.column)} IN (${Array(ids.length).fill('?').join(', ')})
       AND NOT EXISTS (SELECT 1 FROM ${stateTable(stateSchema, 'idmap')} m
                        WHERE m.tbl = ? AND m.local_id = CONVERT(${key}, CHAR) COLLATE utf8mb4_bin AND m.hlc IS NOT NULL)`,
    params: [src, table, table, ...ids, table],
  };
}

/** Whether a beats b (a strictly newer version; an unknown b counts as version 0). */
export function newer(a: Version, b: Version | undefined): boolean {
  return compareVersions(a, b ?? { hlc: '0', node: '' }) > 0;
}
