// How the journal keeps a body: small ones as they are, large ones compressed
// behind a NUL byte and their length; either read back byte for byte, and a
// damaged compressed body refused with its code, never passed on.
import t from 'tap';
import { COMPRESS_FROM, bodyXml, storedBody } from '../../agent/journal/body.js';

const cs = (rows: number, text = 'note'): Buffer => Buffer.from(`<cs o="kigali" h="7" t="2026-01-02T03:04:05Z">${
  Array.from({ length: rows }, (_, i) => `<i t="obs" k="00000000-0000-4000-8000-${String(i).padStart(12, '0')}"><c n="value">${text} ${i} é</c></i>`).join('')}</cs>`);

void t.test('small bodies stay as they are, large ones are stored compressed and read back exactly', async (t) => {
  const small = cs(2);
  t.ok(small.length < COMPRESS_FROM);
  t.equal(storedBody(small), small, 'below the threshold: the same bytes');
  t.equal(bodyXml(small), small, 'and read as they are');
  for (const rows of [30, 100, 2000]) {
    const xml = cs(rows);
    const stored = storedBody(xml);
    t.equal(stored[0], 0, `${rows} rows: marked`);
    t.equal(stored.readUInt32BE(1), xml.length, `${rows} rows: its length in the header`);
    t.ok(stored.length * 5 < xml.length, `${rows} rows: ${xml.length} B stored in ${stored.length} B`);
    t.ok(bodyXml(stored).equals(xml), `${rows} rows: read back byte for byte`);
  }
  // what does not compress (already random) is kept as it is
  const random = Buffer.from(`<cs o="a" h="1" t="2026-01-02T03:04:05Z"><i t="x" k="y"><c n="b" e="b">${Buffer.from(Array.from({ length: 3000 }, () => Math.floor(Math.random() * 256))).toString('base64')}</c></i></cs>`);
  const kept = storedBody(random);
  t.ok(bodyXml(kept).equals(random), 'text that compresses little: read back exactly');
  t.ok(kept.length <= random.length, 'and never stored larger than it is');
});

void t.test('a damaged compressed body is refused with its code', async (t) => {
  const stored = storedBody(cs(100));
  const wrongLength = Buffer.from(stored);
  wrongLength.writeUInt32BE(stored.readUInt32BE(1) + 1, 1);
  const cases: [string, Buffer][] = [
    ['shorter than its header', stored.subarray(0, 3)],
    ['cut short', stored.subarray(0, stored.length - 10)],
    ['not brotli', Buffer.concat([stored.subarray(0, 5), Buffer.from('<cs>not compressed</cs>')])],
    ['a length that is not its own', wrongLength],
  ];
  for (const [what, b] of cases) t.throws(() => bodyXml(b), { code: 'SPOKESYNC_E_JOURNAL_BODY' }, what);
  const longer = Buffer.from(stored);
  longer.writeUInt32BE(10, 1);
  t.throws(() => bodyXml(longer), { code: 'SPOKESYNC_E_JOURNAL_BODY' }, 'more bytes than the header says: not read past it');
});
