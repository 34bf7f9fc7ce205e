// Inserts written straight from binlog row images: the <i> element that
// apply/codec/encode.ts writes for the InsertOp mapChange would build, the
// row's identity and its local id, without the canonical row, the op and
// its row object in between (capture's hot path: most captured changes are
// inserts). An image capture's row decoder left undecoded (RawImage) is
// written from its bytes (encodeRawInsert); any other from its values
// (encodeInsert). The bytes are the codec's, exactly (test/unit/capture-insert-form
// compares them); anything the short way cannot decide (an identity or a
// reference not known) is left to the general path, which names the problem.
import type { Value } from '../../apply/core/model.js';
import { COMMIT_TIME, LIST_NAME, NODE_ID, escapeText, hasLoneSurrogate, isUint64, isXmlSafe, nameAttr, xmlError } from '../../apply/codec/xml-text.js';
import type { Catalog, TableInfo } from '../../apply/core/catalog.js';
import type { RowImage } from './events.js';
import { IntKind, asciiText, intAt, type RawImage, type RowPlan } from './row-decoder.js';
import { identityColumns, keyText, rowIdentity, singlePk, type CanonRow, type Lookup, type RefResolver } from '../../apply/core/row-identity.js';
import { converters, travelColumns } from './mapper.js';

interface ColumnPlan {
  readonly name: string;
  readonly convert: (v: unknown) => Value;
  /** a foreign key to a table with an identity: travels as a reference */
  readonly ref: { readonly table: string; readonly column: string; readonly attr: string } | null;
  /** `<c n="name"` */
  readonly open: string;
  /** `<c n="name">`, and for a reference `<c n="name" r="table">` (fewer pieces to join) */
  readonly openGt: string;
  /** openGt as UTF-8 */
  readonly openGtBytes: Uint8Array;
  /** `</c>` and openGt, as UTF-8 */
  readonly closeOpenGtBytes: Uint8Array;
  /** may be listed in z= / named in u= */
  readonly listName: boolean;
  /** ` u="name` and `" u="name` (after the identity's closing quote not yet written), as UTF-8 */
  readonly uAttr: readonly [Uint8Array, Uint8Array];
}

export interface InsertPlan {
  readonly table: TableInfo;
  /** `<i t="table"` */
  readonly iOpen: string;
  /** `<i t="table" k="`, as UTF-8 */
  readonly iOpenKBytes: Uint8Array;
  readonly cols: readonly ColumnPlan[];
  /** the columns the identity is computed from */
  readonly idCols: readonly { readonly name: string; readonly convert: (v: unknown) => Value }[];
  /** references the identity needs (shared key, natural key parts) */
  readonly idRefs: readonly { readonly name: string; readonly convert: (v: unknown) => Value; readonly table: string; readonly column: string }[];
  readonly pk: { readonly name: string; readonly convert: (v: unknown) => Value } | undefined;
  /** scratch space for one row's values: the value, or the referenced identity */
  readonly values: (Value | undefined)[];
  readonly isRef: boolean[];
}

const plans = new WeakMap<Catalog, Map<string, InsertPlan | null>>();

/** The plan for inserts into `table`, or null when its inserts take the general path (no identity rule). */
export function insertPlan(catalog: Catalog, table: string): InsertPlan | null {
  let byTable = plans.get(catalog);
  if (!byTable) plans.set(catalog, (byTable = new Map()));
  let plan = byTable.get(table);
  if (plan === undefined) {
    plan = makePlan(catalog, table);
    byTable.set(table, plan);
  }
  return plan;
}

