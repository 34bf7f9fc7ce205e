// The admin endpoints: /status.json needs admin.token (Bearer) or the session
// cookie POST /login sets (HttpOnly, SameSite=Strict, never the token itself);
// without admin.token they are not served at all (404) and /health still is;
// /health answers 200 while the database answers and capture runs, 503 with
// the reason once the database is gone. A leaf serves them on admin.listen.
import t from 'tap';
import { startNode, stopNode } from '../helpers/sync-net.js';

const TOKEN = 'leaf-admin-token-abcdefghij';

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(url, { headers, redirect: 'manual' });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

async function post(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST', body: new URLSearchParams(form).toString(), redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

void t.test('status.json behind the token or a login cookie; /health while the database answers', async (t) => {
  const leaf = await startNode({ id: 'leaf', admin: { token: TOKEN, listen: true } });
  t.teardown(() => stopNode(leaf));
  const base = leaf.adminUrl!;

  t.equal((await get(`${base}/status.json`)).status, 401, 'no token: 401');
  const wrong = await get(`${base}/status.json`, { authorization: 'Bearer not-the-token-at-all' });
  t.equal(wrong.status, 401, 'a wrong token: 401');
  t.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="spokesync-admin"');
  t.equal((await get(`${base}/status.json`, { cookie: 'spokesync_session=forged-session-value' })).status, 401, 'a made-up session: 401');
  const ok = await get(`${base}/status.json`, { authorization: `Bearer ${TOKEN}` });
  t.equal(ok.status, 200, 'the token: 200');
  t.match(JSON.parse(ok.text), { node: 'leaf', nodes: [{ id: 'leaf', self: true, parent: null }] });

  t.equal((await post(`${base}/login`, { token: 'wrong-token-wrong-token' })).status, 401, 'login with a wrong token: 401');
  const login = await post(`${base}/login`, { token: TOKEN });
  t.equal(login.status, 303, 'login: 303 to the page');
  t.equal(login.headers.get('location'), '/status');
  const cookie = login.headers.get('set-cookie') ?? '';
  t.match(cookie, /^spokesync_session=[A-Za-z0-9_-]{43}; Max-Age=\d+; Path=\/; HttpOnly; SameSite=Strict$/, 'HttpOnly, SameSite=Strict');
  t.notMatch(cookie, TOKEN, 'the cookie is not the token');
  const session = cookie.split(';')[0]!;
  t.equal((await get(`${base}/status.json`, { cookie: session })).status, 200, 'the cookie: 200');
  t.equal((await post(`${base}/login`, { token: TOKEN, next: '//elsewhere.example/' })).headers.get('location'), '/status', 'never sent to another site');
  t.equal((await post(`${base}/logout`, {}, { cookie: session })).status, 303);
  t.equal((await get(`${base}/status.json`, { cookie: session })).status, 401, 'after logout the cookie is dead');

  const healthy = await get(`${base}/health`);
  t.same([healthy.status, healthy.text], [200, 'ok\n'], '/health without a token');
  t.equal((await get(`${base}/v1/health`)).status, 200, '/v1/health is the same');
  await leaf.node.capture.stop();
  const noCapture = await get(`${base}/health`);
  t.same([noCapture.status, noCapture.text], [503, 'SPOKESYNC_E_CAPTURE: capture is not running\n'], 'capture stopped: 503 with the reason');
  await leaf.node.beginCapture();
  t.equal((await get(`${base}/health`)).status, 200, 'capture again: 200');

  await leaf.server.stop();
  const gone = await get(`${base}/health`);
  t.equal(gone.status, 503, 'the database is gone: 503');
  t.match(gone.text, /^SPOKESYNC_E_DB_CONNECT: the database does not answer \(/);
});

void t.test('without admin.token the admin endpoints are not served; /health is', async (t) => {
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'kid', token: 'kid-token-admin' }] });
  t.teardown(() => stopNode(hub));
  const base = hub.adminUrl!;
  t.equal((await get(`${base}/status.json`)).status, 404);
  t.equal((await get(`${base}/status.json`, { authorization: 'Bearer kid-token-admin' })).status, 404, 'not even for a child\'s token');
  t.equal((await post(`${base}/login`, { token: 'anything-at-all-here' })).status, 404);
  t.equal((await get(`${base}/health`)).status, 200);
  t.equal((await get(`${base}/v1/health`)).status, 200);
});

void t.test('on listen: a parent serves them beside the exchange; a child\'s token does not open them', async (t) => {
  const hub = await startNode({ id: 'hub', listen: true, admin: { token: TOKEN }, children: [{ id: 'kid', token: 'kid-token-admin' }] });
  t.teardown(() => stopNode(hub));
  const base = `http://127.0.0.1:${hub.config.listen!.port}`;
  t.equal(hub.adminUrl, base);
  t.equal((await get(`${base}/status.json`, { authorization: 'Bearer kid-token-admin' })).status, 401);
  t.equal((await get(`${base}/status.json`, { authorization: `Bearer ${TOKEN}` })).status, 200);
  t.equal((await get(`${base}/v1/peer`, { authorization: `Bearer ${TOKEN}` })).status, 401, 'the admin token is no child\'s token');
});
