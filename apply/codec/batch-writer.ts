// Batches out: the XML declaration, the <batch> root with the header, one
// optional <s> table shapes, one <e seq="…"> per journal entry wrapping its stored <cs> body, then </batch>.
// Bodies are copied as they are (they were encoded by encodeChangeSet when
// journaled), so building a batch is concatenation, streamed in chunks of
// about CHUNK bytes: memory does not grow with the batch.

import type { BatchEntry, BatchHeader } from '../core/model.js';
import { INCARNATION, WIRE_NAMESPACE } from '../core/model.js';
import { encodeChangeSet } from './encode.js';
import { encodeShapes, type TableShape } from './shape.js';
import { NODE_ID, isUint64, xmlError } from './xml-text.js';

export interface BatchBody {
  /** the sender's journal sequence */
  readonly seq: string;
  /** a <cs> element as encodeChangeSet wrote it */
  readonly body: string | Buffer;
}

const CHUNK = 16 * 1024;
const CS_START = Buffer.from('<cs ');

export function batchOpenTag(h: BatchHeader): string {
  if (h.version !== 1) throw xmlError('cannot encode batch: only version 1 is supported');
  if (!NODE_ID.test(h.from) || !NODE_ID.test(h.to)) throw xmlError('cannot encode batch: from/to are not node ids');
  if (!isUint64(h.seq) || !isUint64(h.ack)) throw xmlError('cannot encode batch: seq/ack are not decimal uint64');
  for (const v of [h.inc, h.rinc]) if (v !== undefined && !INCARNATION.test(v)) throw xmlError('cannot encode batch: an incarnation is not 16 to 64 hex digits');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<batch xmlns="${WIRE_NAMESPACE}" v="1" from="${h.from}" to="${h.to}" seq="${h.seq}" ack="${h.ack}" more="${h.more ? '1' : '0'}"` +
    `${h.inc === undefined ? '' : ` inc="${h.inc}"`}${h.rinc === undefined ? '' : ` rinc="${h.rinc}"`}>`
  );
}

export async function* batchChunks(
  header: BatchHeader,
  bodies: Iterable<BatchBody> | AsyncIterable<BatchBody>,
  shapes: readonly TableShape[] = [],
): AsyncGenerator<Buffer> {
  const parts: Buffer[] = [];
  let text = batchOpenTag(header) + encodeShapes(shapes);
  let size = 0;
  let last = -1n;
  for await (const { seq, body } of bodies) {
    if (!isUint64(seq)) throw xmlError('cannot encode batch: entry seq is not a decimal uint64');
    const n = BigInt(seq);
    if (n <= last) throw xmlError('cannot encode batch: entry seqs must increase');
    last = n;
    if (typeof body === 'string') {
      if (!body.startsWith('<cs ')) throw xmlError('cannot encode batch: a body is not a <cs> element');
      text += `<e seq="${seq}">${body}</e>`;
      size += body.length;
    } else {
      if (body.length < 4 || !body.subarray(0, 4).equals(CS_START)) {
        throw xmlError('cannot encode batch: a body is not a <cs> element');
      }
      parts.push(Buffer.from(`${text}<e seq="${seq}">`), body);
      text = '</e>';
      size += body.length;
    }
    size += 20;
    if (size >= CHUNK) {
      parts.push(Buffer.from(text));
      yield parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      parts.length = 0;
      text = '';
      size = 0;
    }
  }
  parts.push(Buffer.from(text + '</batch>'));
  yield parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** A whole batch in memory (tests, small replies). Streams should use batchChunks. */
export async function encodeBatch(header: BatchHeader, entries: readonly BatchEntry[], shapes: readonly TableShape[] = []): Promise<Buffer> {
  const out: Buffer[] = [];
  const bodies = entries.map((e) => ({ seq: e.seq, body: encodeChangeSet(e.cs) }));
  for await (const chunk of batchChunks(header, bodies, shapes)) out.push(chunk);
  return Buffer.concat(out);
}
