// Discard reports in USB files (apply/FORMAT.md "Discard reports"). They ride
// in the gzip header's optional extra field (gzip-extra.ts, subfield "SD"),
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
import type { ExtraReader, Subfield } from './gzip-extra.js';
import { usbError } from './usb-file.js';

const ID = 'SD';
/** the JSON of one subfield must fit the extra field (at most 65535 bytes, 4 for the subfield header) */
export const MAX_FIELD = 60_000;
/** recorded ids a parent lists: the newest, far more than one child file carries */
const ACK_IDS = 500;

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

/** The subfield a file with `field` carries; null when there is nothing to say. */
export function discardSubfield(field: DiscardField): Subfield | null {
  if (field.discards === undefined && field.recorded === undefined) return null;
  const data = Buffer.from(JSON.stringify(field), 'utf8');
  if (data.length > MAX_FIELD) throw usbError('the discard field is too large for the gzip header');
  return [ID, data];
}

/** The discard field a file's header carried: null when none, 'malformed' when it is not JSON. */
export function discardField(r: ExtraReader): unknown {
  const data = r.get(ID);
  if (data === null) return null;
  try {
    return JSON.parse(data.toString('utf8')) as unknown;
  } catch {
    return 'malformed';
  }
}
