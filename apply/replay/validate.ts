// Checks a whole batch against the catalogue before anything runs (pure).
// Every table must be a synced table of the schema, every column one of its
// columns that travels, every identity and reference well-formed. Names are
// only ever looked up in the catalogue's maps, so a hostile name cannot reach
// SQL: it is rejected here.
import type { Catalog, TableInfo } from '../core/catalog.js';
import { SpokesyncError } from '../core/errors.js';
import type { BatchEntry, ChangeSet, Op, Ref, Row, Value } from '../core/model.js';
import { isRef } from '../core/model.js';
import { badChange, parseTarget, rowKey, targetDependencies, type Target } from './target.js';

export interface PlannedOp {
  readonly op: Op;
  readonly target: Target;
  /** the parsed target of every Ref value in the op */
  readonly refs: ReadonlyMap<Ref, Target>;
}

export interface PlannedEntry {
  readonly seq: string;
  readonly cs: ChangeSet;
  readonly ops: readonly PlannedOp[];
  /** rows the change set writes (rowKey) */
  readonly writes: ReadonlySet<string>;
  /** rows it reads or needs: its own rows, referenced rows, shared-key parents */
  readonly touches: ReadonlySet<string>;
}

const NODE_ID = /^[a-z0-9-]{1,64}$/;
const UINT64 = /^(0|[1-9][0-9]{0,19})$/;
const MAX_UINT64 = 18446744073709551615n;
const COMMIT_TIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$/;

/** A name for a message: never long, never unprintable. */
export function label(name: unknown): string {
  const s = typeof name === 'string' ? name : String(name);
  return JSON.stringify(s.length > 64 ? s.slice(0, 64) + '…' : s);
}

function isUint64(s: unknown): s is string {
  return typeof s === 'string' && UINT64.test(s) && BigInt(s) <= MAX_UINT64;
}

/** A change set's id is its origin and stamp: `${origin}:${hlc}`, nothing else (an id cannot be chosen ahead of its stamp). */
export function checkChangeId(cs: Pick<ChangeSet, 'id' | 'origin' | 'hlc'>): void {
  if (cs.id !== `${cs.origin}:${cs.hlc}`) {
    throw new SpokesyncError('SPOKESYNC_E_CHANGE_ID', `change set ${label(cs.id)} of origin ${label(cs.origin)} does not have the id its origin and stamp give (${label(`${cs.origin}:${cs.hlc}`)})`);
  }
}

/** Validates every entry; throws SPOKESYNC_E_UNKNOWN_TABLE, _UNKNOWN_COLUMN or _BAD_CHANGE. */
export function validateBatch(catalog: Catalog, synced: ReadonlySet<string>, entries: readonly BatchEntry[]): PlannedEntry[] {
  return entries.map((e) => validateEntry(catalog, synced, e));
}

/** What a change set must be whatever the schema: its header, and names that could be a table's or column's. */
export function checkHeader(e: BatchEntry): void {
  if (!isUint64(e.seq)) throw badChange('a batch entry has a sequence number that is not a decimal uint64');
  const cs = e.cs;
  if (!NODE_ID.test(cs.origin)) throw badChange('a change set has an origin that is not a node id ([a-z0-9-]+)');
  if (!isUint64(cs.hlc)) throw badChange('a change set has an hlc that is not a decimal uint64');
  if (typeof cs.id !== 'string' || cs.id === '' || cs.id.length > 120) throw badChange('a change set has an empty or over-long id');
  if (!COMMIT_TIME.test(cs.time)) throw badChange("a change set has a commit time that is not 'YYYY-MM-DDTHH:MM:SSZ'");
  checkChangeId(cs);
}

const PLAIN_NAME = /^[A-Za-z0-9_$]{1,64}$/;

/** The checks a change set that is held (not applied now) must pass: nothing malformed is kept. */
export function checkHoldable(e: BatchEntry): void {
  checkHeader(e);
  for (const op of e.cs.ops) {
    if (typeof op.table !== 'string' || !PLAIN_NAME.test(op.table)) {
      throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_TABLE', `a change set names table ${label(op.table)}, which is not a plain table name`);
    }
    if (typeof op.id !== 'string' || op.id === '') throw badChange(`an op of table ${op.table} has an empty identity`);
    const rows = op.kind === 'insert' ? [op.row] : op.kind === 'update' ? [op.set, op.old] : [];
    for (const row of rows) {
      if (row === null || typeof row !== 'object') throw badChange(`an op of table ${op.table} has no columns object`);
      for (const name of Object.keys(row)) {
        if (!PLAIN_NAME.test(name)) throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_COLUMN', `a change set names column ${label(name)}, which is not a plain column name`);
      }
    }
    if (op.kind === 'update') {
      const a = Object.keys(op.set).sort();
      const b = Object.keys(op.old).sort();
      if (a.length !== b.length || a.some((c, i) => c !== b[i])) throw badChange(`an update of table ${op.table} carries old values for other columns than it sets`);
    } else if (op.kind === 'delete') {
      if (typeof op.digest !== 'string' || op.digest === '') throw badChange(`a delete from table ${op.table} has no row digest`);
    } else if (op.kind !== 'insert') throw badChange('an op has an unknown kind');
  }
}

