// encodeInsert (insert-form.ts) of an image not decoded (RawInsert): the same
// bytes, written through apply/codec/xml-sink.ts from the binlog's bytes.
// Text that is plain ASCII (nearly all of it) is copied as it is; only what
// the element needs as text is read (the identity, referencing columns,
// numbers and dates); any other value is read and written as encodeInsert does.
import type { Value } from '../../apply/core/model.js';
import { NOT_PLAIN, binaryElement, insertOpen, nullElement, textElement, type XmlSink } from '../../apply/codec/xml-sink.js';
import { keyText, rowIdentity, type CanonRow, type Lookup, type RefResolver } from '../../apply/core/row-identity.js';
import { encodeInsert } from './insert-form.js';
import { insertLookups, wantKey, type InsertFacts, type InsertPlan } from './insert-plan.js';
import type { RawInsert } from './raw-insert.js';
import { IntKind, asciiText, intAt, type RowPlan } from './row-plan.js';
import { RowReader } from './row-reader.js';

/** A plan's columns in a binlog image of its table (RawInsert): the row plan's column index of each, and scratch space. */
interface RawColumns {
  /** for each of plan.cols */
  readonly index: Int32Array;
  /** for each of plan.cols: a text column whose ASCII values are their bytes (RowPlan.text) */
  readonly text: readonly boolean[];
  /** for each of plan.cols: values plain ASCII text, never empty (a fixed size: RowPlan.sizes) */
  readonly plain: readonly boolean[];
  readonly prefix: Int32Array;
  /** for each of plan.cols: an integer written as digits from its bytes (RowPlan.ints) */
  readonly ints: Int8Array;
  readonly idCols: Int32Array;
  readonly idRefs: Int32Array;
  /** -1: no one-column key */
  readonly pk: number;
  /** where the columns of the image being written lie (RawInsert.locate) */
  readonly where: Int32Array;
  readonly reader: RowReader;
}

/** By insert plan and row plan (a cache: both are never changed). */
const rawColumns = new WeakMap<InsertPlan, Map<RowPlan, RawColumns | null>>();

function rawColumnsOf(plan: InsertPlan, rowPlan: RowPlan): RawColumns | null {
  let byRow = rawColumns.get(plan);
  if (!byRow) rawColumns.set(plan, (byRow = new Map()));
  let found = byRow.get(rowPlan);
  if (found === undefined) byRow.set(rowPlan, (found = makeRawColumns(plan, rowPlan)));
  return found;
}

// (its own function: closures over rowPlan in rawColumnsOf would cost an allocation per call)
function makeRawColumns(plan: InsertPlan, rowPlan: RowPlan): RawColumns | null {
  const at = (name: string): number => rowPlan.names.indexOf(name);
  const index = Int32Array.from(plan.cols, (c) => at(c.name));
  const idCols = Int32Array.from(plan.idCols, (c) => at(c.name));
  const idRefs = Int32Array.from(plan.idRefs, (c) => at(c.name));
  const pk = plan.pk ? at(plan.pk.name) : -1;
  if ([...index, ...idCols, ...idRefs].some((i) => i < 0) || (plan.pk !== undefined && pk < 0)) return null;
  return {
    index, idCols, idRefs, pk,
    text: Array.from(index, (i) => rowPlan.text[i]!),
    plain: Array.from(index, (i) => rowPlan.sizes[i]! > 0),
    ints: Int8Array.from(index, (i) => rowPlan.ints[i]!),
    prefix: Int32Array.from(index, (i) => prefixOf(rowPlan, i)),
    where: new Int32Array(2 * rowPlan.names.length),
    reader: new RowReader(),
  };
}

/** Bytes of column i's length prefix (0: a fixed-size value). */
function prefixOf(rowPlan: RowPlan, i: number): number {
  const size = rowPlan.sizes[i]!;
  return size < 0 ? -size : 0;
}

/** A column's value as a key part; undefined for NULL. */
function rawKey(image: RawInsert, rc: RawColumns, i: number): string | undefined {
  const start = rc.where[2 * i]!;
  return start < 0 ? undefined : keyText(image.read(i, start, rc.reader));
}

