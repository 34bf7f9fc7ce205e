// The daemon's wait at start (agent/start-wait.ts): which errors mean a database
// not up yet, the delays between tries, the log of each, and what ends the wait.
import t from 'tap';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import { createLogger } from '../../apply/core/log.js';
import { notUpYet, startWhenUp } from '../../agent/start-wait.js';

const driver = (code: string, extra: Record<string, unknown> = {}): Error => Object.assign(new Error(`driver says ${code}`), { code, ...extra });
const connect = (code: string): SpokesyncError =>
  new SpokesyncError('SPOKESYNC_E_DB_CONNECT', `cannot connect to 127.0.0.1:3306 as spokesync (${code})`, { cause: driver(code) });

void t.test('what is a database not up yet', async (t) => {
  const cases: Array<[string, unknown, boolean]> = [
    ['nothing listens', connect('ECONNREFUSED'), true],
    ['reset under the handshake', connect('ECONNRESET'), true],
    ['no answer', connect('ETIMEDOUT'), true],
    ['no name yet at boot', connect('EAI_AGAIN'), true],
    ['shutting down', connect('ER_SERVER_SHUTDOWN'), true],
    ['too many connections', connect('ER_CON_COUNT_ERROR'), true],
    ['lost under a query (a driver error)', driver('PROTOCOL_CONNECTION_LOST', { fatal: true }), true],
    ['capture could not reach it', new SpokesyncError('SPOKESYNC_E_CAPTURE', 'binlog connection failed', { cause: driver('ECONNREFUSED') }), true],
    ['a refused login', connect('ER_ACCESS_DENIED_ERROR'), false],
    ['a host not allowed', connect('ER_HOST_NOT_PRIVILEGED'), false],
    ['no such schema', driver('ER_BAD_DB_ERROR'), false],
    ['a failed preflight, whatever its cause', new SpokesyncError('SPOKESYNC_E_PREFLIGHT', 'binlog_format', { cause: driver('ECONNRESET') }), false],
    ['a newer state', new SpokesyncError('SPOKESYNC_E_STATE_NEWER', 'newer'), false],
    ['the node lock held', new SpokesyncError('SPOKESYNC_E_BUSY', 'in use'), false],
    ['a bug', new TypeError('x is undefined'), false],
    ['not an error', 'ECONNREFUSED', false],
  ];
  for (const [what, e, expected] of cases) t.equal(notUpYet(e), expected, what);
});

function harness(failures: readonly unknown[]) {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ level: 'debug', format: 'json', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const slept: number[] = [];
  let calls = 0;
  const start = async (): Promise<string> => {
    const e = failures[calls++];
    if (e !== undefined) throw e;
    return 'node';
  };
  const sleep = async (ms: number): Promise<void> => { slept.push(ms); };
  return { lines, log, slept, start, sleep, calls: () => calls };
}

void t.test('tries again after 1, 2, 4 ... s up to 60 s, each try logged at warn, until the database answers', async (t) => {
  const h = harness(Array.from({ length: 9 }, () => connect('ECONNREFUSED')));
  const got = await startWhenUp(h.start, { log: h.log, signal: new AbortController().signal, address: '127.0.0.1:3306', dispose: async () => {}, sleep: h.sleep });
  t.equal(got, 'node');
  t.equal(h.calls(), 10);
  t.same(h.slept, [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  const warns = h.lines.filter((l) => l.level === 'warn');
  t.equal(warns.length, 9);
  t.match(warns[0], { msg: 'the database is not up yet: waiting for it', address: '127.0.0.1:3306', tries: 1, nextTryInSeconds: 1, code: 'ECONNREFUSED' });
  t.match(h.lines.at(-1), { level: 'info', msg: 'the database is up', tries: 10 });
});

void t.test('an error waiting cannot fix ends it at once, saying so', async (t) => {
  const h = harness([connect('ECONNREFUSED'), connect('ER_ACCESS_DENIED_ERROR')]);
  const e = await startWhenUp(h.start, { log: h.log, signal: new AbortController().signal, address: 'db:3306', dispose: async () => {}, sleep: h.sleep })
    .then(() => null, (x: unknown) => x);
  t.ok(isSpokesyncError(e, 'SPOKESYNC_E_DB_CONNECT'));
  t.match((e as Error).message, /\(ER_ACCESS_DENIED_ERROR\): the server answered and refused, which waiting does not change/);
  t.equal(h.calls(), 2);
  const busy = new SpokesyncError('SPOKESYNC_E_BUSY', 'in use');
  const h2 = harness([busy]);
  await t.rejects(startWhenUp(h2.start, { log: h2.log, signal: new AbortController().signal, address: 'db:3306', dispose: async () => {}, sleep: h2.sleep }), busy,
    'other errors as they are');
});

void t.test('the signal ends the wait at once, even during a try; what that try opens is released', async (t) => {
  const ac = new AbortController();
  let release!: (v: string) => void;
  const disposed: string[] = [];
  const pending = startWhenUp(() => new Promise<string>((r) => { release = r; }), {
    log: createLogger({ write: () => {} }), signal: ac.signal, address: 'db:3306', dispose: async (n) => { disposed.push(n); },
  });
  const reason = Object.assign(new Error('stopped by SIGTERM'), { name: 'AbortError' });
  ac.abort(reason);
  await t.rejects(pending, reason);
  release('late node');
  await new Promise((r) => setImmediate(r));
  t.same(disposed, ['late node']);
});
