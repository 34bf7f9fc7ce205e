// Discard reports in USB files (apply/FORMAT.md "Discard reports"). They ride
// in the gzip header's optional extra field (RFC 1952 FEXTRA, subfield "SD"),
// which every gunzip skips, so an older node reads the batch as before and
// ignores them. A child's file carries its unreported discards; a parent's file
// to a child lists the discard ids it has recorded for that child, and only
// then does the child mark them reported. The field is inside the sealed file:
// it is authenticated like the batch.
import type { Queryable } from '../../apply/core/db.js';
import type { Logger } from '../../apply/core/log.js';
import {
  markReported, recordDiscards, recordedDiscards, unreportedDiscards, validReports, type DiscardReport,
} from '../exchange/discard-report.js';
import { usbError } from './usb-file.js';

const ID = Buffer.from('SD', 'ascii');
/** the JSON of one subfield must fit the extra field (at most 65535 bytes, 4 for the subfield header) */
export const MAX_FIELD = 60_000;
/** recorded ids a parent lists: the newest, far more than one child file carries */
const ACK_IDS = 500;
const GZIP_HEAD = 10;
const FEXTRA = 0x04;

export interface DiscardField {
  /** child → parent: discards not yet acknowledged */
  readonly discards?: readonly DiscardReport[];
  /** parent → child: change ids of the discards the parent has recorded for that child */
  readonly recorded?: readonly string[];
}

/** The longest prefix of `items` whose JSON under `key` fits MAX_FIELD. */
function fitting<T>(key: string, items: readonly T[]): T[] {
  const out: T[] = [];
  let size = key.length + 8;
  for (const item of items) {
    size += Buffer.byteLength(JSON.stringify(item), 'utf8') + 1;
    if (size > MAX_FIELD) break;
    out.push(item);
  }
  return out;
}

/** What a file from this node to `peer` carries; empty when there is nothing to say. */
export async function fieldFor(db: Queryable, stateSchema: string, node: string, peer: { id: string; role: 'parent' | 'child' }): Promise<DiscardField> {
  if (peer.role === 'parent') {
    const discards = fitting('discards', await unreportedDiscards(db, stateSchema, node));
    return discards.length > 0 ? { discards } : {};
  }
  const recorded = fitting('recorded', await recordedDiscards(db, stateSchema, peer.id, ACK_IDS));
  return recorded.length > 0 ? { recorded } : {};
}

/** What an authenticated file from `peer` said: a child's reports are recorded, a parent's acknowledgements marked. */
export async function takeField(
  db: Queryable, stateSchema: string, node: string, peer: { id: string; role: 'parent' | 'child' }, field: unknown, log: Logger,
): Promise<number> {
  if (field === null) return 0;
  if (typeof field !== 'object') {
    log.warn('the discard field in the file is not readable; it is ignored (unreported discards are sent again)', { peer: peer.id });
    return 0;
  }
  if (peer.role === 'child' && 'discards' in field) {
    const reports = validReports(field.discards);
    if (reports) return recordDiscards(db, stateSchema, peer.id, reports, log);
    log.warn('the discard reports in the file are malformed; the child sends them again with its next file', { child: peer.id });
  }
  if (peer.role === 'parent' && 'recorded' in field) {
    const ids = field.recorded;
    if (Array.isArray(ids) && ids.every((v) => typeof v === 'string')) return markReported(db, stateSchema, node, ids as string[]);
    log.warn('the discard acknowledgements in the file are malformed; the discards are sent again with the next file', { parent: peer.id });
  }
  return 0;
}

/** Passes a gzip stream through, with `field` in the first member's header (unchanged when it is empty). */
export async function* withField(gzip: AsyncIterable<Buffer>, field: DiscardField): AsyncGenerator<Buffer> {
  if (field.discards === undefined && field.recorded === undefined) {
    yield* gzip;
    return;
  }
  const data = Buffer.from(JSON.stringify(field), 'utf8');
  if (data.length > MAX_FIELD) throw usbError('the discard field is too large for the gzip header');
  let head: Buffer | null = Buffer.alloc(0);
  for await (const chunk of gzip) {
    if (head === null) {
      yield chunk;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    if (head.length < GZIP_HEAD) continue;
    // zlib writes a bare header (no optional fields), so the extra field goes right after its 10 bytes
    if (head[0] !== 0x1f || head[1] !== 0x8b || head[3] !== 0) throw usbError('unexpected gzip header while writing the file');
    const sub = Buffer.alloc(4);
    ID.copy(sub, 0);
    sub.writeUInt16LE(data.length, 2);
    const xlen = Buffer.alloc(2);
    xlen.writeUInt16LE(sub.length + data.length, 0);
    const first = Buffer.from(head.subarray(0, GZIP_HEAD));
    first[3] = FEXTRA;
    yield Buffer.concat([first, xlen, sub, data, head.subarray(GZIP_HEAD)]);
    head = null;
  }
  if (head !== null) throw usbError('the gzip stream ended inside its header while writing the file');
}

/**
 * Reads the field from the start of a gzip stream, fed chunk by chunk: `push`
 * returns undefined while it needs more bytes, then the parsed field (null when there is none).
 */
export class FieldReader {
  private buf = Buffer.alloc(0);
  private result: unknown;
  private done = false;

  push(chunk: Buffer): unknown {
    if (this.done) return this.result;
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.buf.length < GZIP_HEAD) return undefined;
    if (((this.buf[3] ?? 0) & FEXTRA) === 0) return this.finish(null);
    if (this.buf.length < GZIP_HEAD + 2) return undefined;
    const xlen = this.buf.readUInt16LE(GZIP_HEAD);
    if (this.buf.length < GZIP_HEAD + 2 + xlen) return undefined;
    const extra = this.buf.subarray(GZIP_HEAD + 2, GZIP_HEAD + 2 + xlen);
    for (let at = 0; at + 4 <= extra.length;) {
      const len = extra.readUInt16LE(at + 2);
      if (extra.subarray(at, at + 2).equals(ID) && at + 4 + len <= extra.length) {
        try {
          return this.finish(JSON.parse(extra.subarray(at + 4, at + 4 + len).toString('utf8')));
        } catch {
          return this.finish('malformed');
        }
      }
      at += 4 + len;
    }
    return this.finish(null);
  }

  /** the field, once the header has been read (null when the stream ended before, or carried none) */
  get field(): unknown {
    return this.done ? this.result : null;
  }

  private finish(v: unknown): unknown {
    this.result = v;
    this.done = true;
    this.buf = Buffer.alloc(0);
    return v;
  }
}
