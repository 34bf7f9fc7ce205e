// The identity resolver: local keys → network identities for referenced rows.
// Answers come, in order, from a bounded in-memory cache (which keeps all a
// group learns and looks up until the group is written), row images of the
// batch being mapped (so a row deleted later in the backlog still resolves),
// the durable idmap, and finally the live table.
// Mappings found outside the idmap are written to it with the next journal
// transaction, so rows deleted since still resolve after a restart.
import type { Queryable } from '../../apply/core/db.js';
import { qid } from '../../apply/core/db.js';
import type { Catalog, TableInfo } from '../../apply/core/catalog.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { identityColumns, keyText, lookupKey, rangeKey, rowIdentity, safeInteger, singlePk, type CanonRow, type Lookup, type RefResolver } from '../../apply/core/row-identity.js';
import { GroupCache } from './lru.js';
import { Map2, PairNames } from './map2.js';
import type { Learned } from './mapper.js';
import type { Value } from '../../apply/core/model.js';

export interface IdmapRow {
  readonly tbl: string;
  readonly localId: string;
  readonly identity: string;
  /** the version of the insert that created the row; null when unknown here */
  hlc: string | null;
  node: string | null;
  /** the key changed: the row's local id before, whose insert version the writer copies */
  from?: string;
}

/** Consecutive local ids one change set inserted into a range table (identity.ts rangeKey). */
export interface InsertRange {
  readonly tbl: string;
  readonly lo: number;
  hi: number;
  readonly hlc: string;
  readonly node: string;
}

/** What a group writes to the identity state besides its journal rows. */
export interface IdentityWrites {
  readonly idmap: IdmapRow[];
  readonly ranges: InsertRange[];
  /** new marks of range tables (key_marks): no local id above has been given a range or idmap row */
  readonly marks: ReadonlyMap<string, number>;
}

export interface HintRow {
  readonly table: TableInfo;
  readonly row: CanonRow;
}

const IN_CHUNK = 500;
const MAX_ROUNDS = 12;

export class IdentityResolver implements RefResolver {
  /** identities by table+column and key value; nothing a group looks up or learns is forgotten before the next group */
  private readonly cache: GroupCache;
  private readonly pairs = new PairNames();
  /** idmap rows to write, by table and local id */
  private readonly pending = new Map2<IdmapRow>();
  /** lookups answered from the live table or the idmap since start (for status and tests) */
  lookups = 0;
  /** row images found by reading ahead in the binlog (lookahead.ts), by table: kept until a group is written */
  private readonly ahead = new Map<string, HintRow[]>();
  /** what the last prepare() could not answer (nested lookups included) */
  private unanswered: Lookup[] = [];
  /** key_marks as durable plus what the pending writes raise them to; null: read them again */
  private marks: Map<string, number> | null = null;
  private readonly raised = new Map<string, number>();
  private readonly ranges: InsertRange[] = [];
  /** the run each range table's inserts may extend */
  private readonly lastRange = new Map<string, InsertRange>();

  constructor(
    private readonly db: Queryable,
    private readonly catalog: () => Catalog,
    private readonly stateSchema: string,
    cacheEntries = 50_000,
  ) {
    this.cache = new GroupCache(cacheEntries);
  }

  identity(table: string, column: string, value: string): string | undefined {
    return this.cache.get(this.pairs.of(table, column), value);
  }

  /**
   * A mapping learnt from the binlog (an insert, a changed key): known now, persisted with
   * the next write; `inserted`: the version of the change set that inserted the row.
   */
  learn(l: Learned, inserted?: { readonly hlc: string; readonly node: string }): void {
    if (inserted) {
      this.learnInsert(l.table, l.column, l.localId, l.identity, inserted);
      return;
    }
    this.pin(l.table, l.column, l.localId, l.identity);
    const row = this.remember(l.table, l.localId, l.identity);
    if (l.from === undefined || row.hlc !== null) return;
    // the key changed: the insert version moves along, from this group or from the idmap
    const before = this.pending.get(l.table, l.from);
    if (before?.identity === l.identity && before.hlc !== null) {
      row.hlc = before.hlc;
      row.node = before.node;
    } else {
      row.from = l.from;
    }
  }

