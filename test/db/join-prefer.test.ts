// `spokesync join --prefer here` with a one-way table: the site's rows were
// written before spokesync ran there (no versions). A person at both with other
// content takes the site's version at both (recorded at the site with both
// versions, and at the hub where it replaced the hub's); a setting at both in a
// table that only flows down keeps the hub's; a setting only at the site in
// that table cannot go up and is listed as left, so the join exits 1 naming it,
// and verify lists exactly that row.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JoinJson } from '../../agent/join/join-report.js';
import { spokesync } from '../helpers/cli.js';
import { dumpServer, startNode, stopNode, uuid } from '../helpers/sync-net.js';
import { register } from '../helpers/verify-rows.js';
import type { VerifyJson } from '../../agent/verify/verify-report.js';

const TOKEN = 'site-prefer-token-0123456789';

void t.test('join --prefer here: the site\'s version, but one-way tables move one way only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-join-prefer-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const direction = { setting: 'down' } as const;
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'site', token: TOKEN }], direction });
  t.teardown(() => stopNode(hub));
  const site = await startNode({ id: 'site', parent: { url: `http://127.0.0.1:${hub.config.listen!.port}`, token: TOKEN }, direction });
  t.teardown(() => stopNode(site));
  await register(hub, 'h', 3);
  await hub.sql(`INSERT INTO person (uuid, name, gender) VALUES (?, 'at the hub', 'F'); INSERT INTO setting (property, value) VALUES ('shared', 'hub')`, [uuid('b', 1)]);
  const siteCfg = await site.writeConfig(dir);
  await site.pause();
  // the site's data from before spokesync ran there
  await site.server.query(`USE app; SET sql_log_bin = 0;
    INSERT INTO person (uuid, name, gender) VALUES (?, 'at the site', 'M'), (?, 'site person', 'F');
    INSERT INTO visit (uuid, person_id, note) VALUES (?, LAST_INSERT_ID(), 'site visit');
    INSERT INTO setting (property, value) VALUES ('shared', 'site'), ('s.only', 'here');
    SET sql_log_bin = 1;`, [uuid('b', 1), uuid('s', 1), uuid('vs', 1)]);

  const joined = await spokesync(['join', '--config', siteCfg, '--prefer', 'here', '--json']);
  t.equal(joined.code, 1, 'a row that cannot move: exit 1');
  const j = JSON.parse(joined.out) as JoinJson;
  const row = (table: string) => j.tables.find((x) => x.table === table)!;
  t.same([row('person').down, row('person').up, row('person').conflicts], [3, 2, { parentKept: 0, hereKept: 1 }], 'person: the site\'s version of the person at both');
  t.same([row('setting').down, row('setting').up, row('setting').conflicts], [2, 0, { parentKept: 1, hereKept: 0 }], 'setting flows down: the hub\'s version');
  t.same(row('setting').left, [{ identity: 's.only', why: 'only here, and the table flows down only (tables.direction): it cannot go up' }]);
  t.same([row('visit').down, row('visit').up], [3, 1]);
  t.equal(j.identical, false);
  t.same(j.verify.differing, [{ table: 'setting', identity: 's.only', difference: 'only here' }]);

  const text = await spokesync(['verify', '--config', siteCfg, '--json']);
  t.equal(text.code, 1);
  t.same((JSON.parse(text.out) as VerifyJson).differing, [{ table: 'setting', identity: 's.only', difference: 'only here' }], 'verify: that row alone');

  await hub.node.capture.caughtUp(60_000);
  const [h, s] = [await hub.dump(), await dumpServer(site.server)];
  t.equal(h.person?.[uuid('b', 1)]?.name, 'at the site', 'the site\'s version at the hub');
  t.equal(s.person?.[uuid('b', 1)]?.name, 'at the site');
  t.equal(s.setting?.shared?.value, 'hub', 'the hub\'s version of the one-way table at the site');
  t.ok(h.visit?.[uuid('vs', 1)] && h.person?.[uuid('s', 1)], 'the site\'s own rows at the hub');
  delete s.setting?.['s.only'];
  t.same(s, h, 'the same rows but the one left');
  const siteConflicts = await site.server.query(`SELECT tbl, identity, kind FROM spokesync.conflicts ORDER BY tbl`) as { tbl: string; identity: string; kind: string }[];
  t.same(siteConflicts.map((c) => [c.tbl, c.identity, c.kind]), [['person', uuid('b', 1), 'join'], ['setting', 'shared', 'insert']], 'both recorded at the site');
  const hubConflicts = await hub.node.db.query<{ tbl: string; outcome: string }>('SELECT tbl, outcome FROM spokesync.conflicts');
  t.same(hubConflicts.map((c) => c.tbl), ['person'], 'the hub recorded the person it took from the site');
  t.match(hubConflicts[0]?.outcome, /remote wins: .*name/);

  // a site that has exchanged with its parent (here: as if it had synced without a join) is refused, nothing changed
  await site.server.query(`DELETE FROM spokesync.meta WHERE k = 'join'`);
  const synced = await spokesync(['join', '--config', siteCfg]);
  t.equal(synced.code, 1);
  t.match(synced.err, /site has exchanged with hub before: join is for a site's first contact with its parent[\s\S]*SPOKESYNC_E_JOIN/);
  t.same(await site.server.query(`SELECT k FROM spokesync.meta WHERE k = 'join'`), [], 'nothing begun');
});
