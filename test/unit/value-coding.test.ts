// The value layer of spokesync-vbr: any bytes survive pack → unpack unchanged
// (random mixes of batch fragments, markers and noise, and real batches);
// repeated column values and growing numbers are coded; hostile packed input
// is refused with a code; a 1 MiB batch, and 1 MiB of hostile input, are fast.
import t from 'tap';
import fc from 'fast-check';
import { packValues, unpackValues } from '../../agent/exchange/value-coding.js';
import { packUuids, unpackUuids } from '../../agent/exchange/uuid-coding.js';
import { encodeBatch } from '../../apply/codec/batch-writer.js';
import { isSpokesyncError, type ErrorCode } from '../../apply/core/errors.js';
import { prng, registration } from './codec-fixtures.js';

const MAX = 64 * 1024 * 1024;
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const roundTrip = (b: Buffer): Buffer => unpackValues(packValues(b), MAX);

async function registrations(n: number, seed: number): Promise<Buffer> {
  const rnd = prng(seed);
  const entries = Array.from({ length: n }, (_, i) => ({ seq: String(i + 1), cs: registration(i, rnd) }));
  return encodeBatch({ version: 1, from: 'rwinkwavu', to: 'kigali', seq: '1', ack: '0', more: false }, entries);
}

function codeOf(f: () => unknown): ErrorCode | 'none' | 'other' {
  try {
    f();
    return 'none';
  } catch (e) {
    return isSpokesyncError(e) ? e.code : 'other';
  }
}

const fragment = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('<c n="a">', '<c n="b" r="users">', '<c n="a"', '<c n="', '</c>', '</c', '<e seq="', ' h="', ' seq="', '"', '>', '<', ' ', '=', 'c n=', '/', 'abc', 'abc', 'xyz', '2026-03-02 09:01:17') },
  { weight: 4, arbitrary: fc.constantFrom('\x01', '\x02', '\x03', '\x04', '\x02\x02', '\x02\x03', '\x02\x04', '\x02\x041', '\x00', '\xff') },
  { weight: 4, arbitrary: fc.stringMatching(/^\d{1,4}$/) },
  { weight: 2, arbitrary: fc.constantFrom('0', '00', '007', '99999999999999999999', '100000000000000000000', '1234567890123456789012345', '18446744073709551615', '18446744073709551616') },
  { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: 10n ** 25n }).map(String) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a).toString('latin1')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }).map((s) => Buffer.from(s, 'utf8').toString('latin1')) },
);
/** whole spans, with few names and values, so that values repeat and numbers grow */
const span = fc.oneof(
  fc.tuple(
    fc.constantFrom('a', 'b', 'a<c n=', '\x02', 'x>y', '\x02\x03'),
    fc.constantFrom('', '', ' r="users"', ' x=<', '"', '\x02', '\x02\x04'),
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('xyz', 'xyz', 'abc', '\x02\x02\x02', '\x02\x03', 'a"b>c', '', 'ab', '\x01\x01\x01') },
      { weight: 1, arbitrary: fragment },
    ),
  ).map(([n, a, v]) => `<c n="${n}"${a}>${v}</c>`),
  fc.tuple(
    fc.constantFrom('<e seq="', ' h="'),
    fc.oneof(fc.integer({ min: 0, max: 12 }).map(String), fc.constantFrom('07', '00', '99999999999999999999', '123456789012345678901')),
  ).map(([k, n]) => `${k}${n}"`),
);
const mixed = fc.array(fc.oneof(fragment, span, span), { maxLength: 60 }).map((a) => latin1(a.join('')));

void t.test('any mix of batch fragments, markers and noise survives pack → unpack', async (t) => {
  fc.assert(fc.property(mixed, (b) => roundTrip(b).equals(b)), { numRuns: 5000 });
  t.pass('5000 random inputs');
});

void t.test('random bytes survive pack → unpack, and through uuid-coding too', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (a) => roundTrip(Buffer.from(a)).equals(Buffer.from(a))), { numRuns: 2000 });
  fc.assert(
    fc.property(mixed, (b) => unpackValues(unpackUuids(packUuids(packValues(b)), MAX), MAX).equals(b)),
    { numRuns: 1000 },
  );
  t.pass('random bytes and layered coding');
});

