// Inserts written straight from binlog row images: the <i> element that
// apply/codec/encode.ts writes for the InsertOp mapChange would build, the
// row's identity and its local id, without the canonical row, the op and
// its row object in between (capture's hot path: most captured changes are
// inserts). The bytes are the codec's, exactly (test/unit/capture-insert-form
// compares them); anything the short way cannot decide (an identity or a
// reference not known) is left to the general path, which names the problem.
import type { Value } from '../../apply/model.js';
import { COMMIT_TIME, LIST_NAME, NODE_ID, escapeText, hasLoneSurrogate, isUint64, isXmlSafe, nameAttr, xmlError } from '../../apply/codec/xml-text.js';
import type { Catalog, TableInfo } from '../schema/catalog.js';
import type { RowImage } from './events.js';
import { identityColumns, keyText, rowIdentity, singlePk, type CanonRow, type Lookup, type RefResolver } from './identity.js';
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
  /** may be listed in z= / named in u= */
  readonly listName: boolean;
  /** the name as output text: a copy never used as a property key (see Pieces.join) */
  readonly text: string;
}

export interface InsertPlan {
  readonly table: TableInfo;
  /** `<i t="table"` */
  readonly iOpen: string;
  /** `<i t="table" k="` */
  readonly iOpenK: string;
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
      cols.push({
        name: c,
        convert: convert(c)!,
        ref: target ? { table: target.table, column: target.column, attr: nameAttr('r', 'R', target.table, 'referenced table name') } : null,
        open: `<c${nameAttr('n', 'N', c, 'column name')}`,
        openGt: `<c${nameAttr('n', 'N', c, 'column name')}${target ? nameAttr('r', 'R', target.table, 'referenced table name') : ''}>`,
        listName: LIST_NAME.test(c),
        text: Buffer.from(c, 'utf8').toString('utf8'),
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
      iOpenK: `<i${nameAttr('t', 'T', t.name, 'table name')} k="`,
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
  if (!(name in image)) return;
  const value = keyText(convert(image[name]));
  if (value !== undefined && refs.identity(table, column, value) === undefined) out.push({ table, column, value });
}

/**
 * The pieces of a change set being written, joined once at the end. One array,
 * reused: emptying an array with `length = 0` gives its storage back, and
 * growing it again for every change set was most of what encoding allocated.
 */
export class Pieces {
  private readonly a: string[] = [];
  private n = 0;

  get length(): number {
    return this.n;
  }

  /** Adds up to five pieces (fixed arguments: a rest parameter would allocate an array per call). */
  push(a: string, b?: string, c?: string, d?: string, e?: string): void {
    const arr = this.a;
    arr[this.n++] = a;
    if (b === undefined) return;
    arr[this.n++] = b;
    if (c === undefined) return;
    arr[this.n++] = c;
    if (d === undefined) return;
    arr[this.n++] = d;
    if (e !== undefined) arr[this.n++] = e;
  }

  /** Back to `n` pieces (what was added since is dropped). */
  truncate(n: number): void {
    this.n = n;
  }

  /**
   * The pieces as one string; the array is empty again (its storage kept).
   * Array.prototype.join makes one flat string, and a one-byte one when every
   * piece is one-byte and none is a name V8 internalized as a property key (it
   * then counts as two-byte: twice the memory, and a slower encoding). So
   * names go out as copies (ColumnPlan.text).
   */
  join(): string {
    const a = this.a;
    if (a.length !== this.n) a.length = this.n;
    const s = a.join('');
    this.n = 0;
    return s;
  }
}

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
 * reason). Pieces, not one string: the change set is joined once, flat.
 * `canon`: the image holds canonical values already (row-decoder.ts).
 */
export function encodeInsert(plan: InsertPlan, image: RowImage, canon: boolean, refs: RefResolver, facts: InsertFacts, out: Pieces): boolean {
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
      nulls += nulls === '' ? c.text : ` ${c.text}`;
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
  // (constant pieces joined ahead where they meet: fewer pieces, same text)
  let quote: boolean;
  if (NOT_PLAIN_ATTR.test(id)) {
    out.push(plan.iOpen, nameAttr('k', 'K', id, 'identity'));
    quote = false;
  } else {
    out.push(plan.iOpenK, id);
    quote = true;
  }
  if (same >= 0) {
    out.push(quote ? '" u="' : ' u="', cols[same]!.text);
    quote = true;
  }
  if (nulls !== '') {
    out.push(quote ? '" z="' : ' z="', nulls);
    quote = true;
  }
  facts.identity = id;
  const pk = plan.pk;
  facts.localId = pk && pk.name in image ? keyText(canon ? image[pk.name] as Value : pk.convert(image[pk.name])) : undefined;
  if (elements === 0) {
    out.push(quote ? '"/>' : '/>');
    return true;
  }
  out.push(quote ? '">' : '>');
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

/** Characters that need neither escaping nor base64: one test settles most values. */
const NOT_PLAIN = /[^\t\n\x20-\x25\x27-\x3b\x3d\x3f-\uD7FF\uE000-\uFFFD]/;
/** The same in an attribute value (where '>' needs nothing, '"', tab and LF do). */
const NOT_PLAIN_ATTR = /[^\x20\x21\x23-\x25\x27-\x3b\x3d-\uD7FF\uE000-\uFFFD]/;

function textElement(c: ColumnPlan, v: string, out: Pieces): void {
  if (v === '') out.push(c.open, '/>');
  else if (!NOT_PLAIN.test(v)) out.push(c.openGt, v, '</c>');
  else if (isXmlSafe(v)) out.push(c.openGt, escapeText(v), '</c>');
  else out.push(c.open, unsafe(v), '</c>');
}

function refElement(c: ColumnPlan, id: string, out: Pieces): void {
  const attr = c.ref!.attr;
  if (id === '') out.push(c.open, attr, '/>');
  else if (!NOT_PLAIN.test(id)) out.push(c.openGt, id, '</c>');
  else if (isXmlSafe(id)) out.push(c.openGt, escapeText(id), '</c>');
  else out.push(c.open, attr, unsafe(id), '</c>');
}

function binaryElement(open: string, v: Buffer, out: Pieces): void {
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