/** insertLookups of an image not decoded: only the referencing columns are read. */
export function rawInsertLookups(plan: InsertPlan, image: RawInsert, refs: RefResolver, out: Lookup[]): void {
  const rc = rawColumnsOf(plan, image.plan);
  if (!rc) {
    insertLookups(plan, image.decode(), true, refs, out);
    return;
  }
  image.locate(rc.where, rc.reader);
  for (let k = 0; k < plan.idRefs.length; k++) {
    const c = plan.idRefs[k]!;
    wantKey(c.table, c.column, rawKey(image, rc, rc.idRefs[k]!), refs, out);
  }
  const cols = plan.cols;
  for (let j = 0; j < cols.length; j++) {
    const ref = cols[j]!.ref;
    if (ref) wantKey(ref.table, ref.column, rawKey(image, rc, rc.index[j]!), refs, out);
  }
}

/** Bytes a text value may have and still go as it is (the ASCII part of NOT_PLAIN's complement). */
const PLAIN_BYTE = new Uint8Array(256);
for (let b = 0; b < 0x80; b++) PLAIN_BYTE[b] = b === 0x09 || b === 0x0a || (b >= 0x20 && b !== 0x26 && b !== 0x3c && b !== 0x3e) ? 1 : 0;

/** Bytes an attribute value may have and still go as it is (NOT_PLAIN_ATTR's complement, ASCII). */
const ATTR_PLAIN_BYTE = new Uint8Array(256);
for (let b = 0x20; b < 0x80; b++) ATTR_PLAIN_BYTE[b] = b === 0x22 || b === 0x26 || b === 0x3c ? 0 : 1;

function attrPlainBytes(b: Buffer, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (ATTR_PLAIN_BYTE[b[k]!] === 0) return false;
  return true;
}

function plainBytes(b: Buffer, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (PLAIN_BYTE[b[k]!] === 0) return false;
  return true;
}

