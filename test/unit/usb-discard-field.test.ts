// The fields beside the batch in USB files, byte level: they ride in the gzip
// header's extra field (discard reports "SD", status reports "SR"), any gunzip
// still reads the batch, a file with nothing to say is unchanged, and the reader
// finds each field however the bytes are chunked.
import t from 'tap';
import { createGunzip, gzipSync, gunzipSync } from 'node:zlib';
import { discardField, discardSubfield, type DiscardField } from '../../agent/usb/discard-field.js';
import { ExtraReader, MAX_EXTRA, SUBFIELD_HEAD, withExtra, type Subfield } from '../../agent/usb/gzip-extra.js';
import { chunks, collect } from '../helpers/streams.js';

const plain = Buffer.from('<batch>' + 'x'.repeat(5000) + '</batch>');
const gz = gzipSync(plain);
const field: DiscardField = { recorded: ['musha:65536', 'musha:131072'] };

function reader(bytes: Buffer, size: number): ExtraReader {
  const r = new ExtraReader();
  for (let i = 0; i < bytes.length; i += size) r.push(bytes.subarray(i, i + size));
  return r;
}
const read = (bytes: Buffer, size: number): unknown => discardField(reader(bytes, size));
const withField = (gzip: AsyncIterable<Buffer>, f: DiscardField, more: Subfield[] = []): AsyncGenerator<Buffer> => {
  const sd = discardSubfield(f);
  return withExtra(gzip, [...(sd ? [sd] : []), ...more]);
};

void t.test('nothing to say: the gzip stream is unchanged', async (t) => {
  t.same(await collect(withField(chunks(gz, 3), {})), gz);
  t.equal(read(gz, 1), null);
});

void t.test('the field is read back however the stream is chunked, and gunzip ignores it', async (t) => {
  for (const size of [1, 3, 11, 64, 100_000]) {
    const out = await collect(withField(chunks(gz, size), field));
    t.equal(out[3], 0x04, `FEXTRA set (chunks of ${size})`);
    t.same(read(out, size), field, `read back (chunks of ${size})`);
    t.same(gunzipSync(out), plain, 'gunzip reads the batch as before');
    const g = createGunzip();
    const parts: Buffer[] = [];
    g.on('data', (d: Buffer) => parts.push(d));
    const done = new Promise((resolve, reject) => { g.on('end', resolve); g.on('error', reject); });
    for (let i = 0; i < out.length; i += size) g.write(out.subarray(i, i + size));
    g.end();
    await done;
    t.same(Buffer.concat(parts), plain, 'and so does a streaming gunzip');
  }
});

void t.test('other subfields are skipped; an unreadable field reads as malformed', async (t) => {
  const extra = (subs: Buffer[]): Buffer => {
    const body = Buffer.concat(subs);
    const head = Buffer.from(gz.subarray(0, 10));
    head[3] = 0x04;
    const xlen = Buffer.alloc(2);
    xlen.writeUInt16LE(body.length);
    return Buffer.concat([head, xlen, body, gz.subarray(10)]);
  };
  const sub = (id: string, data: string): Buffer => {
    const h = Buffer.alloc(4);
    h.write(id, 0, 'ascii');
    h.writeUInt16LE(Buffer.byteLength(data), 2);
    return Buffer.concat([h, Buffer.from(data)]);
  };
  t.same(read(extra([sub('AB', 'zzz'), sub('SD', '{"recorded":["a"]}')]), 5), { recorded: ['a'] });
  t.equal(read(extra([sub('AB', 'zzz')]), 5), null, 'no SD subfield: nothing');
  t.equal(read(extra([sub('SD', '{not json')]), 5), 'malformed');
  t.same(gunzipSync(extra([sub('AB', 'zzz'), sub('SD', '{not json')])), plain);
});

void t.test('a field too large for the gzip header is refused', async (t) => {
  const big: DiscardField = { recorded: Array.from({ length: 5000 }, (_, i) => `musha:${'9'.repeat(12)}${i}`) };
  t.throws(() => discardSubfield(big), { code: 'SPOKESYNC_E_USB_FILE' });
  const half = Buffer.alloc(MAX_EXTRA / 2, 0x41);
  await t.rejects(collect(withExtra(chunks(gz), [['SD', half], ['SR', half]])), { code: 'SPOKESYNC_E_USB_FILE' }, 'nor all fields together past 65,535 bytes');
  const exact = Buffer.alloc(MAX_EXTRA - 2 * SUBFIELD_HEAD - 2, 0x41);
  const full = await collect(withExtra(chunks(gz), [['SD', Buffer.from('{}')], ['SR', exact]]));
  t.same(gunzipSync(full), plain, 'up to the limit they fit');
  t.same(reader(full, 1000).get('SR'), exact);
});

void t.test('a status report beside the discard field: both read back, and a reader of one skips the other', async (t) => {
  const report = Buffer.from('eJzT0dXV1dXVAQAHXwF9'.repeat(50), 'ascii');
  for (const size of [1, 7, 100_000]) {
    const out = await collect(withField(chunks(gz, size), field, [['SR', report]]));
    const r = reader(out, size);
    t.same(r.get('SR'), report, `the report (chunks of ${size})`);
    t.same(discardField(r), field, 'the discard field');
    t.same(gunzipSync(out), plain);
  }
  const only = reader(await collect(withField(chunks(gz), {}, [['SR', report]])), 9);
  t.same(only.get('SR'), report, 'a report alone');
  t.equal(discardField(only), null, 'and no discard field');
  t.equal(reader(gz, 4).get('SR'), null, 'a file without the extra field has none');
});
