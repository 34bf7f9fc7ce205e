// How inserts into one table are written the short way (insert-form.ts,
// raw-insert-form.ts): the pieces of its <i> element made once per table, the
// columns its identity needs, and the referenced rows it must look up.
import type { Value } from '../../apply/core/model.js';
import { LIST_NAME, nameAttr } from '../../apply/codec/xml-text.js';
import { insertHead, uAttr, utf8, type InsertHead, type UAttr } from '../../apply/codec/xml-sink.js';
import type { Catalog, TableInfo } from '../../apply/core/catalog.js';
import type { RowImage } from './events.js';
import { identityColumns, keyText, singlePk, type Lookup, type RefResolver } from '../../apply/core/row-identity.js';
import { converters, travelColumns } from './mapper.js';

export interface ColumnPlan {
  readonly name: string;
  readonly convert: (v: unknown) => Value;
  /** a foreign key to a table with an identity: travels as a reference */
  readonly ref: { readonly table: string; readonly column: string; readonly attr: string } | null;
  /** `<c n="name"` */
  readonly open: string;
  /** open, and for a reference ` r="table"` */
  readonly openRef: string;
  /** `<c n="name">`, and for a reference `<c n="name" r="table">` (fewer pieces to join) */
  readonly openGt: string;
  /** openGt as UTF-8 */
  readonly openGtBytes: Uint8Array;
  /** `</c>` and openGt, as UTF-8 */
  readonly closeOpenGtBytes: Uint8Array;
  /** may be listed in z= / named in u= */
  readonly listName: boolean;
  readonly uAttr: UAttr;
}

export interface InsertPlan {
  readonly table: TableInfo;
  readonly head: InsertHead;
  readonly cols: readonly ColumnPlan[];
  /** the columns the identity is computed from */
  readonly idCols: readonly { readonly name: string; readonly convert: (v: unknown) => Value }[];
  /** references the identity needs (shared key, natural key parts) */
  readonly idRefs: readonly { readonly name: string; readonly convert: (v: unknown) => Value; readonly table: string; readonly column: string }[];
  readonly pk: { readonly name: string; readonly convert: (v: unknown) => Value } | undefined;
  /** scratch space for one row's values: the value, or the referenced identity */
  readonly values: (Value | undefined)[];
  readonly isRef: boolean[];
  /** the catalogue's referenced identities as UTF-8 (raw-insert-form.ts) */
  readonly refBytes: RefBytes;
}

/**
 * Identities of referenced rows as UTF-8, by identity: references repeat (the
 * same concept, person, encounter, user in row after row), and copying bytes
 * is cheaper than converting text. Emptied when full.
 */
export class RefBytes {
  private readonly known = new Map<string, Uint8Array>();

  get(id: string): Uint8Array | undefined {
    return this.known.get(id);
  }

  set(id: string, bytes: Uint8Array): void {
    if (this.known.size >= REF_BYTES_MAX) this.known.clear();
    this.known.set(id, bytes);
  }
}

const REF_BYTES_MAX = 4096;

/** The plans of one catalogue (a cache: a catalogue is never changed, a new one replaces it). */
interface CatalogPlans {
  readonly byTable: Map<string, InsertPlan | null>;
  readonly refBytes: RefBytes;
}

const plans = new WeakMap<Catalog, CatalogPlans>();

/** The plan for inserts into `table`, or null when its inserts take the general path (no identity rule). */
export function insertPlan(catalog: Catalog, table: string): InsertPlan | null {
  let mine = plans.get(catalog);
  if (!mine) plans.set(catalog, (mine = { byTable: new Map(), refBytes: new RefBytes() }));
  let plan = mine.byTable.get(table);
  if (plan === undefined) {
    plan = makePlan(catalog, table, mine.refBytes);
    mine.byTable.set(table, plan);
  }
  return plan;
}

function makePlan(catalog: Catalog, name: string, refBytes: RefBytes): InsertPlan | null {
  const t = catalog.tables.get(name);
  if (!t || !t.identity) return null;
  const conv = converters(t);
  const convert = (c: string): ((v: unknown) => Value) | undefined => conv.get(c);
  try {
    const cols: ColumnPlan[] = [];
    for (const c of travelColumns(t)) {
      const ref = t.refs.get(c);
      const target = ref && catalog.tables.get(ref.table)?.identity ? ref : undefined;
      const attr = target ? nameAttr('r', 'R', target.table, 'referenced table name') : '';
      const open = `<c${nameAttr('n', 'N', c, 'column name')}`;
      const openGt = `${open}${attr}>`;
      cols.push({
        name: c,
        convert: convert(c)!,
        ref: target ? { table: target.table, column: target.column, attr } : null,
        open,
        openRef: open + attr,
        openGt,
        openGtBytes: utf8(openGt),
        closeOpenGtBytes: utf8(`</c>${openGt}`),
        listName: LIST_NAME.test(c),
        uAttr: uAttr(c),
      });
    }
    const rule = t.identity;
    const idRefs = rule.kind === 'shared' ? [{ name: rule.column, convert: convert(rule.column)!, table: rule.refTable, column: rule.refColumn }]
      : rule.kind === 'natural' ? rule.columns.filter((c) => t.refs.has(c)).map((c) => ({ name: c, convert: convert(c)!, ...t.refs.get(c)! }))
      : [];
    const pk = singlePk(t);
    return {
      table: t,
      head: insertHead(t.name),
      cols,
      idCols: identityColumns(t).map((c) => ({ name: c, convert: convert(c)! })),
      idRefs,
      pk: pk === undefined ? undefined : { name: pk, convert: convert(pk)! },
      values: new Array<Value | undefined>(cols.length),
      isRef: new Array<boolean>(cols.length).fill(false),
      refBytes,
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

export function wantKey(table: string, column: string, value: string | undefined, refs: RefResolver, out: Lookup[]): void {
  if (value !== undefined && refs.identity(table, column, value) === undefined) out.push({ table, column, value });
}

/** What encodeInsert found out about the row besides its element. */
export interface InsertFacts {
  identity: string;
  /** the primary key's text when the key is one column */
  localId: string | undefined;
}
