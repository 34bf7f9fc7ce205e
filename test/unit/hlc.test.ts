// The hybrid logical clock whatever it is given: a received stamp at the top of
// the encoding, or years ahead, never takes it past the encoding (capture keeps
// stamping local changes), and with a bound it never moves further ahead of
// physical time than that; local stamps stay strictly increasing.
import t from 'tap';
import fc from 'fast-check';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import { Hlc, MAX_HLC, packHlc, type HlcClamp } from '../../apply/core/hlc.js';

const NOW = Date.UTC(2026, 11, 7, 16, 0, 0);
const DAY = 86_400_000;
const TOP = 18446744073709551615n;
const YEAR_9999 = packHlc(Date.UTC(9999, 11, 31), 0);

void t.test('a stamp at the top of the encoding: local stamps still fit it and keep increasing', async (t) => {
  const clock = new Hlc(() => NOW);
  clock.observe(TOP);
  let prev = clock.value;
  t.ok(prev <= TOP);
  const bad: bigint[] = [];
  for (let i = 0; i < 1000; i++) {
    const s = clock.tick();
    if (!(s > prev && s <= TOP)) bad.push(s);
    prev = s;
  }
  t.same(bad, [], 'each tick increases within the encoding');
  t.doesNotThrow(() => encodeChangeSet({ id: `n:${prev}`, origin: 'n', hlc: prev.toString(), time: '2026-12-07T16:00:00Z', ops: [] }), 'the stamp encodes');
});

void t.test('at the very end of the encoding the clock stays there and says so', async (t) => {
  const clamps: HlcClamp[] = [];
  const clock = new Hlc(() => NOW, MAX_HLC, { onClamp: (c) => clamps.push(c) });
  t.ok(clock.value < MAX_HLC, 'a start at the very end is clamped below it');
  for (let i = 0; i < 70_000; i++) clock.tick();
  t.equal(clock.value, MAX_HLC, 'never past the encoding');
  t.same(clamps.map((c) => c.kind).slice(0, 1), ['start']);
  t.ok(clamps.some((c) => c.kind === 'tick'), 'the clamp is reported');
});

void t.test('with a bound: far-future stamps move the clock no further than now + the bound', async (t) => {
  const clamps: HlcClamp[] = [];
  const ceiling = packHlc(NOW + DAY, 0xffff);
  const clock = new Hlc(() => NOW, 0n, { maxAheadMs: DAY, onClamp: (c) => clamps.push(c) });
  for (const far of [TOP, YEAR_9999]) {
    clock.observe(far);
    t.equal(clock.value, ceiling, `${far} is clamped`);
  }
  t.same(clamps.map((c) => [c.kind, c.given, c.kept]), [['observe', TOP, ceiling], ['observe', YEAR_9999, ceiling]]);
  const near = new Hlc(() => NOW, 0n, { maxAheadMs: DAY });
  const fine = packHlc(NOW + DAY - 1000, 3);
  near.observe(fine);
  t.equal(near.value, fine, 'a stamp within the bound is merged as it is');
  t.ok(near.tick() > fine, 'and later local stamps exceed it');

  const poisoned = new Hlc(() => NOW, TOP, { maxAheadMs: DAY, startAt: NOW });
  t.equal(poisoned.value, ceiling, 'a starting value beyond the bound is clamped');
  const foreseen = poisoned.next(NOW + 5);
  t.equal(new Hlc(() => NOW + 5, poisoned.value, { maxAheadMs: DAY }).tick(), foreseen, 'next() foresees tick()');
});

void t.test('property: any mix of merges and ticks keeps ticks increasing and within bound and encoding', async (t) => {
  const stamp = fc.bigInt({ min: 0n, max: TOP });
  const step = fc.oneof(
    fc.record({ kind: fc.constant('observe' as const), h: stamp }),
    fc.record({ kind: fc.constant('tick' as const), dt: fc.integer({ min: 0, max: 5000 }) }),
  );
  fc.assert(fc.property(fc.array(step, { maxLength: 60 }), fc.integer({ min: 0, max: 2 ** 47 }), (steps, start) => {
    let now = start;
    const clock = new Hlc(() => now, 0n, { maxAheadMs: DAY });
    let prev = -1n;
    for (const s of steps) {
      if (s.kind === 'observe') clock.observe(s.h);
      else {
        now += s.dt;
        const h = clock.tick();
        if (h <= prev || h > MAX_HLC) return false;
        prev = h;
      }
      if (clock.value > packHlc(now + DAY, 0xffff) + BigInt(steps.length)) return false;
    }
    return true;
  }));
  t.pass('held');
});
