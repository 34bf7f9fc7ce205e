// Inserts written straight from row images: the <i> element that
// apply/codec/encode.ts writes for the InsertOp mapChange would build, the
// row's identity and its local id, without the canonical row, the op and its
// row object in between (capture's hot path: most captured changes are
// inserts). Both write through apply/codec/xml-sink.ts; an image not decoded
// (RawInsert) is written by raw-insert-form.ts. Anything the short way cannot
// decide (an identity or a reference not known) is left to the general path,
// which names the problem.
import type { Value } from '../../apply/core/model.js';
import { binaryElement, insertOpen, nullElement, textElement, type XmlSink } from '../../apply/codec/xml-sink.js';
import type { RowImage } from './events.js';
import { keyText, rowIdentity, type CanonRow, type RefResolver } from '../../apply/core/row-identity.js';
import type { InsertFacts, InsertPlan } from './insert-plan.js';

export { insertLookups, insertPlan, type InsertFacts, type InsertPlan } from './insert-plan.js';
export { XmlSink, changeSetOpen } from '../../apply/codec/xml-sink.js';

/**
 * Appends the <i> element of the insert of `image` (as encodeChangeSet
 * writes it) to `out`; false, with `out` as it was, when the identity or a
 * reference is not known (the general path then fails with the reason).
 * `canon`: the image holds canonical values already (row-decoder.ts).
 */
export function encodeInsert(plan: InsertPlan, image: RowImage, canon: boolean, refs: RefResolver, facts: InsertFacts, out: XmlSink): boolean {
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
  if (!insertOpen(out, plan.head, id, null, 0, 0, same >= 0 ? cols[same]!.uAttr : undefined, nulls, elements === 0)) return true;
  for (let i = 0; i < cols.length; i++) {
    const v = values[i];
    if (v === undefined || i === same) continue;
    const c = cols[i]!;
    if (isRef[i]) textElement(out, c.openRef, c.openGt, '</c>', v as string);
    else if (v === null) {
      if (!c.listName) nullElement(out, c.open);
    } else if (typeof v === 'string') textElement(out, c.open, c.openGt, '</c>', v);
    else binaryElement(out, c.open, '</c>', v as Buffer);
  }
  out.str('</i>');
  return true;
}
