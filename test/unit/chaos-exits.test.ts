// How the fault test judges a daemon exit it did not cause (test/chaos/daemons.ts):
// from what the process printed after its last log line, its status and its uptime.
import t from 'tap';
import { judgeExit } from '../chaos/daemons.js';

const json = '{"time":"2026-12-07T16:41:54.384Z","level":"warn","msg":"exchange attempt failed, retrying","code":"SPOKESYNC_E_HTTP","error":"exchange: ECONNRESET"}';
const unexpected = (what: string): string => [
  json, `spokesync: unexpected error: ${what}`, '  fix: see the stack below', `Error: ${what}`,
  '    at Object.query (file:///x/agent/db.js:40:36)', '    at loadCatalog (file:///x/agent/schema/catalog.js:7:29)',
].join('\n');

void t.test('a start refused while the database went away', async (t) => {
  t.match(judgeExit(unexpected('read ECONNRESET'), 1, null, 2900), { refusedStart: true, unnamed: true, crash: false, errorCode: null });
  const refused = `${json}\nspokesync: cannot connect to 127.0.0.1:44121 as root (ER_CON_ACCESS_DENIED)\n  fix: Check database.host, port, user and password, and that the server is running. (SPOKESYNC_E_DB_CONNECT)`;
  t.match(judgeExit(refused, 1, null, 1200), { refusedStart: true, unnamed: false, crash: false, errorCode: 'SPOKESYNC_E_DB_CONNECT' });
  const busy = 'spokesync: node l1 (state schema spokesync) is in use by another spokesync process\n  fix: stop it first (SPOKESYNC_E_BUSY)';
  t.match(judgeExit(busy, 1, null, 800), { refusedStart: true, crash: false, errorCode: 'SPOKESYNC_E_BUSY' });
});

void t.test('a start that ended on a database not up yet is a failure: the daemon waits for one', async (t) => {
  for (const code of ['ECONNRESET', 'ECONNREFUSED', 'PROTOCOL_CONNECTION_LOST']) {
    const named = `${json}\nspokesync: cannot connect to 127.0.0.1:44121 as root (${code})\n  fix: … (SPOKESYNC_E_DB_CONNECT)`;
    t.match(judgeExit(named, 1, null, 1200), { refusedStart: false, crash: false, errorCode: 'SPOKESYNC_E_DB_CONNECT' }, code);
  }
});

void t.test('the same errors from a daemon that had been running are failures', async (t) => {
  t.match(judgeExit(unexpected('Connection lost: The server closed the connection.'), 1, null, 290_000),
    { refusedStart: false, crash: true, errorCode: null }, 'the code in an earlier log line is not the exit reason');
  t.match(judgeExit(`${json}\nspokesync: cannot connect to 127.0.0.1:1 as root (ECONNRESET)\n  fix: … (SPOKESYNC_E_DB_CONNECT)`, 1, null, 60_000),
    { refusedStart: false, crash: false, errorCode: 'SPOKESYNC_E_DB_CONNECT' });
  t.match(judgeExit(unexpected('Cannot read properties of undefined'), 1, null, 1000), { refusedStart: false, crash: true });
});

void t.test('out of memory, signals and odd statuses are crashes', async (t) => {
  const oom = `${json}\n\n<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory`;
  t.match(judgeExit(oom, 134, null, 100_000), { crash: true, refusedStart: false });
  t.match(judgeExit(oom, 1, null, 2000), { crash: true, refusedStart: false }, 'even in its first seconds');
  t.match(judgeExit(json, null, 'SIGABRT', 100_000), { crash: true });
  t.match(judgeExit(json, 7, null, 100_000), { crash: true });
  t.match(judgeExit('spokesync: config.yaml: unknown key "x"\n  fix: … (SPOKESYNC_E_CONFIG)', 2, null, 500), { crash: false, refusedStart: false });
});