function makePlan(catalog: Catalog, name: string): InsertPlan | null {
  const t = catalog.tables.get(name);
  if (!t || !t.identity) return null;
  const conv = converters(t);
  const convert = (c: string): ((v: unknown) => Value) | undefined => conv.get(c);
  try {
    const cols: ColumnPlan[] = [];
    for (const c of travelColumns(t)) {
      const ref = t.refs.get(c);
      const target = ref && catalog.tables.get(ref.table)?.identity ? ref : undefined;
      const openGt = `<c${nameAttr('n', 'N', c, 'column name')}${target ? nameAttr('r', 'R', target.table, 'referenced table name') : ''}>`;
      cols.push({
        name: c,
        convert: convert(c)!,
        ref: target ? { table: target.table, column: target.column, attr: nameAttr('r', 'R', target.table, 'referenced table name') } : null,
        open: `<c${nameAttr('n', 'N', c, 'column name')}`,
        openGt,
        openGtBytes: new Uint8Array(Buffer.from(openGt, 'utf8')),
        closeOpenGtBytes: new Uint8Array(Buffer.from(`</c>${openGt}`, 'utf8')),
        listName: LIST_NAME.test(c),
        uAttr: [new Uint8Array(Buffer.from(` u="${c}`, 'utf8')), new Uint8Array(Buffer.from(`" u="${c}`, 'utf8'))],
      });
    }
    const rule = t.identity;
    const idRefs = rule.kind === 'shared' ? [{ name: rule.column, convert: convert(rule.column)!, table: rule.refTable, column: rule.refColumn }]
      : rule.kind === 'natural' ? rule.columns.filter((c) => t.refs.has(c)).map((c) => ({ name: c, convert: convert(c)!, ...t.refs.get(c)! }))
      : [];
    const pk = singlePk(t);
    return {
      table: t,
      iOpen: `<i${nameAttr('t', 'T', t.name, 'table name')}`,
      iOpenKBytes: new Uint8Array(Buffer.from(`<i${nameAttr('t', 'T', t.name, 'table name')} k="`, 'utf8')),
      cols,
      idCols: identityColumns(t).map((c) => ({ name: c, convert: convert(c)! })),
      idRefs,
      pk: pk === undefined ? undefined : { name: pk, convert: convert(pk)! },
      values: new Array<Value | undefined>(cols.length),
      isRef: new Array<boolean>(cols.length).fill(false),
    };
  } catch {
    // a name the wire format cannot carry: the general path reports it
    return null;
  }
}

/** The referenced rows an insert of `image` needs that `refs` does not know yet (lookupsFor, for a plan). */
export function insertLookups(plan: InsertPlan, image: RowImage, canon: boolean, refs: RefResolver, out: Lookup[]): void {
  for (const c of plan.idRefs) want(c.table, c.column, canon ? asValue : c.convert, image, c.name, refs, out);
  for (const c of plan.cols) if (c.ref) want(c.ref.table, c.ref.column, canon ? asValue : c.convert, image, c.name, refs, out);
}

/** The conversion of a value that is canonical already (events.ts RowChange canon). */
const asValue = (v: unknown): Value => v as Value;

function want(table: string, column: string, convert: (v: unknown) => Value, image: RowImage, name: string, refs: RefResolver, out: Lookup[]): void {
  if (name in image) wantKey(table, column, keyText(convert(image[name])), refs, out);
}

/**
 * Change sets written as bytes, one after the other into a chunk of memory;
 * the body of each is a view of the chunk, not a copy. Strings go in as
 * UTF-8, by a plain loop while they are ASCII (most pieces are short: a loop
 * beats a call into the runtime). The text of a row can go in as the
 * binlog's own bytes (encodeRawInsert). Building bytes, not one string of
 * many pieces, leaves nothing to join and nothing to convert: joining and
 * converting were a third of encoding's cost, and most of what it allocated.
 */
export class Body {
  /** the chunk being written: change sets taken so far, then [base, n), the one being written */
  private buf = Buffer.allocUnsafe(CHUNK);
  private base = 0;
  private n = 0;

  /** bytes of the change set being written */
  get length(): number {
    return this.n - this.base;
  }

  /** Adds up to five strings (fixed arguments: a rest parameter would allocate an array per call). */
  push(a: string, b?: string, c?: string, d?: string, e?: string): void {
    this.str(a);
    if (b === undefined) return;
    this.str(b);
    if (c === undefined) return;
    this.str(c);
    if (d === undefined) return;
    this.str(d);
    if (e !== undefined) this.str(e);
  }