void t.test('real batches cut and spliced with fragments survive pack → unpack', async (t) => {
  const xml = await registrations(20, 7);
  const text = xml.toString('latin1');
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(text.length), fc.nat(400), fragment), { maxLength: 8 }), (edits) => {
      let s = text;
      for (const [at, len, f] of edits) s = s.slice(0, at) + f + s.slice(at + len);
      return roundTrip(latin1(s)).equals(latin1(s));
    }),
    { numRuns: 300 },
  );
  t.ok(roundTrip(xml).equals(xml), 'the unedited batch');
});

void t.test('a real batch shrinks: repeated values and growing numbers are coded', async (t) => {
  const xml = await registrations(50, 3);
  const packed = packValues(xml);
  t.ok(packed.length < xml.length * 0.9, `${xml.length} → ${packed.length} bytes`);
  t.ok(packed.includes('>\x02\x03</c>'), 'repeated values are markers');
  t.ok(packed.includes('<e seq="\x02\x041"'), 'entry numbers are steps');
  t.ok(unpackValues(packed, MAX).equals(xml));
});

void t.test('what is coded and what is not', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['a repeated value longer than 2 bytes', '<c n="a">xyz</c><c n="a">xyz</c>', '<c n="a">xyz</c><c n="a">\x02\x03</c>'],
    ['a repeated value of 2 bytes stays', '<c n="a">xy</c><c n="a">xy</c>', '<c n="a">xy</c><c n="a">xy</c>'],
    ['the previous value is per column name', '<c n="a">xyz</c><c n="b">xyz</c><c n="a">xyz</c>', '<c n="a">xyz</c><c n="b">xyz</c><c n="a">\x02\x03</c>'],
    ['attributes do not matter', '<c n="a" r="t">xyz</c><c n="a">xyz</c>', '<c n="a" r="t">xyz</c><c n="a">\x02\x03</c>'],
    ['a changed value resets', '<c n="a">xyz</c><c n="a">uvw</c><c n="a">xyz</c>', '<c n="a">xyz</c><c n="a">uvw</c><c n="a">xyz</c>'],
    ['a 0x02 byte is doubled everywhere', '\x02<c n="\x02">\x02\x02\x02</c><c n="\x02">\x02\x02\x02</c>', '\x02\x02<c n="\x02\x02">\x02\x02\x02\x02\x02\x02</c><c n="\x02\x02">\x02\x03</c>'],
    ['growing entry numbers', '<e seq="7"><e seq="9"><e seq="9"><e seq="3"><e seq="4">', '<e seq="7"><e seq="\x02\x042"><e seq="9"><e seq="3"><e seq="\x02\x041">'],
    ['growing stamps', ' h="117682050105344000" h="117682050105344001"', ' h="117682050105344000" h="\x02\x041"'],
    ['seq and h are separate kinds', '<e seq="5" h="100" h="101"><e seq="6"', '<e seq="5" h="100" h="\x02\x041"><e seq="\x02\x041"'],
    ['leading zeros are not numbers', '<e seq="5"><e seq="07"><e seq="8">', '<e seq="5"><e seq="07"><e seq="\x02\x043">'],
    ['more than 20 digits are not numbers', ' h="1" h="123456789012345678901" h="2"', ' h="1" h="123456789012345678901" h="\x02\x041"'],
    ['20 digits are', ' h="1" h="99999999999999999999"', ' h="1" h="\x02\x0499999999999999999998"'],
    ['a batch attribute seq is not an entry number', '<batch seq="1"><e seq="2">', '<batch seq="1"><e seq="2">'],
    ['0x01 is left alone', '<c n="a">\x01\x01\x01</c><c n="a">\x01\x01\x01</c>', '<c n="a">\x01\x01\x01</c><c n="a">\x02\x03</c>'],
  ];
  for (const [name, input, packed] of cases) {
    t.equal(packValues(latin1(input)).toString('latin1'), packed, name);
    t.equal(unpackValues(latin1(packed), MAX).toString('latin1'), input, `${name} (back)`);
  }
});

