// join --prefer here when the parent's version of a row is stamped ahead of
// the site's clock (its clock runs ahead, or both wrote within one second): a
// joining site never received the parent's stamps (what it brings down is
// stamped as the join's), so the rows it rewrites are stamped above the
// parent's versions, which the parent tells. Otherwise the parent kept its
// own version of the row, and the two stayed different.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JoinJson } from '../../agent/join/join-report.js';
import { spokesync } from '../helpers/cli.js';
import { dumpServer, startNode, stopNode, uuid } from '../helpers/sync-net.js';
import { register } from '../helpers/verify-rows.js';

const TOKEN = 'site-join-clock-token-0123456789';

void t.test('join --prefer here wins over a parent\'s version stamped ahead', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-join-clock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'site', token: TOKEN }] });
  t.teardown(() => stopNode(hub));
  const site = await startNode({ id: 'site', parent: { url: `http://127.0.0.1:${hub.config.listen!.port}`, token: TOKEN } });
  t.teardown(() => stopNode(site));
  await register(hub, 'h', 2);
  // the hub's person, committed ten minutes ahead of the site's clock
  await hub.sql(`SET TIMESTAMP = UNIX_TIMESTAMP() + 600; INSERT INTO person (uuid, name, gender) VALUES (?, 'at the hub, ahead', 'F'); SET TIMESTAMP = DEFAULT`, [uuid('b', 1)]);
  await hub.node.capture.caughtUp(60_000);
  const siteCfg = await site.writeConfig(dir);
  await site.pause();
  await site.server.query(`USE app; SET sql_log_bin = 0; INSERT INTO person (uuid, name, gender) VALUES (?, 'at the site', 'M'); SET sql_log_bin = 1;`, [uuid('b', 1)]);

  const joined = await spokesync(['join', '--config', siteCfg, '--prefer', 'here', '--json']);
  t.equal(joined.code, 0, joined.out + joined.err);
  const j = JSON.parse(joined.out) as JoinJson;
  t.equal(j.identical, true, 'verify after the join: identical');
  await hub.node.capture.caughtUp(60_000);
  const [h, s] = [await hub.dump(), await dumpServer(site.server)];
  t.equal(h.person?.[uuid('b', 1)]?.name, 'at the site', 'the site\'s version at the hub');
  t.same(s, h, 'the two hold the same rows');
  const hubConflicts = await hub.node.db.query<{ outcome: string }>('SELECT outcome FROM spokesync.conflicts');
  t.match(hubConflicts.map((c) => c.outcome), [/remote wins/], 'the hub recorded the version it replaced');
});
