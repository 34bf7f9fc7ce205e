// ChangeSet → the <cs> element of the wire format (see apply/FORMAT.md),
// written through the one XML writer (xml-sink.ts).
//
// Hand-written on purpose: plain writing with one test per value to decide
// whether it needs escaping or base64 is far cheaper than building a DOM
// (test/bench/codec.ts compares the two on the same records).
// The output is deterministic (same change set, same bytes): it is stored as
// the journal body and batches are built by concatenating stored bodies.
//
// The fragment carries no namespace declaration; the batch root declares the
// default namespace urn:spokesync:batch:1 for it.

import type { ChangeSet, Op, Row, Value } from '../core/model.js';
import { DIGEST, LIST_NAME, isXmlSafe, nameAttr, xmlError } from './xml-text.js';
import { XmlSink, changeSetOpen, insertHead, insertOpen, uAttr, valueElement } from './xml-sink.js';

/** Bytes of a sink's first chunk for one change set (it grows as needed). */
const SINK_CHUNK = 4096;

export function encodeChangeSet(cs: ChangeSet): string {
  return encodeChangeSetBytes(cs).toString('utf8');
}

/** The <cs> element as UTF-8 bytes (what a digest is taken of, with no string in between). */
export function encodeChangeSetBytes(cs: ChangeSet): Buffer {
  const out = new XmlSink(SINK_CHUNK);
  writeChangeSet(cs, out);
  return out.take();
}

/** Writes the <cs> element of `cs` into `out`. */
export function writeChangeSet(cs: ChangeSet, out: XmlSink): void {
  out.str(changeSetOpen(cs.id, cs.origin, cs.hlc, cs.time));
  for (const op of cs.ops) writeOp(op, out);
  out.str('</cs>');
}

function writeOp(op: Op, out: XmlSink): void {
  const table = str(op.table, 'table name');
  const id = str(op.id, 'identity');
  switch (op.kind) {
    case 'insert':
      writeInsert(op.row, id, table, out);
      return;
    case 'update': {
      const head = `<u${nameAttr('t', 'T', table, 'table name')}${nameAttr('k', 'K', id, 'identity')}`;
      const cols = Object.keys(op.set).length + Object.keys(op.old).length;
      if (cols === 0) {
        out.push(head, '/>');
        return;
      }
      out.push(head, '>');
      writeRow('c', op.set, table, out);
      writeRow('o', op.old, table, out);
      out.str('</u>');
      return;
    }
    case 'delete': {
      const head = `<d${nameAttr('t', 'T', table, 'table name')}${nameAttr('k', 'K', id, 'identity')}`;
      if (typeof op.digest !== 'string' || !DIGEST.test(op.digest)) {
        throw xmlError(`cannot encode delete of ${label(table)}: digest is not base64url`);
      }
      out.push(head, ` g="${op.digest}"/>`);
      return;
    }
    default:
      throw xmlError(`cannot encode op of kind ${label(String((op as { kind: unknown }).kind))}`);
  }
}

/**
 * An inserted row in its short form: the one column whose value is the row's
 * identity (its uuid) is named in u="col" and left out; null columns are listed
 * in z="a b c". Only names matching LIST_NAME use these forms; the rest stay
 * elements. Deterministic, and decode → encode gives the same bytes.
 */
function writeInsert(row: Row, id: string, table: string, out: XmlSink): void {
  let same: string | undefined;
  let matches = 0;
  const names = Object.keys(row);
  for (const col of names) {
    if (row[col] === id && LIST_NAME.test(col)) {
      same = col;
      matches++;
    }
  }
  // with two such columns, which one was left out would depend on column order
  if (matches !== 1) same = undefined;
  let nulls = '';
  let elements = 0;
  for (const col of names) {
    if (col === same) continue;
    if (row[col] === null && LIST_NAME.test(col)) nulls += nulls === '' ? col : ` ${col}`;
    else elements++;
  }
  if (!insertOpen(out, insertHead(table), id, null, 0, 0, same === undefined ? undefined : uAttr(same), nulls, elements === 0)) return;
  for (const col of names) {
    if (col === same) continue;
    const v = row[col]!;
    if (v === null && LIST_NAME.test(col)) continue;
    element('c', col, v, table, out);
  }
  out.str('</i>');
}

function writeRow(tag: 'c' | 'o', row: Row, table: string, out: XmlSink): void {
  for (const col of Object.keys(row)) element(tag, col, row[col]!, table, out);
}

function element(tag: string, col: string, v: Value, table: string, out: XmlSink): void {
  if (valueElement(out, tag, nameAttr('n', 'N', col, 'column name'), v)) return;
  throw xmlError(
    `cannot encode ${label(table)}.${label(col)}: a value must be a string, Buffer, Ref or null, not ${typeof v}`,
  );
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw xmlError(`cannot encode ${what}: not a string`);
  return v;
}

/** A name for an error message: names are not row values, but keep them printable and short. */
function label(name: string): string {
  return isXmlSafe(name) && name.length <= 64 ? name : '(unprintable name)';
}
