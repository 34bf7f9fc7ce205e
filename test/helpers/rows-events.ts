// Real zongji rows events made from bytes written here: zongji's own event
// classes (lib/rows_event.js) read them, through the seam when the ZongJi
// stand-in has a hook (agent/capture/zongji-seam.ts).
import type ZongJi from '@vlasky/zongji';
import type { ColumnInfo, TableInfo } from '../../apply/core/catalog.js';
import { attachPlan, type BinlogColumn } from '../../agent/capture/row-plan.js';
import { hookRows, rowsEventModule, type RowsHook } from '../../agent/capture/zongji-seam.js';

function col(name: string, dataType: string, columnType = dataType): ColumnInfo {
  return { name, ordinal: 0, dataType, columnType, nullable: true, autoIncrement: false, generated: false, binary: false, charset: 'utf8mb4' };
}
const columns = [col('id', 'int'), col('note', 'varchar', 'varchar(100)'), col('d', 'double')];
export const visit = {
  name: 'visit', engine: 'InnoDB', columns, column: new Map(columns.map((c) => [c.name, c])), primaryKey: ['id'], uniqueKeys: [], foreignKeys: [],
  refs: new Map(), identity: null, identityProblem: null, localColumns: new Set<string>(),
} as unknown as TableInfo;
const binlogColumns = [
  { name: 'id', type: 3, charset: null, metadata: {} },
  { name: 'note', type: 15, charset: 'utf8mb4', metadata: { max_length: 400 } },
  { name: 'd', type: 5, charset: null, metadata: { size: 8 } },
] as unknown as BinlogColumn[];
const columnSchemas = [
  { COLUMN_NAME: 'id', COLUMN_TYPE: 'int(11)' }, { COLUMN_NAME: 'note', COLUMN_TYPE: 'varchar(100)' }, { COLUMN_NAME: 'd', COLUMN_TYPE: 'double' },
];

/** One image of visit: id, note (null when null), d. */
export function image(id: number, note: string | null, d: number, noteLength?: number): Buffer {
  const text = note === null ? Buffer.alloc(0) : Buffer.from(note, 'utf8');
  const n = noteLength ?? text.length;
  const parts = [Buffer.from([note === null ? 0x02 : 0]), Buffer.from(Int32Array.of(id).buffer)];
  if (note !== null) parts.push(Buffer.from([n & 0xff, n >> 8]), text);
  const dd = Buffer.alloc(8);
  dd.writeDoubleLE(d);
  parts.push(dd);
  return Buffer.concat(parts);
}

export type Kind = 'write' | 'update' | 'delete';
const TYPE = { write: 0x17, update: 0x18, delete: 0x19 } as const;
const CLASS = { write: 'WriteRows', update: 'UpdateRows', delete: 'DeleteRows' } as const;

/** A ZongJi stand-in: what zongji's rows events read of their ZongJi. */
export function zongjiStandIn(hook?: RowsHook): ZongJi {
  const entry = { columns: binlogColumns.map((c) => ({ ...c })), columnSchemas, parentSchema: 'app', tableName: 'visit' };
  attachPlan(entry as never, visit);
  const z = { useChecksum: false, tableMap: { 5: entry }, connection: { config: { dateStrings: true, timezone: 'Z' } } } as unknown as ZongJi;
  if (hook) hookRows(z, hook);
  return z;
}

/** zongji's event of `kind` over `rows` (images; an update's come in before/after pairs), read by zongji's own constructor. */
export async function rowsEvent(kind: Kind, rows: readonly Buffer[], z: ZongJi): Promise<{ rows: unknown[] } & object> {
  const mod = await rowsEventModule();
  const { Parser } = (await import(new URL('./lib/reader.js', import.meta.resolve('@vlasky/zongji')).href)) as { Parser: new () => { append(b: Buffer): void } };
  const head = Buffer.alloc(8);
  head.writeUIntLE(5, 0, 6);
  const present = kind === 'update' ? [0x07, 0x07] : [0x07];
  const body = Buffer.concat([head, Buffer.from([3, ...present]), ...rows]);
  const parser = new Parser();
  parser.append(body);
  const Event = mod[CLASS[kind]] as unknown as new (p: unknown, o: unknown, z: unknown) => { rows: unknown[] };
  return new Event(parser, { eventType: TYPE[kind], timestamp: 0, nextPosition: 0, size: body.length }, z);
}
