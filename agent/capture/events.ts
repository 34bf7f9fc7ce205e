// The small event vocabulary capture works with. The binlog source adapter
// (source.ts) turns zongji's events into these; everything after it (the
// transaction assembler, the mapper) only knows this file.
import type { BinlogPosition } from './position.js';

/** A row image as decoded from the binlog: column name → decoder value. */
export type RowImage = Readonly<Record<string, unknown>>;

export type RowChange =
  | { readonly op: 'insert'; readonly schema: string; readonly table: string; readonly after: RowImage }
  | { readonly op: 'update'; readonly schema: string; readonly table: string; readonly before: RowImage; readonly after: RowImage }
  | { readonly op: 'delete'; readonly schema: string; readonly table: string; readonly before: RowImage };

export type SourceEvent =
  /** a transaction (or standalone event group) starts */
  | { readonly kind: 'begin'; readonly gtid: string; readonly timestamp: number }
  /** row changes of one table, in binlog order */
  | { readonly kind: 'rows'; readonly changes: readonly RowChange[]; readonly bytes: number; readonly timestamp: number }
  /** the open transaction committed; `end` is the position just after it */
  | { readonly kind: 'commit'; readonly end: BinlogPosition; readonly timestamp: number }
  /** the open transaction rolled back (non-transactional groups can end so) */
  | { readonly kind: 'rollback'; readonly end: BinlogPosition }
  /** a statement logged as text (DDL and the like); it ends any open group */
  | { readonly kind: 'statement'; readonly schema: string; readonly sql: string; readonly end: BinlogPosition; readonly timestamp: number }
  /** any other event outside a transaction that moved the position (rotation, heartbeats, markers) */
  | { readonly kind: 'position'; readonly end: BinlogPosition };

/** Where events go. The source calls these synchronously, in binlog order. */
export interface SourceHandler {
  event(ev: SourceEvent): void;
  error(err: Error): void;
  /** something in the binlog that capture passes over (logged, never silent) */
  warn(message: string): void;
}
