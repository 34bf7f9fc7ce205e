// Batches in: a streaming reader. Chunks are pushed into saxes as they arrive
// and each change set is yielded as soon as its </e> closes, so memory holds
// one chunk and one change set, never the document. The header comes first.
// Limits count records (<e> elements), elements of any kind and bytes of XML
// (after decompression); exceeding one stops reading at once with
// SPOKESYNC_E_BATCH_TOO_LARGE. decode-limits.ts bounds attributes, tags, columns and names.

import { SpokesyncError } from '../core/errors.js';
import { INCARNATION, type BatchEntry, type BatchHeader, type ChangeSet } from '../core/model.js';
import { ChangeSetBuilder, badAttr, checkNamespace, own, short, unknownAttr, type Attrs } from './cs-builder.js';
import { tooMany, type BudgetLease } from './decode-limits.js';
import { createParser } from './sax.js';
import { ShapeBuilder, type TableShape } from './shape.js';
import { NODE_ID, isUint64, xmlError } from './xml-text.js';

export type BatchItem =
  | { type: 'header'; header: BatchHeader }
  | { type: 'shape'; shape: TableShape }
  | { type: 'entry'; entry: BatchEntry };

export interface BatchLimits {
  /** most <e> records accepted */
  maxRecords?: number;
  /** most bytes of XML accepted (counted as UTF-8) */
  maxBytes?: number;
  /** most elements of any kind accepted (none by default: a USB file streams any number of change sets; receivers pass listen.maxElements) */
  maxElements?: number;
  /** a share of a budget for all requests read at once: every element and byte is counted there too */
  lease?: BudgetLease;
}

/** Parser events → batch items, with the <batch> and <e> levels checked here and <cs> delegated. */
class BatchBuilder {
  readonly out: BatchItem[] = [];
  records = 0;
  elements = 0;
  done = false;
  private level = 0; // 0 outside, 1 in <batch>, 2 in <e> or <s>
  private inShape = false;
  private shapeDepth = 0;
  private sawEntry = false;
  private readonly shapes = new ShapeBuilder();
  private seq: string | undefined;
  private last = -1n;
  private cs: ChangeSet | undefined;
  private readonly b = new ChangeSetBuilder();

  constructor(private readonly maxRecords: number, private readonly maxElements: number, private readonly lease: BudgetLease | undefined) {}

  open(name: string, a: Attrs): void {
    if (++this.elements > this.maxElements) throw tooMany('elements', this.maxElements);
    this.lease?.take(1, 0);
    if (this.level === 2 && this.inShape) {
      if (this.shapeDepth > 0) throw xmlError('<f> holds nothing');
      this.shapes.openColumn(name, a);
      this.shapeDepth++;
      return;
    }
    if (this.level === 2) {
      if (this.cs !== undefined) throw xmlError('an <e> holds exactly one <cs>');
      this.b.open(name, a);
      return;
    }
    if (this.level === 0) {
      if (this.done) throw xmlError('content after </batch>');
      if (name !== 'batch') throw xmlError(`expected <batch>, found <${short(name)}>`);
      this.out.push({ type: 'header', header: readHeader(a) });
    } else if (name === 's') {
      if (this.sawEntry) throw xmlError('<s> comes before the first <e>');
      this.shapes.openTable(a);
      this.inShape = true;
    } else {
      if (name !== 'e') throw xmlError(`unknown element <${short(name)}> in <batch>`);
      this.sawEntry = true;
      this.openEntry(a);
    }
    this.level++;
  }

  text(t: string): void {
    if (this.level === 2 && this.inShape) {
      if (!/^[ \t\n\r]*$/.test(t)) throw xmlError('unexpected text in <s>');
    } else if (this.level === 2) this.b.text(t);
    else if (!/^[ \t\n\r]*$/.test(t)) throw xmlError('unexpected text in <batch>');
  }

  close(): void {
    if (this.level === 2 && this.inShape) {
      if (this.shapeDepth > 0) {
        this.shapeDepth--;
        return;
      }
      this.out.push({ type: 'shape', shape: this.shapes.closeTable() });
      this.inShape = false;
      this.level--;
      return;
    }
    if (this.level === 2 && this.b.depth > 0) {
      const cs = this.b.close();
      if (cs !== undefined) this.cs = cs;
      return;
    }
    if (this.level === 2) {
      if (this.cs === undefined) throw xmlError('an <e> holds exactly one <cs>');
      this.out.push({ type: 'entry', entry: { seq: this.seq!, cs: this.cs } });
      this.cs = undefined;
    } else if (this.level === 1) {
      this.done = true;
    }
    this.level--;
  }

  private openEntry(a: Attrs): void {
    let seq: string | undefined;
    for (const k in a) {
      if (k === 'seq') seq = a[k];
      else if (k === 'xmlns') checkNamespace(a[k]!);
      else throw unknownAttr(k, 'e');
    }
    if (seq === undefined || !isUint64(seq)) throw badAttr('seq', 'e', 'a decimal uint64');
    const n = BigInt(seq);
    if (n <= this.last) throw xmlError('entry seq numbers must increase within a batch');
    this.last = n;
    if (++this.records > this.maxRecords) {
      throw new SpokesyncError('SPOKESYNC_E_BATCH_TOO_LARGE', `batch holds more than ${this.maxRecords} records`);
    }
    this.seq = own(seq);
  }
}

