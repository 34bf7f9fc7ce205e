// Compares the synced tables of two nodes through two VerifySides, moving
// checksums instead of rows: each table's checksum first; a table that differs
// is split into chunks by the leading hex digits of MD5(identity), and every
// chunk that differs is split again, sixteen ways, until its rows are few
// enough to list by identity and short fingerprint. The rows that differ are
// then looked at again on both sides: one in flight (a change on its way, or
// waiting in quarantine or held) is reported apart; one that agrees by now is
// dropped. Used by `spokesync verify` and `spokesync repair` (and meant for
// joining a site that already holds data).
import type { Catalog } from '../../apply/core/catalog.js';
import type { TableShape } from '../../apply/codec/shape.js';
import { canonicalIdentity } from './in-flight.js';
import type { CheckQuery, Chunk, RowHash, RowsQuery, SumsQuery, VerifySide } from './side.js';

/** A chunk is listed row by row once neither side holds more rows in it than this. */
export const LEAF_ROWS = 16;
/** Questions per request, so that no answer nears the sides' bounds (side.ts MAX_ROWS, MAX_KEYS) however much differs. */
const EXPAND_PER_REQUEST = 2000;
const LEAVES_PER_REQUEST = 4000;
const KEYS_PER_REQUEST = 10_000;

function slices<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Runs fn on each part, one after the other. */
async function each<T>(parts: readonly T[], fn: (part: T) => Promise<void>): Promise<void> {
  for (const p of parts) await fn(p);
}

export type Difference = 'changed' | 'missing here' | 'only here';

export interface DifferingRow {
  readonly table: string;
  /** as the network names the row (encodeIdentity) */
  readonly identity: string;
  /** SQL form, for asking the sides again (fetch) */
  readonly key: string;
  readonly kind: Difference;
  /** (compared with inFlight 'also') where a change naming the row is on its way */
  readonly moving?: 'here' | 'there' | 'both';
}

export interface InFlightRow {
  readonly table: string;
  readonly identity: string;
  /** where the change that names it waits: here, there, or both */
  readonly at: 'here' | 'there' | 'both';
}

export interface TableResult {
  readonly table: string;
  /** 'same', 'differs', 'in flight' (differs only in rows on their way): compared; the others were not */
  readonly state: 'same' | 'differs' | 'in flight' | 'shape differs' | 'not synced there';
  readonly rowsHere: number;
  readonly rowsThere: number;
  /** what differs in the shape, one line */
  readonly shape?: string;
}

export interface Comparison {
  readonly tables: TableResult[];
  readonly differing: DifferingRow[];
  readonly inFlight: InFlightRow[];
  /** rows that could not be named (an unresolvable key) and differ, per table */
  readonly unnamed: Record<string, number>;
  /** rounds of questions asked of the other side */
  readonly rounds: number;
}

interface Pending {
  readonly table: string;
  readonly p: string;
  readonly here: number;
  readonly there: number;
}

/** The first difference between two shapes (names, types, charsets, nullability), or null. */
export function shapeDifference(here: TableShape, there: TableShape): string | null {
  const a = new Map(here.columns.map((c) => [c.name, c]));
  const b = new Map(there.columns.map((c) => [c.name, c]));
  for (const [name, c] of a) {
    const o = b.get(name);
    if (!o) return `column ${name} is only here`;
    if (o.type !== c.type) return `column ${name} is ${c.type} here and ${o.type} there`;
    if (o.charset !== c.charset) return `column ${name} is ${c.charset ?? 'binary'} here and ${o.charset ?? 'binary'} there`;
    if (o.nullable !== c.nullable) return `column ${name} is ${c.nullable ? '' : 'NOT '}NULL here and ${o.nullable ? '' : 'NOT '}NULL there`;
  }
  for (const name of b.keys()) if (!a.has(name)) return `column ${name} is only there`;
  return null;
}