/** encodeInsert of an image not decoded (RawInsert): the same bytes, from the binlog's bytes. */
export function encodeRawInsert(plan: InsertPlan, image: RawInsert, refs: RefResolver, facts: InsertFacts, out: XmlSink): boolean {
  const rc = rawColumnsOf(plan, image.plan);
  if (!rc) return encodeInsert(plan, image.decode(), true, refs, facts, out);
  const r = rc.reader;
  const w = rc.where;
  image.locate(w, r);
  const bytes = image.bytes;
  let id: string | undefined;
  /** the column the identity is the text of (uuid rule), -1 when none: it is the identity without comparing */
  let idColumn = -1;
  // the identity that is a text column's value of attribute-plain ASCII bytes is written as those bytes
  let idBytes: Buffer | null = null;
  let idFrom = 0;
  let idEnd = 0;
  if (plan.table.identity?.kind === 'uuid') {
    // (rowIdentity's uuid rule, without a row object for the one column)
    idColumn = rc.idCols[0]!;
    const start = w[2 * idColumn]!;
    if (start >= 0 && image.plan.text[idColumn]) {
      idFrom = start + prefixOf(image.plan, idColumn);
      idEnd = w[2 * idColumn + 1]!;
      if (idEnd > idFrom && attrPlainBytes(bytes, idFrom, idEnd)) {
        idBytes = bytes;
        id = asciiText(bytes, idFrom, idEnd);
      }
    }
    if (!idBytes) id = rawKey(image, rc, idColumn);
  } else {
    const idRow: Record<string, Value> = {};
    for (let k = 0; k < plan.idCols.length; k++) {
      const i = rc.idCols[k]!;
      const start = w[2 * i]!;
      idRow[plan.idCols[k]!.name] = start < 0 ? null : image.read(i, start, r);
    }
    id = rowIdentity(plan.table, idRow as CanonRow, refs);
  }
  if (id === undefined) return false;
  const idAscii = idBytes !== null || !NON_ASCII.test(id);
  const { cols, values, isRef } = plan;
  let same = -1;
  let matches = 0;
  let elements = 0;
  let nulls = '';
  for (let j = 0; j < cols.length; j++) {
    const c = cols[j]!;
    const i = rc.index[j]!;
    const start = w[2 * i]!;
    isRef[j] = false;
    if (start < 0) {
      values[j] = null;
      if (c.listName) nulls += nulls === '' ? c.name : ` ${c.name}`;
      else elements++;
      continue;
    }
    if (c.ref) {
      const target = refs.identity(c.ref.table, c.ref.column, keyText(image.read(i, start, r))!);
      if (target === undefined) return false;
      values[j] = target;
      isRef[j] = true;
      elements++;
      continue;
    }
    elements++;
    if (rc.text[j]) {
      // written from its bytes (values[j] unused)
      values[j] = undefined;
      if (c.listName && (i === idColumn || rawEquals(image, rc, i, start, start + rc.prefix[j]!, w[2 * i + 1]!, id, idAscii))) {
        same = j;
        matches++;
      }
      continue;
    }
    if (rc.ints[j] !== IntKind.None && (!c.listName || id.length > INT_TEXT_MAX)) {
      // written as digits from its bytes (values[j] unused): its text cannot be the identity
      values[j] = undefined;
      continue;
    }
    const v = image.read(i, start, r);
    values[j] = v;
    if (v === id && c.listName) {
      same = j;
      matches++;
    }
  }
  if (matches !== 1) same = -1;
  else elements--;
  facts.identity = id;
  facts.localId = rc.pk < 0 ? undefined : rawKey(image, rc, rc.pk);
  if (!insertOpen(out, plan.head, id, idBytes, idFrom, idEnd, same >= 0 ? cols[same]!.uAttr : undefined, nulls, elements === 0)) return true;
  // An element with a value is written without its '</c>': it goes with the
  // next opening tag (closeOpenGtBytes) or the row's end, one piece, not two.
  let open = false;
  for (let j = 0; j < cols.length; j++) {
    if (j === same) continue;
    const c = cols[j]!;
    const i = rc.index[j]!;
    const start = w[2 * i]!;
    if (start < 0) {
      if (c.listName) continue;
    } else if (isRef[j]) {
      const target = values[j] as string;
      if (target !== '' && !NOT_PLAIN.test(target)) {
        out.piece(open ? c.closeOpenGtBytes : c.openGtBytes);
        writeRef(plan, target, out);
        open = true;
        continue;
      }
    } else if (rc.text[j]) {
      const from = start + rc.prefix[j]!;
      const end = w[2 * i + 1]!;
      if (from !== end && plainBytes(bytes, from, end)) {
        out.piece(open ? c.closeOpenGtBytes : c.openGtBytes);
        out.bytes(bytes, from, end);
        open = true;
        continue;
      }
    } else if (values[j] === undefined) {
      out.piece(open ? c.closeOpenGtBytes : c.openGtBytes);
      out.int(intAt(bytes, start, rc.ints[j]!));
      open = true;
      continue;
    } else if (rc.plain[j]) {
      out.piece(open ? c.closeOpenGtBytes : c.openGtBytes);
      out.str(values[j] as string);
      open = true;
      continue;
    }
    // any other form: a whole element, the one before closed first
    if (open) {
      out.piece(CLOSE_C);
      open = false;
    }
    if (start < 0) nullElement(out, c.open);
    else if (isRef[j]) textElement(out, c.openRef, c.openGt, '</c>', values[j] as string);
    else if (rc.text[j]) textElement(out, c.open, c.openGt, '</c>', image.read(i, start, r) as string);
    else {
      const v = values[j]!;
      if (typeof v === 'string') textElement(out, c.open, c.openGt, '</c>', v);
      else binaryElement(out, c.open, '</c>', v as Buffer);
    }
  }
  out.piece(open ? CLOSE_C_I : CLOSE_I);
  return true;
}

/** A referenced identity, plain text, as its bytes (kept by the plan's catalogue). */
function writeRef(plan: InsertPlan, target: string, out: XmlSink): void {
  const known = plan.refBytes.get(target);
  if (known !== undefined) {
    out.piece(known);
    return;
  }
  const from = out.length;
  out.str(target);
  plan.refBytes.set(target, out.copy(from));
}

const CLOSE_C = new Uint8Array(Buffer.from('</c>'));
const CLOSE_I = new Uint8Array(Buffer.from('</i>'));
const CLOSE_C_I = new Uint8Array(Buffer.from('</c></i>'));

/**
 * Whether text column i's value, its bytes at [from, end), is `id`: compared
 * byte for byte when `id` is ASCII (a value with any other byte is other
 * text then), read and compared otherwise.
 */
function rawEquals(image: RawInsert, rc: RawColumns, i: number, start: number, from: number, end: number, id: string, idAscii: boolean): boolean {
  if (!idAscii) return image.read(i, start, rc.reader) === id;
  if (end - from !== id.length) return false;
  const b = image.bytes;
  for (let k = 0; k < id.length; k++) if (b[from + k] !== id.charCodeAt(k)) return false;
  return true;
}

const NON_ASCII = /[\u0080-\uffff]/;

/** The longest text of an integer of at most 32 bits ('-2147483648'): an identity longer is no such column's value. */
const INT_TEXT_MAX = 11;