function readHeader(a: Attrs): BatchHeader {
  let ns: string | undefined;
  const h: Record<string, string> = {};
  for (const k in a) {
    switch (k) {
      case 'xmlns': ns = a[k]; break;
      case 'v': case 'from': case 'to': case 'seq': case 'ack': case 'more': case 'inc': case 'rinc': h[k] = own(a[k]!); break;
      default: throw unknownAttr(k, 'batch');
    }
  }
  if (ns === undefined) throw xmlError('<batch> must declare the namespace urn:spokesync:batch:1');
  checkNamespace(ns);
  if (h.v !== '1') throw badAttr('v', 'batch', '1 (the only version this node reads)');
  if (h.from === undefined || !NODE_ID.test(h.from)) throw badAttr('from', 'batch', 'a node id');
  if (h.to === undefined || !NODE_ID.test(h.to)) throw badAttr('to', 'batch', 'a node id');
  if (h.seq === undefined || !isUint64(h.seq)) throw badAttr('seq', 'batch', 'a decimal uint64');
  if (h.ack === undefined || !isUint64(h.ack)) throw badAttr('ack', 'batch', 'a decimal uint64');
  const more = h.more;
  if (more !== '1' && more !== '0' && more !== 'true' && more !== 'false') throw badAttr('more', 'batch', 'a boolean');
  for (const k of ['inc', 'rinc'] as const) if (h[k] !== undefined && !INCARNATION.test(h[k])) throw badAttr(k, 'batch', '16 to 64 lower-case hex digits');
  return {
    version: 1, from: h.from, to: h.to, seq: h.seq, ack: h.ack, more: more === '1' || more === 'true',
    ...(h.inc === undefined ? {} : { inc: h.inc }), ...(h.rinc === undefined ? {} : { rinc: h.rinc }),
  };
}

const PIECE = 64 * 1024;

/** A large chunk (a whole inflated body) in pieces: the text of one piece at a time is in the heap. */
function* pieces(chunk: Buffer | string): Generator<Buffer | string> {
  if (typeof chunk !== 'string') {
    for (let i = 0; i < chunk.length; i += PIECE) yield chunk.length <= PIECE ? chunk : chunk.subarray(i, i + PIECE);
    return;
  }
  for (let i = 0; i < chunk.length;) {
    let end = Math.min(chunk.length, i + PIECE);
    // never between the halves of a surrogate pair
    if (end < chunk.length && /[\uD800-\uDBFF]/.test(chunk[end - 1]!)) end--;
    yield end - i === chunk.length ? chunk : chunk.slice(i, end);
    i = end;
  }
}

export async function* readBatch(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  limits: BatchLimits = {},
): AsyncGenerator<BatchItem> {
  const maxBytes = limits.maxBytes ?? Infinity;
  const bb = new BatchBuilder(limits.maxRecords ?? Infinity, limits.maxElements ?? Infinity, limits.lease);
  const parser = createParser(bb, false);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let bytes = 0;
  let pending = false; // bytes of an unfinished UTF-8 sequence may sit in the decoder
  const decode = (b: Uint8Array | undefined, stream: boolean): string => {
    try {
      return b === undefined ? utf8.decode() : utf8.decode(b, { stream });
    } catch (e) {
      throw xmlError('batch is not valid UTF-8', e);
    }
  };
  for await (const whole of source) for (const chunk of pieces(whole)) {
    const n = typeof chunk === 'string' ? Buffer.byteLength(chunk, 'utf8') : chunk.length;
    bytes += n;
    if (bytes > maxBytes) {
      throw new SpokesyncError('SPOKESYNC_E_BATCH_TOO_LARGE', `batch is larger than ${maxBytes} bytes`);
    }
    limits.lease?.take(0, n);
    let text: string;
    if (typeof chunk === 'string') {
      text = pending ? decode(undefined, false) + chunk : chunk;
      pending = false;
    } else {
      text = decode(chunk, true);
      pending = true;
    }
    parser.write(text);
    if (bb.out.length > 0) {
      yield* bb.out;
      bb.out.length = 0;
    }
  }
  if (pending) parser.write(decode(undefined, false));
  parser.close();
  if (!bb.done) throw xmlError('batch ended before </batch>');
  yield* bb.out;
}

/** A whole batch in memory (tests, small bodies). Streams should use readBatch. */
export async function decodeBatch(
  source: Buffer | string,
  limits: BatchLimits = {},
): Promise<{ header: BatchHeader; entries: BatchEntry[]; shapes?: TableShape[] }> {
  let header: BatchHeader | undefined;
  const entries: BatchEntry[] = [];
  const shapes: TableShape[] = [];
  for await (const item of readBatch([source], limits)) {
    if (item.type === 'header') header = item.header;
    else if (item.type === 'shape') shapes.push(item.shape);
    else entries.push(item.entry);
  }
  if (header === undefined) throw xmlError('batch has no <batch> element');
  return { header, entries, ...(shapes.length > 0 ? { shapes } : {}) };
}