  /** Adds `s` as UTF-8. */
  str(s: string): void {
    const len = s.length;
    if (this.n + 3 * len > this.buf.length) this.grow(3 * len);
    const buf = this.buf;
    let n = this.n;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        // (from the start of s again: what the loop wrote is overwritten)
        this.n += buf.write(s, this.n, 'utf8');
        return;
      }
      buf[n++] = c;
    }
    this.n = n;
  }

  /** Adds the decimal text of an integer of at most 32 bits, as String() writes it. */
  int(v: number): void {
    if (this.n + 11 > this.buf.length) this.grow(11);
    if (v < 0) {
      this.buf[this.n++] = 0x2d;
      v = -v;
    }
    // (digits counted by a loop: a chain of comparisons would send optimized code back to the interpreter each time a longer number first comes)
    let len = 1;
    for (let m = v; m >= 10; m = (m / 10) >>> 0) len++;
    const buf = this.buf;
    const start = this.n;
    let end = start + len;
    this.n = end;
    while (end > start) {
      // (v < 2^32: the division truncated by >>> 0 is its floor)
      const q = (v / 10) >>> 0;
      buf[--end] = 0x30 + v - 10 * q;
      v = q;
    }
  }

  /** Adds `b`, bytes of a piece that is written often (a column's opening tag). */
  piece(b: Uint8Array): void {
    const len = b.length;
    if (this.n + len > this.buf.length) this.grow(len);
    const buf = this.buf;
    let n = this.n;
    if (len > 8) {
      // (TypedArray set: one call, however long; a loop costs a few ns a byte)
      buf.set(b, n);
      this.n = n + len;
      return;
    }
    for (let i = 0; i < len; i++) buf[n++] = b[i]!;
    this.n = n;
  }

  /** Adds src[start, end) as it is. */
  bytes(src: Buffer, start: number, end: number): void {
    const len = end - start;
    if (this.n + len > this.buf.length) this.grow(len);
    if (len > 24) {
      src.copy(this.buf, this.n, start, end);
      this.n += len;
      return;
    }
    const buf = this.buf;
    let n = this.n;
    for (let i = start; i < end; i++) buf[n++] = src[i]!;
    this.n = n;
  }

  /** A copy of the change set's bytes from `from` on (its own memory: what is written here later does not change it). */
  copy(from: number): Uint8Array {
    // (a Uint8Array made from a view copies it; Buffer's slice() would be a view)
    return new Uint8Array(this.buf.subarray(this.base + from, this.n));
  }

  /** Back to `len` bytes of the change set being written (what was added since is dropped). */
  truncate(len: number): void {
    this.n = this.base + len;
  }

  /**
   * The change set written, and the next one begins. Its bytes stay where
   * they were written (a view of the chunk, not a copy): the chunk is never
   * written there again, and lives as long as a change set taken from it.
   */
  take(): Buffer {
    const out = this.buf.subarray(this.base, this.n);
    this.base = this.n;
    return out;
  }

  /** A new chunk, the change set being written moved to its start. */
  private grow(extra: number): void {
    const len = this.n - this.base;
    const next = Buffer.allocUnsafe(Math.max(CHUNK, 2 * (len + extra)));
    this.buf.copy(next, 0, this.base, this.n);
    this.buf = next;
    this.base = 0;
    this.n = len;
  }
}

/** Bytes of change sets a Body writes into one buffer. */
const CHUNK = 1 << 20;

/** What encodeInsert found out about the row besides its element. */
export interface InsertFacts {
  identity: string;
  /** the primary key's text when the key is one column */
  localId: string | undefined;
}

/**
 * Appends the pieces of the <i> element of the insert of `image` (as
 * encodeChangeSet writes it) to `out`; false, with `out` as it was, when the
 * identity or a reference is not known (the general path then fails with the
 * reason). `canon`: the image holds canonical values already (row-decoder.ts).
 */
