// The exchange server's per-address limits, on their own: which address a
// limit counts against, the wrong-token throttle's window and block, and one
// log line per window for repeated refusals.
import t from 'tap';
import { AuthThrottle, RefusalLog, addressKey, listenLimits } from '../../agent/exchange/peer-limits.js';
import { createLogger } from '../../apply/core/log.js';

void t.test('address keys: IPv4 as is, IPv6 by its /64', async (t) => {
  t.equal(addressKey('10.1.2.3'), '10.1.2.3');
  t.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3', 'IPv4-mapped');
  t.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8:1:2::99'), '2001:db8:1:2::/64', 'same /64, other host');
  t.equal(addressKey('2001:0DB8:0001:0002:ffff::1'), '2001:db8:1:2::/64', 'case and leading zeros');
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(addressKey('::1'), '0:0:0:0::/64');
  t.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'zone id dropped');
  t.not(addressKey('2001:db8:1:3::1'), addressKey('2001:db8:1:2::1'), 'another /64');
  t.equal(addressKey(undefined), 'unknown');
});

void t.test('limits: the defaults of the config reference', async (t) => {
  const l = listenLimits({ host: '127.0.0.1', port: 1, maxBodyBytes: 1024, maxInflatedBytes: 1024 });
  t.same(l, {
    maxConnections: 256, maxConnectionsPerAddress: 8, headersTimeout: 10_000, handshakeTimeout: 60_000, bodyTimeout: 60_000, requestTimeout: 900_000,
    authFailures: { max: 10, window: 60_000, block: 300_000 },
  });
  t.equal(listenLimits({ host: 'h', port: 1, maxBodyBytes: 1, maxInflatedBytes: 1, bodyTimeout: 5000 }).bodyTimeout, 5000);
});

void t.test('wrong tokens: max within the window blocks for the block time', async (t) => {
  let now = 0;
  const th = new AuthThrottle({ max: 3, window: 1000, block: 5000 }, () => now);
  t.notOk(th.failed('a'));
  t.notOk(th.failed('a'));
  now = 999;
  t.equal(th.blockedFor('a'), 0);
  t.ok(th.failed('a'), 'the third within the window starts a block');
  t.equal(th.blockedFor('a'), 5000);
  t.equal(th.blockedFor('b'), 0, 'other addresses are not affected');
  now = 3000;
  t.equal(th.blockedFor('a'), 2999);
  now = 5999;
  t.equal(th.blockedFor('a'), 0, 'the block ends');
  t.notOk(th.failed('a'), 'and counting starts again');
  t.notOk(th.failed('a'));
  t.ok(th.failed('a'));

  // failures spread wider than the window never block
  const slow = new AuthThrottle({ max: 3, window: 1000, block: 5000 }, () => now);
  for (let i = 0; i < 20; i++) {
    now += 600;
    slow.failed('c');
    t.equal(slow.blockedFor('c'), 0);
  }
});

void t.test('refusals: one line per address and window, with the count since', async (t) => {
  let now = 0;
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'debug', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const r = new RefusalLog(log, 1000, () => now);
  for (let i = 0; i < 50; i++) r.refused('refused: x', '10.0.0.1');
  r.refused('refused: x', '10.0.0.2');
  r.refused('refused: y', '10.0.0.1');
  t.equal(lines.length, 3, 'one per kind and address');
  now = 1000;
  r.refused('refused: x', '10.0.0.1');
  t.equal(lines.length, 4);
  t.match(lines[3], { msg: 'refused: x', address: '10.0.0.1', refusedSinceLastLine: 50 });
});
