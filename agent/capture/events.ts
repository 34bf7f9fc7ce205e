// The small event vocabulary capture works with. The binlog source adapter
// (binlog-source.ts) turns zongji's events into these; everything after it (the
// transaction assembler, the mapper) only knows this file.
import type { BinlogPosition } from './position.js';
import type { RawInsert } from './raw-insert.js';

/** A row image as decoded from the binlog: column name → decoder value (or canonical value, see RowChange). */
export type RowImage = Readonly<Record<string, unknown>>;

/**
 * `canon`: the images hold canonical values already (row-decoder.ts), not the
 * decoder's. An insert comes with its image (`after`) or, not decoded yet, as
 * a RawInsert (`raw`).
 */
export type RowChange =
  | { readonly op: 'insert'; readonly schema: string; readonly table: string; readonly after: RowImage; readonly canon?: boolean; readonly raw?: undefined }
  | RawInsertChange
  | { readonly op: 'update'; readonly schema: string; readonly table: string; readonly before: RowImage; readonly after: RowImage; readonly canon?: boolean }
  | { readonly op: 'delete'; readonly schema: string; readonly table: string; readonly before: RowImage; readonly canon?: boolean };

/** An insert whose image is not decoded yet (row-decoder.ts): decodeImages or raw-insert-form.ts read it. */
export interface RawInsertChange {
  readonly op: 'insert';
  readonly schema: string;
  readonly table: string;
  readonly raw: RawInsert;
  readonly after?: undefined;
  readonly canon: true;
}

export type SourceEvent =
  /** a transaction (or standalone event group) starts */
  | { readonly kind: 'begin'; readonly gtid: string; readonly timestamp: number }
  /** row changes of one table, in binlog order */
  | { readonly kind: 'rows'; readonly changes: readonly RowChange[]; readonly bytes: number; readonly timestamp: number }
  /** the open transaction committed; `end` is the position just after it */
  | { readonly kind: 'commit'; readonly end: BinlogPosition; readonly timestamp: number }
  /** the open transaction rolled back (non-transactional groups can end so) */
  | { readonly kind: 'rollback'; readonly end: BinlogPosition }
  /**
   * a savepoint inside the open transaction: set, rolled back to (the row events
   * logged since it did not commit), or released. Names compare case-insensitively.
   */
  | { readonly kind: 'savepoint'; readonly action: 'set' | 'rollback' | 'release'; readonly name: string }
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

/** What a query event's text means to capture. Pure. */
export type QueryMeaning =
  | { readonly kind: 'begin' | 'commit' | 'rollback' }
  | { readonly kind: 'savepoint'; readonly action: 'set' | 'rollback' | 'release'; readonly name: string }
  | { readonly kind: 'statement' };

const NAME = '(`(?:[^`]|``)*`|[^\\s;]+)';
const SAVEPOINT = new RegExp(`^SAVEPOINT\\s+${NAME}\\s*;?$`, 'is');
const ROLLBACK_TO = new RegExp(`^ROLLBACK(?:\\s+WORK)?\\s+TO\\s+(?:SAVEPOINT\\s+)?${NAME}\\s*;?$`, 'is');
const FULL_ROLLBACK = /^ROLLBACK(?:\s+WORK)?(?:\s+AND\s+(?:NO\s+)?CHAIN)?(?:\s+(?:NO\s+)?RELEASE)?\s*;?$/i;
const RELEASE = new RegExp(`^RELEASE\\s+SAVEPOINT\\s+${NAME}\\s*;?$`, 'is');

/**
 * BEGIN / COMMIT / ROLLBACK end or start a transaction; SAVEPOINT x, ROLLBACK
 * TO [SAVEPOINT] x and RELEASE SAVEPOINT x happen inside one (MariaDB logs
 * them when the transaction also changed a non-transactional table); anything
 * else is a statement.
 */
export function queryMeaning(sql: string): QueryMeaning {
  const text = sql.trim();
  for (const [re, action] of [[SAVEPOINT, 'set'], [ROLLBACK_TO, 'rollback'], [RELEASE, 'release']] as const) {
    const m = re.exec(text);
    if (m) return { kind: 'savepoint', action, name: savepointName(m[1]!) };
  }
  const word = /^(BEGIN|COMMIT)(?![\w$])/i.exec(text)?.[1]?.toUpperCase();
  if (word === 'BEGIN') return { kind: 'begin' };
  if (word === 'COMMIT') return { kind: 'commit' };
  // a whole rollback only in its own words: anything else that starts so is not taken for one
  if (FULL_ROLLBACK.test(text)) return { kind: 'rollback' };
  return { kind: 'statement' };
}

/** `a``b` → a`b, in lower case (the server compares savepoint names case-insensitively). */
function savepointName(raw: string): string {
  const name = raw.startsWith('`') ? raw.slice(1, -1).replace(/``/g, '`') : raw;
  return name.toLowerCase();
}
