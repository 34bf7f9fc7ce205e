// The one place capture reaches into @vlasky/zongji's internals. Written for
// @vlasky/zongji 0.9.0 exactly (package.json pins it); test/unit/zongji-seam
// fails when the installed zongji no longer fits. Why: reading a row's values
// straight into their final form needs zongji's per-row method, which it
// does not expose.
//
// What is relied on (all in lib/rows_event.js of 0.9.0):
// - it exports WriteRows, DeleteRows and UpdateRows; WriteRows and DeleteRows
//   inherit RowsEvent.prototype._fetchOneRow(parser), one image per call;
//   UpdateRows.prototype._fetchOneRow(parser) reads a { before, after } pair;
// - RowsEvent's constructor calls this._fetchOneRow(parser) until
//   parser.reachedPacketEnd(), after setting on the event tableMap, tableId,
//   numberOfColumns, columns_present_bitmap (and _bitmap2 for updates) and
//   _zongji (the ZongJi instance);
// - the parser's _buffer, _offset and _packetEnd (checksum already taken off).
// The methods are replaced once per process, but act only for a ZongJi
// instance given a hook (hookRows): any other decodes as zongji does.
//
// And (lib/binlog_event.js of 0.9.0): TableMap.prototype._readOptionalMetadata
// (parser, zongji) reads the per-column charsets, classing columns by
// this.columnTypes and _effectiveColumnType(i); zongji.isMariaDb.
import type ZongJi from '@vlasky/zongji';
import type { TableMapEntry } from '@vlasky/zongji';
import { RowImageOverrun, type RowReader } from './row-reader.js';

/** The zongji release this seam was written for. */
export const ZONGJI_VERSION = '0.9.0';

export type RowsKind = 'write' | 'update' | 'delete';

/** A rows event as the seam describes it to a hook. */
export interface RowsEventInfo {
  readonly kind: RowsKind;
  readonly entry: TableMapEntry | undefined;
  readonly columns: number;
  /** which columns the image (an update's before image) holds */
  readonly present: Buffer;
  /** an update's after image: which columns it holds */
  readonly present2: Buffer | undefined;
}

/** How the rows of one event are read. */
export interface EventRows {
  /** 'canonical': rows of canonical values; 'raw-insert': RawInsert images */
  readonly form: 'canonical' | 'raw-insert';
  /** One row (an image, or { before, after } for an update) at the reader's position; the reader ends past it. */
  row(r: RowReader): unknown;
}

/** What a ZongJi instance's rows are read with. */
export interface RowsHook {
  readonly reader: RowReader;
  /** How an event's rows are read; null: by zongji's own decoder. Asked once per event, at its first row. */
  rowsOf(ev: RowsEventInfo): EventRows | null;
}

/** How a delivered rows event's rows were read: by zongji ('zongji', its own values) or by a hook. */
export type RowsForm = 'zongji' | EventRows['form'];

const HOOK = Symbol('spokesync.rowsHook');
const ROWS = Symbol('spokesync.eventRows');
const INSTALLED = Symbol('spokesync.zongjiSeam');

interface SeamParser {
  _buffer: Buffer;
  _offset: number;
  _packetEnd: number;
}

interface SeamEvent {
  tableMap?: Record<number, TableMapEntry>;
  tableId: number;
  numberOfColumns: number;
  columns_present_bitmap: Buffer;
  columns_present_bitmap2?: Buffer;
  _zongji?: { [HOOK]?: RowsHook };
  [ROWS]?: EventRows | null;
}

type FetchOne = (this: SeamEvent, parser: SeamParser) => unknown;
type Proto = Record<string | symbol, unknown>;
type RowsModule = Record<string, { prototype: Proto } | undefined>;

const TYPE_BLOB = 252;
const TYPE_GEOMETRY = 255;

interface TableMapProto {
  _readOptionalMetadata?: (this: TableMapEvent, parser: unknown, zongji: { isMariaDb?: boolean } | undefined) => unknown;
  _effectiveColumnType?: (this: TableMapEvent, i: number) => number;
  [INSTALLED]?: unknown;
}
interface TableMapEvent {
  columnTypes: number[];
  columnCount: number;
  _effectiveColumnType(i: number): number;
}

/** zongji's TableMap event class (lib/binlog_event.js of the installed version). */
export async function tableMapClass(): Promise<{ prototype: TableMapProto } | undefined> {
  const main = import.meta.resolve('@vlasky/zongji');
  const mod = (await import(new URL('./lib/binlog_event.js', main).href)) as Record<string, { prototype: TableMapProto } | undefined>;
  return mod.TableMap;
}

/**
 * Has zongji read MariaDB's column charsets as the server writes them (once
 * per process). Why: MariaDB counts GEOMETRY columns among the character
 * columns its charset list covers (a spatial type is a BLOB to it) and zongji
 * does not, so every text column after a spatial one took the charset of the
 * one before it (a binary one pads CHAR values with NUL bytes). False when
 * zongji's TableMap is not shaped as expected.
 */
