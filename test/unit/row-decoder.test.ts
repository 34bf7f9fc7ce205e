// The row decoder's hold on zongji's rows events (agent/capture/row-decoder.ts):
// an insert's image is kept undecoded and the parser moves past it; an image
// whose lengths run past the end of its event is an error, never a parser
// position lost (which would end zongji's row loop without a word).
import t from 'tap';
import { RawImage, attachPlan, installRowDecoder, type BinlogColumn } from '../../agent/capture/row-decoder.js';
import type { ColumnInfo, TableInfo } from '../../apply/core/catalog.js';

function col(name: string, dataType: string): ColumnInfo {
  return { name, ordinal: 0, dataType, columnType: dataType, nullable: true, autoIncrement: false, generated: false, binary: false, charset: 'utf8mb4' };
}
const columns = [col('id', 'int'), col('note', 'varchar')];
const table = {
  name: 'visit', engine: 'InnoDB', columns, column: new Map(columns.map((c) => [c.name, c])), primaryKey: ['id'], uniqueKeys: [], foreignKeys: [],
  refs: new Map(), identity: null, identityProblem: null, localColumns: new Set<string>(),
} as unknown as TableInfo;
const binlogColumns: BinlogColumn[] = [
  { name: 'id', type: 3, charset: null, metadata: {} } as unknown as BinlogColumn,
  { name: 'note', type: 15, charset: 'utf8mb4', metadata: { max_length: 400 } } as unknown as BinlogColumn,
];

type FetchOne = (this: unknown, parser: { _buffer: Buffer; _offset: number; _packetEnd: number }) => unknown;

async function writeRowsFetch(): Promise<{ proto: object; fetch: FetchOne }> {
  const main = import.meta.resolve('@vlasky/zongji');
  const mod = (await import(new URL('./lib/rows_event.js', main).href)) as { WriteRows: { prototype: { _fetchOneRow: FetchOne } } };
  return { proto: mod.WriteRows.prototype, fetch: mod.WriteRows.prototype._fetchOneRow };
}

function insertEvent(proto: object): unknown {
  const entry = { columns: binlogColumns, parentSchema: 'app', tableName: 'visit' };
  attachPlan(entry as never, table);
  return Object.assign(Object.create(proto) as object, {
    tableMap: { 5: entry }, tableId: 5, numberOfColumns: 2, columns_present_bitmap: Buffer.from([0x03]),
  });
}

void t.test('an insert image is kept undecoded and the parser moves past it', async (t) => {
  t.ok(await installRowDecoder(), 'the decoder takes over zongji rows events');
  const { proto, fetch } = await writeRowsFetch();
  const note = Buffer.from('two rows');
  // (the note's length prefix is two bytes: max_length 400)
  const row = (id: number): Buffer => Buffer.concat([Buffer.from([0]), Buffer.from(Int32Array.of(id).buffer), Buffer.from([note.length, 0]), note]);
  const bytes = Buffer.concat([row(7), row(8)]);
  const parser = { _buffer: bytes, _offset: 0, _packetEnd: bytes.length };
  const ev = insertEvent(proto);
  const first = fetch.call(ev, parser);
  t.ok(first instanceof RawImage);
  t.equal(parser._offset, bytes.length / 2, 'past the first image');
  const second = fetch.call(ev, parser) as RawImage;
  t.equal(parser._offset, bytes.length, 'past the second');
  t.same(second.decode(), { id: '8', note: 'two rows' });
});

void t.test('an image whose length runs past its event is an error', async (t) => {
  await installRowDecoder();
  const { proto, fetch } = await writeRowsFetch();
  // the note claims 300 bytes; 3 follow
  const bytes = Buffer.concat([Buffer.from([0]), Buffer.from(Int32Array.of(7).buffer), Buffer.from([0x2c, 0x01]), Buffer.from('abc')]);
  const parser = { _buffer: bytes, _offset: 0, _packetEnd: bytes.length };
  t.throws(() => fetch.call(insertEvent(proto), parser), RangeError);
  // a length prefix itself cut off: read past the end as undefined, the position NaN
  const cut = Buffer.concat([Buffer.from([0]), Buffer.from(Int32Array.of(7).buffer), Buffer.from([0x05])]);
  t.throws(() => fetch.call(insertEvent(proto), { _buffer: cut, _offset: 0, _packetEnd: cut.length }), RangeError);
});
