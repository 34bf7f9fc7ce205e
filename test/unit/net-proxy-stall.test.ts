// The test link (test/helpers/net-proxy.ts) can stall: connections stay open,
// nothing moves either way until it is released, then everything queued arrives
// in order. Planned cuts can be cancelled.
import t from 'tap';
import { createServer, connect, type Socket } from 'node:net';
import { startProxy } from '../helpers/net-proxy.js';

async function echoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const socks = new Set<Socket>();
  const s = createServer((c) => { socks.add(c); c.on('error', () => undefined); c.pipe(c); });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const addr = s.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    close: () => new Promise((r) => { for (const c of socks) c.destroy(); s.close(() => r()); }),
  };
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

void t.test('a stalled link holds the bytes and delivers them once released', async (t) => {
  const echo = await echoServer();
  t.teardown(() => echo.close());
  const proxy = await startProxy({ target: { host: '127.0.0.1', port: echo.port } });
  t.teardown(() => proxy.close());
  const c = connect({ host: '127.0.0.1', port: proxy.port });
  t.teardown(() => c.destroy());
  let got = '';
  c.on('data', (d: Buffer) => { got += d.toString(); });
  await new Promise<void>((r) => c.once('connect', () => r()));
  c.write('before ');
  await wait(200);
  t.equal(got, 'before ', 'the link works');

  proxy.set({ stalled: true });
  c.write('during ');
  await wait(400);
  t.equal(got, 'before ', 'nothing moves while stalled');
  t.notOk(c.destroyed, 'the connection stays open');
  const late = connect({ host: '127.0.0.1', port: proxy.port });
  t.teardown(() => late.destroy());
  let lateGot = '';
  late.on('data', (d: Buffer) => { lateGot += d.toString(); });
  late.write('new connection');
  await wait(300);
  t.equal(lateGot, '', 'a new connection is accepted but silent too');

  proxy.set({ stalled: false });
  await wait(300);
  t.equal(got, 'before during ', 'released: the queued bytes arrive in order');
  t.equal(lateGot, 'new connection');
});

void t.test('planned cuts can be cancelled', async (t) => {
  const echo = await echoServer();
  t.teardown(() => echo.close());
  const proxy = await startProxy({ target: { host: '127.0.0.1', port: echo.port } });
  t.teardown(() => proxy.close());
  proxy.cutNext({ direction: 'up', afterBytes: 3 });
  proxy.cancelCuts();
  const c = connect({ host: '127.0.0.1', port: proxy.port });
  t.teardown(() => c.destroy());
  let got = '';
  c.on('data', (d: Buffer) => { got += d.toString(); });
  c.write('more than three bytes');
  await wait(300);
  t.equal(got, 'more than three bytes');
  t.equal(proxy.stats.cuts, 0);
});
