// Whether this node's tables hold every value of a change set exactly, judged
// by the sender's table shapes (apply/codec/shape.ts) and by this node's
// catalogue (pure). A change set that would lose or change a value is held
// (apply/replay/held.ts), never applied, rounded or refused with its batch.
import type { Catalog, ColumnInfo, TableInfo } from '../core/catalog.js';
import type { ChangeSet, Op, Row, Value } from '../core/model.js';
import { isRef } from '../core/model.js';
import { SpokesyncError } from '../core/errors.js';
import type { ColumnShape, TableShape } from '../codec/shape.js';

export interface ShapeProblem {
  readonly table: string;
  readonly column: string | null;
  /** what it is here and at the sender ('missing' when absent) */
  readonly here: string;
  readonly there: string;
}

export type Verdict =
  | { readonly kind: 'ok'; readonly ops: readonly Op[] }
  | { readonly kind: 'hold'; readonly problem: ShapeProblem };

/** The shapes a batch carried, by table; null when the sender sent none (an older spokesync). */
export type Shapes = ReadonlyMap<string, TableShape> | null;

export function shapeMap(shapes: readonly TableShape[] | undefined): Shapes {
  if (!shapes || shapes.length === 0) return null;
  return new Map(shapes.map((s) => [s.table, s]));
}

/**
 * The change set's ops as they may apply here (columns this node lacks that
 * carry the sender's default left out), or the first problem that holds it.
 */
export function checkShape(catalog: Catalog, synced: ReadonlySet<string>, cs: ChangeSet, shapes: Shapes): Verdict {
  let ops: Op[] | null = null;
  for (let i = 0; i < cs.ops.length; i++) {
    const op = cs.ops[i]!;
    const t = catalog.tables.get(op.table);
    const there = shapes?.get(op.table);
    if (!t) return hold(op.table, null, 'missing', there ? 'a synced table' : 'a table');
    const r = checkOp(t, op, there);
    if ('problem' in r) return { kind: 'hold', problem: r.problem };
    if (r.op !== op) (ops ??= [...cs.ops])[i] = r.op;
  }
  return { kind: 'ok', ops: ops ?? cs.ops };
}

/**
 * A table this node has but does not sync is a difference of configuration
 * (tables.include/exclude), not of schema: refused with the batch, as before.
 */
export function refuseUnsynced(catalog: Catalog, synced: ReadonlySet<string>, cs: ChangeSet): void {
  for (const op of cs.ops) {
    const t = catalog.tables.get(op.table);
    if (t && !synced.has(t.name)) {
      throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_TABLE', `a change set writes table ${JSON.stringify(t.name)}, which this node does not sync`, {
        fix: 'Give both nodes the same tables.include and tables.exclude; nothing was applied, and the sender keeps the change.',
      });
    }
  }
}

function hold(table: string, column: string | null, here: string, there: string): Verdict {
  return { kind: 'hold', problem: { table, column, here, there } };
}

function checkOp(t: TableInfo, op: Op, there: TableShape | undefined): { op: Op } | { problem: ShapeProblem } {
  const byName = there ? columnsOf(there) : null;
  const rows: Row[] = op.kind === 'insert' ? [op.row] : op.kind === 'update' ? [op.set, op.old] : [];
  let dropped: Set<string> | null = null;
  for (const row of rows) {
    for (const name of Object.keys(row)) {
      const mine = t.column.get(name);
      const theirs = byName?.get(name);
      if (!mine) {
        if (theirs && isDefault(row[name]!, theirs)) {
          (dropped ??= new Set()).add(name);
          continue;
        }
        return { problem: { table: t.name, column: name, here: 'missing', there: theirs ? describe(theirs) : 'present' } };
      }
      if (!theirs) continue;
      if (!holdsAllCached(mine, theirs)) return { problem: { table: t.name, column: name, here: describeMine(mine), there: describe(theirs) } };
    }
  }
  if (op.kind === 'insert' && byName) {
    for (const c of t.columns) {
      if (byName.has(c.name) || c.generated || c.autoIncrement || t.localColumns.has(c.name) || c.name in op.row) continue;
      if (!c.nullable && (c.default === null || c.default === undefined)) {
        return { problem: { table: t.name, column: c.name, here: `${describeMine(c)} without a default`, there: 'missing' } };
      }
    }
  }
  if (!dropped) return { op };
  const keep = (row: Row): Row => Object.fromEntries(Object.entries(row).filter(([k]) => !dropped.has(k)));
  if (op.kind === 'insert') return { op: { ...op, row: keep(op.row) } };
  if (op.kind === 'update') return { op: { ...op, set: keep(op.set), old: keep(op.old) } };
  return { op };
}

const byNameCache = new WeakMap<TableShape, ReadonlyMap<string, ColumnShape>>();
function columnsOf(s: TableShape): ReadonlyMap<string, ColumnShape> {
  let m = byNameCache.get(s);
  if (!m) byNameCache.set(s, (m = new Map(s.columns.map((c) => [c.name, c]))));
  return m;
}