const sameChunk = (a: Chunk | undefined, b: Chunk | undefined): boolean => (a?.n ?? 0) === (b?.n ?? 0) && (a?.s ?? '0') === (b?.s ?? '0');

/** Groups queries by (table, depth) so each side answers one list per group. */
function sumsQueries(expand: readonly Pending[]): SumsQuery[] {
  const groups = new Map<string, { table: string; depth: number; under: string[] }>();
  for (const e of expand) {
    const key = `${e.table}\u0000${e.p.length}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { table: e.table, depth: e.p.length + 1, under: [] }));
    g.under.push(e.p);
  }
  return [...groups.values()].map((g) => ({ table: g.table, depth: g.depth, under: g.depth === 1 ? null : g.under }));
}

function rowsQueries(leaves: readonly Pending[]): RowsQuery[] {
  const groups = new Map<string, { table: string; under: string[] }>();
  for (const l of leaves) {
    const key = `${l.table}\u0000${l.p.length}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { table: l.table, under: [] }));
    g.under.push(l.p);
  }
  return [...groups.values()];
}

export interface CompareOptions {
  /**
   * 'apart' (verify): a row in flight is reported apart, not as a difference.
   * 'also' (join): it is reported in flight and, when it differs now, as a difference too
   * (a change on its way to a node that has never held the row cannot apply there alone).
   */
  readonly inFlight?: 'apart' | 'also';
}