export function encodeInsert(plan: InsertPlan, image: RowImage, canon: boolean, refs: RefResolver, facts: InsertFacts, out: Body): boolean {
  const idRow: Record<string, Value> = {};
  for (const c of plan.idCols) if (c.name in image) idRow[c.name] = canon ? image[c.name] as Value : c.convert(image[c.name]);
  const id = rowIdentity(plan.table, idRow as CanonRow, refs);
  if (id === undefined) return false;
  const { cols, values, isRef } = plan;
  let same = -1;
  let matches = 0;
  let elements = 0;
  let nulls = '';
  for (let i = 0; i < cols.length; i++) {
    const c = cols[i]!;
    if (!(c.name in image)) {
      values[i] = undefined;
      continue;
    }
    const v = canon ? image[c.name] as Value : c.convert(image[c.name]);
    if (v !== null && c.ref) {
      const target = refs.identity(c.ref.table, c.ref.column, keyText(v)!);
      if (target === undefined) return false;
      values[i] = target;
      isRef[i] = true;
      elements++;
      continue;
    }
    values[i] = v;
    isRef[i] = false;
    if (v === null && c.listName) {
      nulls += nulls === '' ? c.name : ` ${c.name}`;
      continue;
    }
    elements++;
    if (v === id && c.listName) {
      same = i;
      matches++;
    }
  }
  // with two such columns, which one was left out would depend on column order
  if (matches !== 1) same = -1;
  else elements--;
  facts.identity = id;
  const pk = plan.pk;
  facts.localId = pk && pk.name in image ? keyText(canon ? image[pk.name] as Value : pk.convert(image[pk.name])) : undefined;
  if (!insertHead(plan, id, null, 0, 0, same >= 0 ? cols[same] : undefined, nulls, elements === 0, out)) return true;
  for (let i = 0; i < cols.length; i++) {
    const v = values[i];
    if (v === undefined || i === same) continue;
    const c = cols[i]!;
    if (isRef[i]) refElement(c, v as string, out);
    else if (v === null) {
      if (!c.listName) out.push(c.open, ' z="1"/>');
    } else if (typeof v === 'string') textElement(c, v, out);
    else binaryElement(c.open, v as Buffer, out);
  }
  out.push('</i>');
  return true;
}

/** A plan's columns in a binlog image of its table (RawImage): row-decoder.ts's column index of each. */
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
}

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
  };
}

/** Bytes of column i's length prefix (0: a fixed-size value). */
function prefixOf(rowPlan: RowPlan, i: number): number {
  const size = rowPlan.sizes[i]!;
  return size < 0 ? -size : 0;
}

/** Where the columns of the image being written lie (RawImage.locate), reused. */
let where = new Int32Array(256);

function locate(image: RawImage): Int32Array {
  const need = 2 * image.plan.names.length;
  if (where.length < need) where = new Int32Array(need);
  image.locate(where);
  return where;
}

/** A column's value as a key part; undefined for NULL. */
function rawKey(image: RawImage, w: Int32Array, i: number): string | undefined {
  const start = w[2 * i]!;
  return start < 0 ? undefined : keyText(image.read(i, start));
}

/** insertLookups of an image not decoded: only the referencing columns are read. */
export function rawInsertLookups(plan: InsertPlan, image: RawImage, refs: RefResolver, out: Lookup[]): void {
  const rc = rawColumnsOf(plan, image.plan);
  if (!rc) {
    insertLookups(plan, image.decode(), true, refs, out);
    return;
  }
  const w = locate(image);
  for (let k = 0; k < plan.idRefs.length; k++) {
    const c = plan.idRefs[k]!;
    wantKey(c.table, c.column, rawKey(image, w, rc.idRefs[k]!), refs, out);
  }
  const cols = plan.cols;
  for (let j = 0; j < cols.length; j++) {
    const ref = cols[j]!.ref;
    if (ref) wantKey(ref.table, ref.column, rawKey(image, w, rc.index[j]!), refs, out);
  }
}