  /**
   * learn() of a row the change set with `version` inserted. In a range table, a
   * local id above the table's mark joins a run of the change set's inserts (no
   * idmap row: the live row has the identity, and a delete writes it); any other
   * gets an idmap row with the version, as in other tables.
   */
  learnInsert(table: string, column: string, localId: string, identity: string, version: { readonly hlc: string; readonly node: string }): void {
    // (only a table something refers to is ever asked about)
    if (referencedTables(this.catalog()).has(table)) this.pin(table, column, localId, identity);
    const n = this.isRangeTable(table) ? safeInteger(localId) : undefined;
    if (n !== undefined && n > this.mark(table)) {
      const last = this.lastRange.get(table);
      if (last && last.hi === n - 1 && last.hlc === version.hlc && last.node === version.node) {
        last.hi = n;
      } else {
        const run: InsertRange = { tbl: table, lo: n, hi: n, hlc: version.hlc, node: version.node };
        this.ranges.push(run);
        this.lastRange.set(table, run);
      }
      this.raise(table, n);
      return;
    }
    const row = this.remember(table, localId, identity);
    row.hlc = version.hlc;
    row.node = version.node;
    delete row.from;
  }

  /** Reads the marks of the range tables unless known (call before mapping a group). */
  async loadMarks(): Promise<void> {
    if (this.marks) return;
    const tables = [...this.catalog().tables.values()].filter((t) => rangeKey(t) !== undefined).map((t) => t.name);
    const marks = new Map<string, number>();
    if (tables.length > 0) {
      const found = await this.db.query<{ tbl: string; hi: string | number }>(
        `SELECT tbl, hi FROM ${stateTable(this.stateSchema, 'key_marks')} WHERE tbl IN (?)`, [tables]);
      for (const r of found) marks.set(r.tbl, Number(r.hi));
      const unmarked = tables.filter((t) => !marks.has(t));
      if (unmarked.length > 0) {
        // first time (or a state from before ranges): every id the idmap or a run holds is below the mark
        const highest = await this.db.query<{ tbl: string; hi: string | number | null }>(
          `SELECT tbl, MAX(hi) AS hi FROM (
             SELECT tbl, MAX(CAST(local_id AS SIGNED)) AS hi FROM ${stateTable(this.stateSchema, 'idmap')} WHERE tbl IN (?) GROUP BY tbl
             UNION ALL SELECT tbl, MAX(hi) FROM ${stateTable(this.stateSchema, 'insert_ranges')} WHERE tbl IN (?) GROUP BY tbl) h GROUP BY tbl`,
          [unmarked, unmarked]);
        for (const r of highest) if (r.hi !== null) marks.set(r.tbl, Number(r.hi));
        const known = unmarked.filter((t) => marks.has(t));
        if (known.length > 0) {
          await this.db.exec(`INSERT IGNORE INTO ${stateTable(this.stateSchema, 'key_marks')} (tbl, hi) VALUES ?`, [known.map((t) => [t, marks.get(t)])]);
        }
      }
    }
    this.marks = marks;
  }

  /** What the group learnt, to write with its journal rows; the group's runs end here. */
  takeWrites(): IdentityWrites {
    const idmap = [...this.pending.values()];
    this.pending.clear();
    const out: IdentityWrites = { idmap, ranges: this.ranges.splice(0), marks: new Map(this.raised) };
    this.raised.clear();
    this.lastRange.clear();
    return out;
  }

  /** Everything not durable is abandoned: forget it (answers are reread from the idmap and tables). */
  forget(): void {
    this.pending.clear();
    this.cache.clear();
    this.ranges.length = 0;
    this.lastRange.clear();
    this.raised.clear();
    this.marks = null;
  }

  private isRangeTable(table: string): boolean {
    const t = this.catalog().tables.get(table);
    return t !== undefined && rangeKey(t) !== undefined;
  }

  private mark(table: string): number {
    if (!this.marks) throw new Error('the marks of the range tables are not loaded (loadMarks() before mapping)');
    return this.marks.get(table) ?? Number.NEGATIVE_INFINITY;
  }

  private raise(table: string, n: number): void {
    if (n <= this.mark(table)) return;
    this.marks!.set(table, n);
    this.raised.set(table, n);
  }

