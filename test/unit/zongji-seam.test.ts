// The seam to zongji's internals (agent/capture/zongji-seam.ts) against the
// installed @vlasky/zongji: the classes, methods and fields it relies on are
// there, and an event read through the seam gives what zongji's own decoding
// gives (converted to canonical values as capture does). Fails loudly when
// zongji changes under it.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { RowDecoder } from '../../agent/capture/row-decoder.js';
import { RawInsert } from '../../agent/capture/raw-insert.js';
import { canonicalImage } from '../../agent/capture/mapper.js';
import { ZONGJI_VERSION, installSeam, misfits, rowsEventModule, rowsForm } from '../../agent/capture/zongji-seam.js';
import type { RowImage } from '../../agent/capture/events.js';
import { image, rowsEvent, visit, zongjiStandIn, type Kind } from '../helpers/rows-events.js';

void t.test('the installed zongji is the version the seam was written for', async (t) => {
  const pkg = new URL('./package.json', import.meta.resolve('@vlasky/zongji'));
  const { version } = JSON.parse(await readFile(fileURLToPath(pkg), 'utf8')) as { version: string };
  t.equal(version, ZONGJI_VERSION, 'read zongji-seam.ts against the new version, then change ZONGJI_VERSION');
});

void t.test("zongji's classes have what the seam relies on", async (t) => {
  t.same(misfits(await rowsEventModule()), [], 'nothing missing');
  t.ok(await installSeam());
  t.same(misfits(await rowsEventModule()), [], 'nothing missing once installed');
  const ev = await rowsEvent('update', [image(1, 'a', 1), image(1, 'b', 2)], zongjiStandIn(new RowDecoder())) as Record<string, unknown>;
  for (const field of ['tableMap', 'tableId', 'numberOfColumns', 'columns_present_bitmap', 'columns_present_bitmap2', '_zongji']) {
    t.ok(field in ev, `a rows event has ${field}`);
  }
  t.equal(ev.tableId, 5);
  t.equal(ev.numberOfColumns, 3);
});

void t.test("rows read through the seam equal zongji's own, as capture converts them", async (t) => {
  await installSeam();
  const images = [image(7, 'été', 1.25), image(-3, null, -0), image(2147483647, '', 1e300), image(0, 'x'.repeat(90), Number.MIN_VALUE)];
  const canon = (row: unknown): RowImage => (row instanceof RawInsert ? row.decode() : row as RowImage);
  for (const kind of ['write', 'update', 'delete'] as Kind[]) {
    const seam = await rowsEvent(kind, images, zongjiStandIn(new RowDecoder()));
    const own = await rowsEvent(kind, images, zongjiStandIn());
    t.not(rowsForm(seam), 'zongji', `${kind}: read by the seam`);
    t.equal(rowsForm(own), 'zongji', `${kind}: read by zongji`);
    const flat = (rows: unknown[]): unknown[] => rows.flatMap((r) => (kind === 'update' ? [(r as { before: unknown }).before, (r as { after: unknown }).after] : [r]));
    t.same(flat(seam.rows).map(canon), flat(own.rows).map((r) => canonicalImage(visit, r as RowImage)), `${kind}: the same values`);
  }
});