/** Compares `tables` of `here` (this node) with `there`; `catalog` is this node's. */
export async function compareSides(
  here: VerifySide, there: VerifySide, tables: readonly string[], catalog: Catalog, opts: CompareOptions = {},
): Promise<Comparison> {
  let rounds = 1;
  const [shapesHere, shapesThere] = await Promise.all([here.shapes(tables), there.shapes(tables)]);
  const results = new Map<string, TableResult>();
  const compared: string[] = [];
  tables.forEach((t, i) => {
    const a = shapesHere[i] ?? null;
    const b = shapesThere[i] ?? null;
    if (!a) return;
    if (!b) {
      results.set(t, { table: t, state: 'not synced there', rowsHere: 0, rowsThere: 0 });
      return;
    }
    const diff = shapeDifference(a, b);
    if (diff) results.set(t, { table: t, state: 'shape differs', rowsHere: 0, rowsThere: 0, shape: diff });
    else compared.push(t);
  });

  const roots = compared.map((table) => ({ table, depth: 0, under: null }));
  rounds++;
  const [rootsHere, rootsThere] = await Promise.all([here.sums(roots), there.sums(roots)]);
  let frontier: Pending[] = [];
  compared.forEach((table, i) => {
    const a = rootsHere[i]?.[0];
    const b = rootsThere[i]?.[0];
    const same = sameChunk(a, b);
    results.set(table, { table, state: same ? 'same' : 'differs', rowsHere: a?.n ?? 0, rowsThere: b?.n ?? 0 });
    if (!same) frontier.push({ table, p: '', here: a?.n ?? 0, there: b?.n ?? 0 });
  });

  const candidates: { table: string; key: string | null; kind: Difference }[] = [];
  while (frontier.length > 0) {
    const leaves = frontier.filter((f) => Math.max(f.here, f.there) <= LEAF_ROWS || f.p.length >= 32);
    const expand = frontier.filter((f) => !leaves.includes(f));
    const next: Pending[] = [];
    rounds++;
    await Promise.all([
      each(slices(expand, EXPAND_PER_REQUEST), async (part) => {
        const sq = sumsQueries(part);
        const [sumsHere, sumsThere] = await Promise.all([here.sums(sq), there.sums(sq)]);
        sq.forEach((q, i) => {
          const a = new Map((sumsHere[i] ?? []).map((c) => [c.p, c]));
          const b = new Map((sumsThere[i] ?? []).map((c) => [c.p, c]));
          for (const p of new Set([...a.keys(), ...b.keys()])) {
            if (!sameChunk(a.get(p), b.get(p))) next.push({ table: q.table, p, here: a.get(p)?.n ?? 0, there: b.get(p)?.n ?? 0 });
          }
        });
      }),
      each(slices(leaves, LEAVES_PER_REQUEST), async (part) => {
        const rq = rowsQueries(part);
        const [rowsHere, rowsThere] = await Promise.all([here.rows(rq), there.rows(rq)]);
        rq.forEach((q, i) => diffRows(q.table, rowsHere[i] ?? [], rowsThere[i] ?? [], candidates));
      }),
    ]);
    frontier = next;
  }

  // look again at what differs: in flight at either side, or agreeing by now
  const named = candidates.filter((c): c is { table: string; key: string; kind: Difference } => c.key !== null);
  const unnamed: Record<string, number> = {};
  for (const c of candidates) if (c.key === null) unnamed[c.table] = (unnamed[c.table] ?? 0) + 1;
  const differing: DifferingRow[] = [];
  const inFlight: InFlightRow[] = [];
  if (named.length > 0) rounds++;
  await each(slices(named, KEYS_PER_REQUEST), async (part) => {
    const byTable = new Map<string, Set<string>>();
    for (const c of part) {
      let keys = byTable.get(c.table);
      if (!keys) byTable.set(c.table, (keys = new Set()));
      keys.add(c.key);
    }
    const cq: CheckQuery[] = [...byTable].map(([table, keys]) => ({ table, keys: [...keys] }));
    const [nowHere, nowThere] = await Promise.all([here.check(cq), there.check(cq)]);
    cq.forEach((q, i) => {
      const a = nowHere[i]!;
      const b = nowThere[i]!;
      const movingHere = new Set(a.inFlight);
      const movingThere = new Set(b.inFlight);
      q.keys.forEach((key, j) => {
        const identity = canonicalIdentity(catalog, q.table, key);
        const mh = movingHere.has(key);
        const mt = movingThere.has(key);
        if (mh || mt) {
          inFlight.push({ table: q.table, identity, at: mh && mt ? 'both' : mh ? 'here' : 'there' });
          if (opts.inFlight !== 'also') return;
        }
        const h = a.hashes[j] ?? null;
        const t = b.hashes[j] ?? null;
        if (h === t) return;
        differing.push({
          table: q.table, identity, key, kind: h === null ? 'missing here' : t === null ? 'only here' : 'changed',
          ...(mh || mt ? { moving: mh && mt ? 'both' : mh ? 'here' : 'there' } : {}),
        });
      });
    });
  });
  const order = (x: { table: string; identity: string }, y: { table: string; identity: string }): number =>
    x.table < y.table ? -1 : x.table > y.table ? 1 : x.identity < y.identity ? -1 : x.identity > y.identity ? 1 : 0;
  for (const r of results.values()) {
    if (r.state === 'differs' && !differing.some((d) => d.table === r.table) && !unnamed[r.table]) {
      results.set(r.table, { ...r, state: inFlight.some((f) => f.table === r.table) ? 'in flight' : 'same' });
    }
  }
  return {
    tables: tables.flatMap((t) => results.get(t) ?? []),
    differing: differing.sort(order),
    inFlight: inFlight.sort(order),
    unnamed,
    rounds,
  };
}

function diffRows(table: string, here: readonly RowHash[], there: readonly RowHash[], out: { table: string; key: string | null; kind: Difference }[]): void {
  const byKey = (rows: readonly RowHash[]): Map<string | null, string[]> => {
    const m = new Map<string | null, string[]>();
    for (const [k, h] of rows) {
      const hs = m.get(k);
      if (hs) hs.push(h);
      else m.set(k, [h]);
    }
    return m;
  };
  const a = byKey(here);
  const b = byKey(there);
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = (a.get(k) ?? []).sort().join(',');
    const y = (b.get(k) ?? []).sort().join(',');
    if (x === y) continue;
    out.push({ table, key: k, kind: x === '' ? 'missing here' : y === '' ? 'only here' : 'changed' });
  }
}