const verdicts = new WeakMap<ColumnShape, WeakMap<ColumnInfo, boolean>>();
/** holdsAll, once per pair of column objects (a batch's shapes and the catalogue live as long as the batch). */
function holdsAllCached(mine: ColumnInfo, theirs: ColumnShape): boolean {
  let m = verdicts.get(theirs);
  if (!m) verdicts.set(theirs, (m = new WeakMap()));
  let v = m.get(mine);
  if (v === undefined) m.set(mine, (v = holdsAll(mine, theirs)));
  return v;
}

export function describe(c: ColumnShape): string {
  return `${c.type.toUpperCase()}${c.charset ? ` ${c.charset}` : ''}${c.nullable ? '' : ' NOT NULL'}`;
}

function describeMine(c: ColumnInfo): string {
  return describe({ name: c.name, type: c.columnType.toLowerCase(), charset: c.charset, nullable: c.nullable, default: c.default ?? null });
}

/** The value is what the sender's column takes by default, so a node without the column loses nothing. */
function isDefault(v: Value, c: ColumnShape): boolean {
  const d = c.default;
  if (d === null) return false;
  if (v === null) return d === 'NULL';
  if (isRef(v) || Buffer.isBuffer(v)) return false;
  if (d.length >= 2 && d.startsWith("'") && d.endsWith("'")) return v === d.slice(1, -1).replace(/''/g, "'").replace(/\\\\/g, '\\');
  if (/^-?[0-9]+(\.[0-9]+)?$/.test(d)) return v === d;
  return false;
}

interface Parsed { base: string; args: number[]; unsigned: boolean; members: string[] | null }

function parse(type: string): Parsed {
  const m = /^([a-z0-9]+)(?:\((.*)\))?(.*)$/.exec(type.trim().toLowerCase());
  if (!m) return { base: type, args: [], unsigned: false, members: null };
  const base = m[1]!;
  const inner = m[2] ?? '';
  const members = base === 'enum' || base === 'set' ? [...inner.matchAll(/'((?:[^']|'')*)'/g)].map((x) => x[1]!) : null;
  const args = members ? [] : inner.split(',').filter((s) => s.trim() !== '').map((s) => Number(s.trim()));
  return { base, args, unsigned: /\bunsigned\b/.test(m[3] ?? ''), members };
}

const INTS = ['tinyint', 'smallint', 'mediumint', 'int', 'bigint'];
const TEXTS = ['tinytext', 'text', 'mediumtext', 'longtext'];
const BLOBS = ['tinyblob', 'blob', 'mediumblob', 'longblob'];
const TIMES = new Set(['datetime', 'timestamp', 'time']);
/** charsets that hold every character of the other */
const WIDER: Readonly<Record<string, readonly string[]>> = { utf8mb4: ['utf8mb3', 'utf8', 'ascii', 'latin1', 'ucs2', 'utf16', 'utf32'], utf8mb3: ['ascii'], utf8: ['ascii'], latin1: ['ascii'] };

/** This node's column takes every value the sender's column can hold, unchanged. */
export function holdsAll(mine: ColumnInfo, theirs: ColumnShape): boolean {
  if (theirs.nullable && !mine.nullable) return false;
  if (theirs.charset !== null && mine.charset !== null && theirs.charset !== mine.charset && !WIDER[mine.charset]?.includes(theirs.charset)) return false;
  const a = parse(theirs.type);
  const b = parse(mine.columnType);
  if (theirs.type === mine.columnType.toLowerCase()) return true;
  if (INTS.includes(a.base) && INTS.includes(b.base)) {
    const wa = INTS.indexOf(a.base), wb = INTS.indexOf(b.base);
    if (a.unsigned === b.unsigned) return wb >= wa;
    return !a.unsigned ? false : wb > wa;
  }
  if (a.base === 'decimal' && b.base === 'decimal') {
    const [pa = 10, sa = 0] = a.args, [pb = 10, sb = 0] = b.args;
    if (!a.unsigned && b.unsigned) return false;
    return sb >= sa && pb - sb >= pa - sa;
  }
  if ((a.base === 'varchar' || a.base === 'char') && (b.base === 'varchar' || (b.base === 'char' && a.base === 'char'))) return (b.args[0] ?? 1) >= (a.args[0] ?? 1);
  if (a.base === 'varbinary' && b.base === 'varbinary') return (b.args[0] ?? 0) >= (a.args[0] ?? 0);
  if (TEXTS.includes(a.base) && TEXTS.includes(b.base)) return TEXTS.indexOf(b.base) >= TEXTS.indexOf(a.base);
  if (BLOBS.includes(a.base) && BLOBS.includes(b.base)) return BLOBS.indexOf(b.base) >= BLOBS.indexOf(a.base);
  if (a.base === 'float' && b.base === 'double' && a.args.length === 0 && b.args.length === 0) return true;
  if (TIMES.has(a.base) && a.base === b.base) return (b.args[0] ?? 0) >= (a.args[0] ?? 0);
  if (a.members && b.members && a.base === b.base) return a.members.every((x) => b.members!.includes(x));
  return false;
}
