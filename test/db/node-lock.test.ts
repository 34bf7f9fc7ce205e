// One process per node, always. The node lock is a named lock of the database
// server, held by a connection: when mariadbd restarts under a running daemon the
// lock goes with the connection. The daemon takes it again, so a second daemon and
// `clone --force` are still refused. While another process holds it, the daemon
// captures and applies nothing, status says so, and it resumes once it has it back.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../apply/core/db.js';
import { nodeLockName } from '../../agent/node-lock.js';
import { until } from '../../deploy/sandbox/until.js';
import { spokesync, statusOf as status } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon-proc.js';
import { APP, startNode, stopNode } from '../helpers/sync-net.js';

const TOKEN = 'site-token-0123456789';
const LOCK = nodeLockName('spokesync');

const yes = (b: boolean): true | undefined => (b ? true : undefined);

async function count(db: Db, sql: string): Promise<number> {
  const [r] = await db.query<{ n: string | number }>(sql);
  return Number(r?.n ?? 0);
}

void t.test('a MariaDB restart under a running daemon: it holds the node lock again, and pauses while it cannot', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'site', token: TOKEN }] });
  t.teardown(() => stopNode(hub));
  const site = await startNode({ id: 'site', parent: { url: `http://127.0.0.1:${hub.config.listen!.port}`, token: TOKEN } });
  t.teardown(() => stopNode(site));
  await site.pause();
  const file = await site.writeConfig(dir);
  const daemon = startDaemon(file);
  t.teardown(() => daemon.stop());
  await until('the daemon to run', async () => yes((await status(file)).capture.daemon));

  await site.server.crashAndRestart();
  const db = openDb({ host: site.server.host, port: site.server.port, user: 'root' });
  t.teardown(() => db.close());
  await until('the daemon to take the node lock again', async () => {
    const [r] = await db.query<{ who: unknown }>('SELECT IS_USED_LOCK(?) AS who', [LOCK]);
    return yes(r?.who !== null && r?.who !== undefined);
  });
  t.equal(daemon.proc.exitCode, null, 'the daemon still runs');

  const second = startDaemon(file);
  const code = await new Promise<number | null>((resolve) => second.proc.once('close', resolve));
  t.equal(code, 1, 'a second daemon is refused');
  t.match(second.output(), /SPOKESYNC_E_BUSY/);
  const clone = await spokesync(['clone', '--config', file, '--force']);
  t.equal(clone.code, 1, 'clone --force is refused');
  t.match(clone.err, /SPOKESYNC_E_BUSY/);
  const s = await status(file);
  t.ok(s.capture.daemon, 'status says the daemon runs');
  t.equal(s.capture.lockLost, null, 'and that it holds its lock');
  const journal = `SELECT COUNT(*) AS n FROM spokesync.journal WHERE from_peer IS NULL`;
  await db.exec(`INSERT INTO ${APP}.person (uuid, name) VALUES (UUID(), 'after the restart')`);
  await until('capture to journal a change made after the restart', async () => yes((await count(db, journal)) === 1));

  // another process takes the lock the moment the server drops the daemon's connection
  const [holder] = await db.query<{ id: string | number }>('SELECT IS_USED_LOCK(?) AS id', [LOCK]);
  const other = await db.connection();
  t.teardown(() => other.release());
  await other.query(`KILL CONNECTION ${Number(holder?.id)}`);
  const [got] = await other.query<{ ok: number }>('SELECT GET_LOCK(?, 20) AS ok', [LOCK]);
  t.equal(Number(got?.ok), 1, 'another process holds the node lock');
  const lost = await until('status to show the lost lock', async () => (await status(file)).capture.lockLost ?? undefined);
  t.match(lost, { since: /^\d{4}-/, pid: daemon.proc.pid });
  t.match((await spokesync(['status', '--config', file])).out, /node lock +LOST since/);
  await db.exec(`INSERT INTO ${APP}.person (uuid, name) VALUES (UUID(), 'while the lock is lost')`);
  await hub.sql("INSERT INTO person (uuid, name) VALUES (UUID(), 'from the hub')");
  // the daemon checks its lock every 2 s and syncs every second: a few rounds of both
  await new Promise((r) => setTimeout(r, 6000));
  t.equal(await count(db, journal), 1, 'nothing captured without the lock');
  t.equal(await count(db, `SELECT COUNT(*) AS n FROM ${APP}.person WHERE name = 'from the hub'`), 0, 'nothing applied without the lock');
  t.equal(daemon.proc.exitCode, null, 'the daemon waits');

  await other.query('SELECT RELEASE_LOCK(?)', [LOCK]);
  await until('status to show the daemon holds its lock again', async () => {
    const st = await status(file);
    return yes(st.capture.daemon && st.capture.lockLost === null);
  });
  await until('capture to resume', async () => yes((await count(db, journal)) === 2));
  await until('apply to resume', async () => yes((await count(db, `SELECT COUNT(*) AS n FROM ${APP}.person WHERE name = 'from the hub'`)) === 1));
  t.match(daemon.output(), /node lock lost/);
  t.match(daemon.output(), /node lock taken again/);
  t.equal(await daemon.stop(), 0, 'the daemon stops cleanly');
});
