// Which queued items go into the next journal transaction. Pure.
import type { Assembled } from './assembler.js';
import type { BinlogPosition } from './position.js';

export interface GroupLimits {
  readonly txns: number;
  readonly rows: number;
  readonly bytes: number;
}

/** Bounds of one journal transaction. */
export const GROUP_LIMITS: GroupLimits = { txns: 1000, rows: 5000, bytes: 2 * 1024 * 1024 };

export interface Group {
  /** items taken, from the front */
  readonly count: number;
  readonly txns: Extract<Assembled, { kind: 'txn' }>[];
  readonly bytes: number;
  /** where the last item ends, and the last GTID seen in the group ('' when none) */
  readonly end: BinlogPosition;
  readonly gtid: string;
}

/**
 * Takes items from `queue[from]` on, up to the limits (at least one item), and
 * never past an item `barrier` says must be handled on its own (DDL).
 */
export function takeGroup(queue: readonly Assembled[], from: number, limits: GroupLimits, barrier: (a: Assembled) => boolean): Group {
  const txns: Extract<Assembled, { kind: 'txn' }>[] = [];
  let rows = 0;
  let bytes = 0;
  let gtid = '';
  let i = from;
  for (; i < queue.length && i - from < limits.txns; i++) {
    const item = queue[i]!;
    if (barrier(item)) break;
    if (item.kind === 'txn') {
      if (txns.length > 0 && (rows + item.rows > limits.rows || bytes + item.bytes > limits.bytes)) break;
      txns.push(item);
      rows += item.rows;
      bytes += item.bytes;
    }
    if (item.kind !== 'statement' && item.gtid !== '') gtid = item.gtid;
  }
  if (i === from) throw new Error('takeGroup: nothing to take');
  return { count: i - from, txns, bytes, end: queue[i - 1]!.end, gtid };
}