export function validateEntry(catalog: Catalog, synced: ReadonlySet<string>, e: BatchEntry): PlannedEntry {
  checkHeader(e);
  const cs = e.cs;
  const writes = new Set<string>();
  const touches = new Set<string>();
  const ops = cs.ops.map((op) => {
    const p = validateOp(catalog, synced, op);
    writes.add(rowKey(p.target.table.name, p.target.id));
    touches.add(rowKey(p.target.table.name, p.target.id));
    targetDependencies(p.target, touches);
    for (const t of p.refs.values()) {
      touches.add(rowKey(t.table.name, t.id));
      targetDependencies(t, touches);
    }
    return p;
  });
  return { seq: e.seq, cs, ops, writes, touches };
}

function syncedTable(catalog: Catalog, synced: ReadonlySet<string>, name: unknown): TableInfo {
  const t = typeof name === 'string' ? catalog.tables.get(name) : undefined;
  if (!t) throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_TABLE', `a change set names table ${label(name)}, which is not in schema ${catalog.schema}`);
  if (!synced.has(t.name)) {
    throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_TABLE', `a change set writes table ${label(t.name)}, which this node does not sync`);
  }
  return t;
}

function validateOp(catalog: Catalog, synced: ReadonlySet<string>, op: Op): PlannedOp {
  const t = syncedTable(catalog, synced, op.table);
  const target = parseTarget(catalog, t.name, op.id);
  const refs = new Map<Ref, Target>();
  switch (op.kind) {
    case 'insert':
      checkRow(catalog, t, op.row, refs);
      checkInsertIdentity(target, op.row);
      break;
    case 'update': {
      checkRow(catalog, t, op.set, refs);
      checkRow(catalog, t, op.old, refs);
      const a = Object.keys(op.set).sort();
      const b = Object.keys(op.old).sort();
      if (a.length !== b.length || a.some((c, i) => c !== b[i])) {
        throw badChange(`an update of table ${t.name} carries old values for other columns than it sets`);
      }
      break;
    }
    case 'delete':
      if (typeof op.digest !== 'string' || op.digest === '') throw badChange(`a delete from table ${t.name} has no row digest`);
      break;
    default:
      throw badChange(`an op of table ${t.name} has an unknown kind`);
  }
  return { op, target, refs };
}

/** An inserted row must carry the key its identity names. */
function checkInsertIdentity(target: Target, row: Row): void {
  const t = target.table;
  const same = (v: Value | undefined, part: string): boolean =>
    v === undefined ? false : Buffer.isBuffer(v) ? true : isRef(v) ? v.id === part : v === part;
  if (target.kind === 'uuid' && !same(row[target.column], target.value)) {
    throw badChange(`an insert into table ${t.name} carries another ${target.column} than its identity`);
  }
  if (target.kind === 'natural') {
    for (const p of target.parts) {
      if (!same(row[p.column], 'ref' in p ? p.ref.id : p.value)) {
        throw badChange(`an insert into table ${t.name} carries another ${p.column} than its identity`);
      }
    }
  }
}

function checkRow(catalog: Catalog, t: TableInfo, row: Row, refs: Map<Ref, Target>): void {
  if (row === null || typeof row !== 'object') throw badChange(`an op of table ${t.name} has no columns object`);
  for (const name of Object.keys(row)) {
    const col = t.column.get(name);
    if (!col) throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_COLUMN', `a change set names column ${label(name)}, which table ${t.name} does not have`);
    if (col.generated) throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_COLUMN', `a change set writes ${t.name}.${name}, a generated column`);
    if (t.localColumns.has(name)) {
      throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_COLUMN', `a change set writes ${t.name}.${name}, a local id that never travels`);
    }
    checkValue(catalog, t, name, row[name]!, refs);
  }
}

function checkValue(catalog: Catalog, t: TableInfo, column: string, v: Value, refs: Map<Ref, Target>): void {
  const fk = t.refs.get(column);
  if (v === null) return;
  if (isRef(v)) {
    if (!fk) throw badChange(`${t.name}.${column} is not a foreign key, but a change set gives it a reference`);
    if (v.ref !== fk.table) throw badChange(`${t.name}.${column} references table ${fk.table}, but a change set names ${label(v.ref)}`);
    refs.set(v, parseTarget(catalog, fk.table, v.id));
    return;
  }
  if (typeof v !== 'string' && !Buffer.isBuffer(v)) throw badChange(`${t.name}.${column} has a value that is not text, bytes, a reference or null`);
  if (fk) throw badChange(`${t.name}.${column} is a foreign key: its values travel as references, not as local ids`);
}
