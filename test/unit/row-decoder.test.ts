// capture's row decoder on real zongji rows events (agent/capture/row-decoder.ts
// through zongji-seam.ts): inserts kept undecoded, updates and deletes decoded,
// and an image that runs past the end of its event is an error on every path,
// never a row list cut short (zongji's row loop would end without a word).
import t from 'tap';
import { RowDecoder } from '../../agent/capture/row-decoder.js';
import { RawInsert } from '../../agent/capture/raw-insert.js';
import { RowImageOverrun } from '../../agent/capture/row-reader.js';
import { installSeam, rowsForm } from '../../agent/capture/zongji-seam.js';
import { image, rowsEvent, zongjiStandIn } from '../helpers/rows-events.js';

void t.test('inserts are kept undecoded, updates and deletes decoded', async (t) => {
  t.ok(await installSeam(), 'the seam fits the installed zongji');
  const decoder = new RowDecoder();
  const z = zongjiStandIn(decoder);
  const ins = await rowsEvent('write', [image(7, 'two rows', 1.5), image(8, null, 2)], z);
  t.equal(rowsForm(ins), 'raw-insert');
  t.ok(ins.rows.every((r) => r instanceof RawInsert));
  t.same((ins.rows as RawInsert[]).map((r) => r.decode()), [{ id: '7', note: 'two rows', d: '1.5' }, { id: '8', note: null, d: '2' }]);
  const upd = await rowsEvent('update', [image(7, 'a', 1), image(7, 'b', 1)], z);
  t.equal(rowsForm(upd), 'canonical');
  t.same(upd.rows, [{ before: { id: '7', note: 'a', d: '1' }, after: { id: '7', note: 'b', d: '1' } }]);
  const del = await rowsEvent('delete', [image(9, 'x', 0)], z);
  t.same(del.rows, [{ id: '9', note: 'x', d: '0' }]);
  t.equal(decoder.decoded, 2 + 2 + 1, 'images taken by this decoder');
  t.equal(new RowDecoder().decoded, 0, 'a count of its own');
});

void t.test('an image whose length runs past its event is an error, on every path', async (t) => {
  await installSeam();
  const z = zongjiStandIn(new RowDecoder());
  // the second note claims 300 bytes; fewer follow
  const long = image(8, 'abc', 1, 300);
  for (const [kind, rows] of [
    ['write', [image(7, 'ok', 1), long]],
    ['update', [image(7, 'ok', 1), image(7, 'ok', 1), image(7, 'ok', 1), long]],
    ['delete', [image(7, 'ok', 1), long]],
  ] as const) {
    await t.rejects(rowsEvent(kind, rows, z), { code: 'SPOKESYNC_E_BINLOG_ROW' }, `${kind}: an error`);
    await t.rejects(rowsEvent(kind, rows, z), RowImageOverrun);
  }
  // a length prefix itself cut off
  const cut = image(7, 'abc', 1).subarray(0, 6);
  await t.rejects(rowsEvent('delete', [cut], z), { code: 'SPOKESYNC_E_BINLOG_ROW' }, 'a prefix cut off');
});

void t.test("zongji's own decoding, for a ZongJi without a hook, also stops at the event's end", async (t) => {
  await installSeam();
  const z = zongjiStandIn();
  const ok = await rowsEvent('write', [image(7, 'ok', 1)], z);
  t.equal(rowsForm(ok), 'zongji');
  t.same(ok.rows, [{ id: 7, note: 'ok', d: 1 }], "zongji's values");
  // the image's last value runs 4 bytes past the event: zongji reads it from the buffer's slack, its loop would end
  const short = image(7, 'ok', 1);
  const padded = Buffer.concat([short.subarray(0, short.length - 4)]);
  await t.rejects(rowsEvent('write', [padded], z), /./, 'an error, not a row');
});

void t.test("zongji's own decoding: an insert, update or delete image past the event's end is SPOKESYNC_E_BINLOG_ROW", async (t) => {
  await installSeam();
  const z = zongjiStandIn();
  const short = image(7, 'ok', 1);
  // the last image's last value runs 4 bytes past the event
  const cut = short.subarray(0, short.length - 4);
  for (const [kind, rows] of [
    ['write', [image(6, 'a', 1), cut]],
    ['update', [image(6, 'a', 1), image(6, 'b', 1), image(7, 'ok', 1), cut]],
    ['update', [image(6, 'a', 1), cut]],
    ['delete', [image(6, 'a', 1), cut]],
  ] as const) {
    await t.rejects(rowsEvent(kind, rows, z), { code: 'SPOKESYNC_E_BINLOG_ROW' }, `${kind} (${rows.length} images): an error that stops capture at its checkpoint`);
  }
});