  /** The lookups the last prepare() left unanswered: rows gone from the table that the idmap and the batch do not know. */
  unresolved(): readonly Lookup[] {
    return this.unanswered;
  }

  /**
   * Row images read ahead in the binlog: they answer as row images of the batch
   * do (after them) until dropAhead(), which capture calls once a group is
   * written (a later key could be given to another row).
   */
  dropAhead(): void {
    this.ahead.clear();
  }

  addAhead(rows: readonly HintRow[]): void {
    for (const r of rows) {
      const list = this.ahead.get(r.table.name);
      if (list) list.push(r);
      else this.ahead.set(r.table.name, [r]);
    }
  }

  /**
   * A group starts: from here until its write, nothing it looks up or learns is
   * forgotten (call before asking identity() about the group's lookups).
   */
  beginGroup(): void {
    this.unanswered = [];
    this.cache.turn();
  }

  /**
   * Makes every lookup answerable by identity(), as far as the data allows
   * (`hints`: the batch's row images of a table, asked for when needed). Call
   * beginGroup() first.
   */
  async prepare(lookups: readonly Lookup[], batchHints: (table: string) => readonly HintRow[]): Promise<void> {
    const catalog = this.catalog();
    const hints = (table: string): readonly HintRow[] => {
      const ahead = this.ahead.get(table);
      return ahead ? [...batchHints(table), ...ahead] : batchHints(table);
    };
    let hintIndex: HintIndex | undefined;
    const rows = new Map<string, HintRow>();
    /** keys of `rows` read from the live tables (the others are row images) */
    const live = new Set<string>();
    const tried = new Set<string>();
    let want = dedupe(lookups.filter((l) => this.identity(l.table, l.column, l.value) === undefined));
    /** every lookup this call met, nested ones included */
    const asked: Lookup[] = [...want];
    for (let round = 0; want.length > 0 && round < MAX_ROUNDS; round++) {
      for (const l of want) {
        const k = lookupKey(l.table, l.column, l.value);
        const hint = rows.has(k) ? undefined : (hintIndex ??= new HintIndex(hints)).find(l);
        if (hint) rows.set(k, hint);
      }
      const fresh = want.filter((l) => !rows.has(lookupKey(l.table, l.column, l.value)) && !tried.has(lookupKey(l.table, l.column, l.value)));
      for (const l of fresh) tried.add(lookupKey(l.table, l.column, l.value));
      await this.fromIdmap(fresh.filter((l) => singlePk(catalog.table(l.table)) === l.column));
      await this.fromTables(catalog, fresh.filter((l) => this.identity(l.table, l.column, l.value) === undefined), rows, live);
      const next: Lookup[] = [];
      let progress = false;
      for (const l of want) {
        if (this.identity(l.table, l.column, l.value) !== undefined) {
          progress = true;
          continue;
        }
        const found = rows.get(lookupKey(l.table, l.column, l.value));
        if (!found) continue;
        const missing: Lookup[] = [];
        const id = rowIdentity(found.table, found.row, this, missing);
        if (id !== undefined) {
          // kept in the idmap (so it resolves after a restart even once deleted), except a
          // row of a range table this batch holds: capture writes its idmap row when it sees it deleted
          const k = lookupKey(l.table, l.column, l.value);
          this.answer(l, id, singlePk(found.table) === l.column && (live.has(k) || rangeKey(found.table) === undefined));
          progress = true;
        } else if (missing.length > 0) {
          next.push(l, ...missing);
        }
      }
      asked.push(...next);
      if (!progress && next.every((l) => tried.has(lookupKey(l.table, l.column, l.value)))) break;
      want = dedupe(next.filter((l) => this.identity(l.table, l.column, l.value) === undefined));
    }
    this.unanswered = dedupe(asked.filter((l) => this.identity(l.table, l.column, l.value) === undefined));
  }

  private answer(l: Lookup, identity: string, persist: boolean): void {
    this.pin(l.table, l.column, l.value, identity);
    if (persist) this.remember(l.table, l.value, identity);
  }

  private pin(table: string, column: string, value: string, identity: string): void {
    this.cache.set(this.pairs.of(table, column), value, identity);
  }