export async function installCharsetFix(): Promise<boolean> {
  let cls: { prototype: TableMapProto } | undefined;
  try {
    cls = await tableMapClass();
  } catch {
    return false;
  }
  const proto = cls?.prototype;
  if (!proto || typeof proto._readOptionalMetadata !== 'function' || typeof proto._effectiveColumnType !== 'function') return false;
  if (Object.hasOwn(proto, INSTALLED)) return true;
  const own = proto._readOptionalMetadata;
  proto._readOptionalMetadata = function (this: TableMapEvent, parser, zongji) {
    if (!zongji?.isMariaDb) return own.call(this, parser, zongji);
    const spatial: number[] = [];
    for (let i = 0; i < this.columnCount; i++) {
      if (this._effectiveColumnType(i) === TYPE_GEOMETRY) {
        spatial.push(i);
        this.columnTypes[i] = TYPE_BLOB;
      }
    }
    try {
      return own.call(this, parser, zongji);
    } finally {
      for (const i of spatial) this.columnTypes[i] = TYPE_GEOMETRY;
    }
  };
  Object.defineProperty(proto, INSTALLED, { value: own });
  return true;
}

/** zongji's rows event classes (lib/rows_event.js of the installed version). */
export async function rowsEventModule(): Promise<RowsModule> {
  const main = import.meta.resolve('@vlasky/zongji');
  return (await import(new URL('./lib/rows_event.js', main).href)) as RowsModule;
}

/** What the seam needs of zongji's classes and does not find there (empty: it fits). */
export function misfits(mod: RowsModule): string[] {
  const out: string[] = [];
  const write = mod.WriteRows?.prototype;
  const del = mod.DeleteRows?.prototype;
  const update = mod.UpdateRows?.prototype;
  if (!write || !del || !update) return ['lib/rows_event.js exports WriteRows, DeleteRows and UpdateRows'];
  const base = Object.getPrototypeOf(write) as Proto;
  if (Object.getPrototypeOf(del) !== base || Object.getPrototypeOf(update) !== base) out.push('WriteRows, DeleteRows and UpdateRows extend one RowsEvent');
  const single = Object.hasOwn(base, INSTALLED) ? (base[INSTALLED] as { single: unknown }).single : base._fetchOneRow;
  const pair = Object.hasOwn(base, INSTALLED) ? (base[INSTALLED] as { pair: unknown }).pair : update._fetchOneRow;
  if (typeof single !== 'function' || single.length !== 1) out.push('RowsEvent.prototype._fetchOneRow(parser)');
  if (typeof pair !== 'function' || pair.length !== 1 || !Object.hasOwn(update, '_fetchOneRow')) out.push('UpdateRows.prototype._fetchOneRow(parser), its own');
  if (Object.hasOwn(write, '_fetchOneRow') || Object.hasOwn(del, '_fetchOneRow')) out.push('WriteRows and DeleteRows inherit _fetchOneRow');
  return out;
}

/**
 * Replaces zongji's per-row methods (once per process). False, with zongji
 * left as it is, when its classes are not shaped as this seam expects.
 */
export async function installSeam(): Promise<boolean> {
  let mod: RowsModule;
  try {
    mod = await rowsEventModule();
  } catch {
    return false;
  }
  if (misfits(mod).length > 0) return false;
  const base = Object.getPrototypeOf(mod.WriteRows!.prototype) as Proto;
  if (Object.hasOwn(base, INSTALLED)) return true;
  const update = mod.UpdateRows!.prototype;
  const writeClass = mod.WriteRows as unknown as abstract new (...args: never[]) => unknown;
  const single = base._fetchOneRow as FetchOne;
  const pair = update._fetchOneRow as FetchOne;
  base._fetchOneRow = fetchWith(single, (ev) => (ev instanceof writeClass ? 'write' : 'delete'));
  update._fetchOneRow = fetchWith(pair, () => 'update');
  Object.defineProperty(base, INSTALLED, { value: { single, pair } });
  return true;
}

function fetchWith(own: FetchOne, kindOf: (ev: SeamEvent) => RowsKind): FetchOne {
  return function (this: SeamEvent, parser: SeamParser): unknown {
    let rows = this[ROWS];
    if (rows === undefined) rows = this[ROWS] = rowsFor(this, kindOf(this));
    if (rows === null) {
      let row: unknown;
      try {
        row = own.call(this, parser);
      } catch (e) {
        // zongji read past the bytes it has: the image does not fit its event
        if (e instanceof RangeError) throw new RowImageOverrun(parser._offset, 0, parser._packetEnd);
        throw e;
      }
      // (zongji's own loop would end there without a word)
      if (parser._offset > parser._packetEnd) throw new RowImageOverrun(parser._offset, 0, parser._packetEnd);
      return row;
    }
    const r = this._zongji![HOOK]!.reader.reset(parser._buffer, parser._offset, parser._packetEnd);
    const row = rows.row(r);
    parser._offset = r.pos;
    return row;
  };
}

function rowsFor(ev: SeamEvent, kind: RowsKind): EventRows | null {
  const hook = ev._zongji?.[HOOK];
  if (!hook) return null;
  return hook.rowsOf({
    kind, entry: ev.tableMap?.[ev.tableId], columns: ev.numberOfColumns,
    present: ev.columns_present_bitmap, present2: ev.columns_present_bitmap2,
  });
}

/** Has the rows of `z`'s rows events read through `hook` (once the seam is installed). */
export function hookRows(z: ZongJi, hook: RowsHook): void {
  (z as unknown as { [HOOK]?: RowsHook })[HOOK] = hook;
}

/** How the rows of a delivered rows event were read. */
export function rowsForm(ev: object): RowsForm {
  return (ev as SeamEvent)[ROWS]?.form ?? 'zongji';
}