function wantKey(table: string, column: string, value: string | undefined, refs: RefResolver, out: Lookup[]): void {
  if (value !== undefined && refs.identity(table, column, value) === undefined) out.push({ table, column, value });
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

/**
 * encodeInsert of an image not decoded (row-decoder.ts RawImage): the same
 * bytes, written into `out` from the binlog's bytes. Text that is plain ASCII
 * (nearly all of it) is copied as it is; only what the element needs as
 * text is read (the identity, referencing columns, numbers and dates); any
 * other text value is read and goes the way encodeInsert writes it.
 */
export function encodeRawInsert(plan: InsertPlan, image: RawImage, refs: RefResolver, facts: InsertFacts, out: Body): boolean {
  const rc = rawColumnsOf(plan, image.plan);
  if (!rc) return encodeInsert(plan, image.decode(), true, refs, facts, out);
  const w = locate(image);
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
    if (!idBytes) id = rawKey(image, w, idColumn);
  } else {
    const idRow: Record<string, Value> = {};
    for (let k = 0; k < plan.idCols.length; k++) {
      const i = rc.idCols[k]!;
      const start = w[2 * i]!;
      idRow[plan.idCols[k]!.name] = start < 0 ? null : image.read(i, start);
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
      const target = refs.identity(c.ref.table, c.ref.column, keyText(image.read(i, start))!);
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
      if (c.listName && (i === idColumn || rawEquals(image, i, start, start + rc.prefix[j]!, w[2 * i + 1]!, id, idAscii))) {
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
    const v = image.read(i, start);
    values[j] = v;
    if (v === id && c.listName) {
      same = j;
      matches++;
    }
  }
  if (matches !== 1) same = -1;
  else elements--;
  facts.identity = id;
  facts.localId = rc.pk < 0 ? undefined : rawKey(image, w, rc.pk);
  if (!insertHead(plan, id, idBytes, idFrom, idEnd, same >= 0 ? cols[same] : undefined, nulls, elements === 0, out)) return true;
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
        writeRef(target, out);
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
    if (start < 0) out.push(c.open, ' z="1"/>');
    else if (isRef[j]) refElement(c, values[j] as string, out);
    else if (rc.text[j]) textElement(c, image.read(i, start) as string, out);
    else {
      const v = values[j]!;
      if (typeof v === 'string') textElement(c, v, out);
      else binaryElement(c.open, v as Buffer, out);
    }
  }
  out.piece(open ? CLOSE_C_I : CLOSE_I);
  return true;
}

/**
 * Identities of referenced rows as UTF-8, by identity: references repeat (the
 * same concept, person, encounter, user in row after row), and copying bytes
 * is cheaper than converting text. Emptied when full.
 */
const refBytes = new Map<string, Uint8Array>();
const REF_BYTES_MAX = 4096;

function writeRef(target: string, out: Body): void {
  const known = refBytes.get(target);
  if (known !== undefined) {
    out.piece(known);
    return;
  }
  const from = out.length;
  out.str(target);
  if (refBytes.size >= REF_BYTES_MAX) refBytes.clear();
  refBytes.set(target, out.copy(from));
}

const CLOSE_C = new Uint8Array(Buffer.from('</c>'));
const CLOSE_I = new Uint8Array(Buffer.from('</i>'));
const CLOSE_C_I = new Uint8Array(Buffer.from('</c></i>'));

/**
 * Whether text column i's value, its bytes at [from, end), is `id`: compared
 * byte for byte when `id` is ASCII (a value with any other byte is other
 * text then), read and compared otherwise.
 */
function rawEquals(image: RawImage, i: number, start: number, from: number, end: number, id: string, idAscii: boolean): boolean {
  if (!idAscii) return image.read(i, start) === id;
  if (end - from !== id.length) return false;
  const b = image.bytes;
  for (let k = 0; k < id.length; k++) if (b[from + k] !== id.charCodeAt(k)) return false;
  return true;
}

const NON_ASCII = /[\u0080-\uffff]/;

/** The longest text of an integer of at most 32 bits ('-2147483648'): an identity longer is no such column's value. */
const INT_TEXT_MAX = 11;

/**
 * The start of an <i> element: table, identity (`idBytes`: its bytes at
 * [from, end), ASCII that needs no escaping in an attribute; null: written
 * from `id`), the column named in u=, the NULL columns listed in z=. Closed at once when `empty`
 * (false: nothing else goes in); else open for the column elements (true).
 * Constant pieces are joined ahead where they meet: fewer pieces, same text.
 */
function insertHead(plan: InsertPlan, id: string, idBytes: Buffer | null, from: number, end: number,
  same: ColumnPlan | undefined, nulls: string, empty: boolean, out: Body): boolean {
  let quote: boolean;
  if (idBytes) {
    out.piece(plan.iOpenKBytes);
    out.bytes(idBytes, from, end);
    quote = true;
  } else if (NOT_PLAIN_ATTR.test(id)) {
    out.push(plan.iOpen, nameAttr('k', 'K', id, 'identity'));
    quote = false;
  } else {
    out.piece(plan.iOpenKBytes);
    out.str(id);
    quote = true;
  }
  if (same) {
    // (a name in u= is one LIST_NAME allows: nothing to escape)
    out.piece(same.uAttr[quote ? 1 : 0]);
    quote = true;
  }
  if (nulls !== '') {
    out.push(quote ? '" z="' : ' z="', nulls);
    quote = true;
  }
  out.push(empty ? (quote ? '"/>' : '/>') : (quote ? '">' : '>'));
  return !empty;
}

/** Characters that need neither escaping nor base64: one test settles most values. */
const NOT_PLAIN = /[^\t\n\x20-\x25\x27-\x3b\x3d\x3f-\uD7FF\uE000-\uFFFD]/;
/** The same in an attribute value (where '>' needs nothing, '"', tab and LF do). */
const NOT_PLAIN_ATTR = /[^\x20\x21\x23-\x25\x27-\x3b\x3d-\uD7FF\uE000-\uFFFD]/;

function textElement(c: ColumnPlan, v: string, out: Body): void {
  if (v === '') out.push(c.open, '/>');
  else if (!NOT_PLAIN.test(v)) out.push(c.openGt, v, '</c>');
  else if (isXmlSafe(v)) out.push(c.openGt, escapeText(v), '</c>');
  else out.push(c.open, unsafe(v), '</c>');
}

function refElement(c: ColumnPlan, id: string, out: Body): void {
  const attr = c.ref!.attr;
  if (id === '') out.push(c.open, attr, '/>');
  else if (!NOT_PLAIN.test(id)) {
    out.piece(c.openGtBytes);
    out.push(id, '</c>');
  }
  else if (isXmlSafe(id)) out.push(c.openGt, escapeText(id), '</c>');
  else out.push(c.open, attr, unsafe(id), '</c>');
}

function binaryElement(open: string, v: Buffer, out: Body): void {
  if (v.length === 0) out.push(open, ' e="b"/>');
  else out.push(open, ' e="b">', v.toString('base64'), '</c>');
}

function unsafe(s: string): string {
  if (hasLoneSurrogate(s)) return ` e="w">${Buffer.from(s, 'utf16le').toString('base64')}`;
  return ` e="u">${Buffer.from(s, 'utf8').toString('base64')}`;
}

/** `<cs ...>` as encodeChangeSet begins it (the same checks, the same errors). */
export function changeSetOpen(id: string, origin: string, hlc: string, time: string): string {
  if (!NODE_ID.test(origin)) throw xmlError('cannot encode change set: origin is not a node id ([a-z0-9-]+)');
  if (!isUint64(hlc)) throw xmlError('cannot encode change set: hlc is not a decimal uint64');
  if (!COMMIT_TIME.test(time)) throw xmlError("cannot encode change set: time is not 'YYYY-MM-DDTHH:MM:SSZ'");
  let s = '<cs';
  if (id !== `${origin}:${hlc}`) s += nameAttr('id', 'I', id, 'change set id');
  return `${s} o="${origin}" h="${hlc}" t="${time}">`;
}