  /** The pending idmap row of a mapping; one already pending for the same identity keeps its version. */
  private remember(tbl: string, localId: string, identity: string): IdmapRow {
    const had = this.pending.get(tbl, localId);
    if (had?.identity === identity) return had;
    if (this.isRangeTable(tbl)) {
      const n = safeInteger(localId);
      if (n !== undefined) this.raise(tbl, n);
    }
    const row: IdmapRow = { tbl, localId, identity, hlc: null, node: null };
    this.pending.set(tbl, localId, row);
    return row;
  }

  private async fromIdmap(lookups: readonly Lookup[]): Promise<void> {
    for (const [table, values] of groupValues(lookups)) {
      for (let i = 0; i < values.length; i += IN_CHUNK) {
        const chunk = values.slice(i, i + IN_CHUNK);
        const found = await this.db.query<{ local_id: string; identity: string }>(
          `SELECT local_id, identity FROM ${stateTable(this.stateSchema, 'idmap')} WHERE tbl = ? AND local_id IN (?)`,
          [table, chunk],
        );
        this.lookups += found.length;
        const column = lookups.find((l) => l.table === table)!.column;
        for (const r of found) this.answer({ table, column, value: r.local_id }, r.identity, false);
      }
    }
  }

  private async fromTables(catalog: Catalog, lookups: readonly Lookup[], rows: Map<string, HintRow>, live: Set<string>): Promise<void> {
    const byColumn = new Map<string, Lookup[]>();
    for (const l of lookups) {
      const k = `${l.table}\u0000${l.column}`;
      const list = byColumn.get(k);
      if (list) list.push(l);
      else byColumn.set(k, [l]);
    }
    for (const list of byColumn.values()) {
      const { table, column } = list[0]!;
      const t = catalog.table(table);
      const cols = [...new Set([column, ...identityColumns(t)])];
      const values = list.map((l) => l.value);
      for (let i = 0; i < values.length; i += IN_CHUNK) {
        const found = await this.db.query<Record<string, unknown>>(
          `SELECT ${cols.map(qid).join(', ')} FROM ${qid(catalog.schema)}.${qid(table)} WHERE ${qid(column)} IN (?)`,
          [values.slice(i, i + IN_CHUNK)],
        );
        this.lookups += found.length;
        for (const r of found) {
          const row: Record<string, Value> = {};
          for (const c of cols) row[c] = selectValue(r[c]);
          const value = keyText(row[column]);
          if (value === undefined) continue;
          const k = lookupKey(table, column, value);
          rows.set(k, { table: t, row });
          live.add(k);
        }
      }
    }
  }
}

/** A value as a SELECT through apply/core/db.ts returns it → canonical. */
function selectValue(v: unknown): Value {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

const referenced = new WeakMap<Catalog, ReadonlySet<string>>();

/** The tables whose rows some table of the catalogue refers to: by a foreign key, a shared key or a natural key part. */
function referencedTables(catalog: Catalog): ReadonlySet<string> {
  let set = referenced.get(catalog);
  if (!set) {
    const out = new Set<string>();
    for (const t of catalog.tables.values()) {
      for (const r of t.refs.values()) out.add(r.table);
      if (t.identity?.kind === 'shared') out.add(t.identity.refTable);
    }
    referenced.set(catalog, (set = out));
  }
  return set;
}

function dedupe(lookups: readonly Lookup[]): Lookup[] {
  const seen = new Map<string, Lookup>();
  for (const l of lookups) seen.set(lookupKey(l.table, l.column, l.value), l);
  return [...seen.values()];
}

function groupValues(lookups: readonly Lookup[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const l of lookups) {
    const list = m.get(l.table);
    if (list) list.push(l.value);
    else m.set(l.table, [l.value]);
  }
  return m;
}

/** Row images of the batch, found by (table, column, key text); a table's images are asked for once, when first needed. */
class HintIndex {
  private readonly index = new Map<string, Map<string, HintRow>>();

  constructor(private readonly hints: (table: string) => readonly HintRow[]) {}

  find(l: Lookup): HintRow | undefined {
    const k = `${l.table}\u0000${l.column}`;
    let m = this.index.get(k);
    if (!m) {
      m = new Map();
      for (const h of this.hints(l.table)) {
        const v = keyText(h.row[l.column]);
        if (v !== undefined && !m.has(v)) m.set(v, h);
      }
      this.index.set(k, m);
    }
    return m.get(l.value);
  }
}
