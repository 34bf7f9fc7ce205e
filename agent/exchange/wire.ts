// The batch codec as the exchange uses it: whole batches in and out of buffers,
// and trimming a journal body down to the tables a peer takes.
import type { BatchEntry, BatchHeader, ChangeSet } from '../../apply/core/model.js';
import { batchChunks, readBatch } from '../../apply/codec/batch.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import type { BudgetLease } from '../../apply/codec/decode-limits.js';
import type { TableShape } from '../../apply/codec/shape.js';
import type { Outgoing, Trim } from '../journal/reader.js';

export { batchChunks, readBatch };

export interface BatchLimits {
  readonly maxRecords?: number;
  readonly maxBytes?: number;
  readonly maxElements?: number;
  readonly lease?: BudgetLease;
}

export interface DecodedBatch {
  readonly header: BatchHeader;
  readonly entries: BatchEntry[];
  /** the sender's table shapes; empty from a sender that sends none */
  readonly shapes: TableShape[];
}

/** A batch as bytes: the header, then the stored bodies as they are. */
export async function batchBuffer(
  header: BatchHeader, entries: Iterable<Outgoing> | AsyncIterable<Outgoing>, shapes: readonly TableShape[] = []): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of batchChunks(header, entries, shapes)) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Reads a whole batch (its entries are capped, so holding them is bounded). */
export async function collectBatch(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  limits: BatchLimits = {}): Promise<DecodedBatch> {
  let header: BatchHeader | undefined;
  const entries: BatchEntry[] = [];
  const shapes: TableShape[] = [];
  for await (const ev of readBatch(source, limits)) {
    if (ev.type === 'header') header = ev.header;
    else if (ev.type === 'shape') shapes.push(ev.shape);
    else entries.push(ev.entry);
  }
  if (header === undefined) throw new SpokesyncError('SPOKESYNC_E_XML', 'the body holds no batch');
  return { header, entries, shapes };
}

/** Keeps the ops on tables the peer takes; null when none remain. */
export const trimChangeSet: Trim = (body, accepts) => {
  const cs: ChangeSet = decodeChangeSet(body);
  const ops = cs.ops.filter((op) => accepts(op.table));
  if (ops.length === 0) return null;
  return ops.length === cs.ops.length ? body : encodeChangeSet({ ...cs, ops });
};