void t.test('hostile packed input is refused with a code', async (t) => {
  const cases: Array<[string, string, ErrorCode]> = [
    ['a marker cut short', '<c n="a">x</c>\x02', 'SPOKESYNC_E_XML'],
    ['a bad marker', 'abc\x02\x05', 'SPOKESYNC_E_XML'],
    ['a value marker outside a value', 'abc\x02\x03', 'SPOKESYNC_E_XML'],
    ['a value marker inside a longer value', '<c n="a">xyz</c><c n="a">\x02\x03x</c>', 'SPOKESYNC_E_XML'],
    ['a value marker in a name', '<c n="\x02\x03">xyz</c>', 'SPOKESYNC_E_XML'],
    ['a repeated value before any value', '<c n="a">\x02\x03</c>', 'SPOKESYNC_E_XML'],
    ['a repeated value of another column only', '<c n="b">xyz</c><c n="a">\x02\x03</c>', 'SPOKESYNC_E_XML'],
    ['a number step before any number', '<e seq="\x02\x041"', 'SPOKESYNC_E_XML'],
    ['a number step of another kind only', ' h="5"<e seq="\x02\x041"', 'SPOKESYNC_E_XML'],
    ['a number step of zero', '<e seq="5"><e seq="\x02\x040"', 'SPOKESYNC_E_XML'],
    ['a number step with a leading zero', '<e seq="5"><e seq="\x02\x0401"', 'SPOKESYNC_E_XML'],
    ['a number step without digits', '<e seq="5"><e seq="\x02\x04"', 'SPOKESYNC_E_XML'],
    ['a number step outside a number', '<e seq="5">\x02\x041', 'SPOKESYNC_E_XML'],
    ['a number step past 20 digits', ' h="99999999999999999999" h="\x02\x041"', 'SPOKESYNC_E_XML'],
    ['a huge number step', ` h="1" h="\x02\x04${'9'.repeat(100000)}"`, 'SPOKESYNC_E_XML'],
    ['a lone marker at the end of a gap', 'x\x02<c n="a">xyz</c>', 'SPOKESYNC_E_XML'],
  ];
  for (const [name, packed, code] of cases) t.equal(codeOf(() => unpackValues(latin1(packed), MAX)), code, name);
});

void t.test('the size limit holds, also against values repeated by markers', async (t) => {
  const big = 'v'.repeat(1000);
  const packed = latin1(`<c n="a">${big}</c>${'<c n="a">\x02\x03</c>'.repeat(10000)}`);
  t.equal(codeOf(() => unpackValues(packed, 1_000_000)), 'SPOKESYNC_E_BATCH_TOO_LARGE', 'markers expanding past the limit');
  t.equal(unpackValues(packed, 20_000_000).length, 1013 * 10001, 'fits under a larger limit');
  const xml = await registrations(5, 1);
  t.equal(codeOf(() => unpackValues(packValues(xml), xml.length - 1)), 'SPOKESYNC_E_BATCH_TOO_LARGE', 'one byte short');
  t.ok(unpackValues(packValues(xml), xml.length).equals(xml), 'exactly the limit');
});

void t.test('a 1 MiB batch and 1 MiB of hostile input take linear time', async (t) => {
  const one = await registrations(200, 11);
  const xml = Buffer.concat(Array.from({ length: Math.ceil(2 ** 20 / one.length) }, () => one)).subarray(0, 2 ** 20);
  const time = (f: () => unknown): number => {
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      f();
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  };
  const packed = packValues(xml);
  const pack = time(() => packValues(xml));
  const unpack = time(() => unpackValues(packed, MAX));
  t.comment(`1 MiB batch: pack ${pack.toFixed(1)} ms, unpack ${unpack.toFixed(1)} ms`);
  // generous bounds (shared 2-core machine); a quadratic scan takes minutes here
  t.ok(pack < 500 && unpack < 500, 'pack and unpack a 1 MiB batch');
  const hostile: Array<[string, string]> = [
    ['open tags without >', '<c n="a"'],
    ['open tags without a closing quote', '<c n="aaaa'],
    ['values without </c>', '<c n="a">xx'],
    ['stamps without a closing quote', ' h="12345'],
    ['repeated-value markers', '<c n="a">xyz</c><c n="a">\x02\x03</c>'],
  ];
  for (const [name, unit] of hostile) {
    const b = latin1(unit.repeat(Math.ceil(2 ** 20 / unit.length)));
    const ms = time(() => codeOf(() => unpackValues(b, MAX)));
    const msPack = time(() => packValues(b));
    t.comment(`1 MiB of ${name}: unpack ${ms.toFixed(1)} ms, pack ${msPack.toFixed(1)} ms`);
    t.ok(ms < 1000 && msPack < 1000, name);
  }
});
