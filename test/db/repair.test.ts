// `spokesync repair` on a three-level tree (hub ← clinic ← post): the clinic and
// the post below it differ from the hub in ten rows (written behind spokesync's
// back); repair at the clinic takes the hub's version as one change set that
// travels on, so after ordinary syncs verify exits 0 and all three nodes hold
// the same rows, and every version it overwrote is in the clinic's conflicts
// log. With --prefer here the clinic's rows win at the hub and reach the post.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spokesync } from '../helpers/cli.js';
import { settle, startNode, stopNode, uuid } from '../helpers/sync-net.js';
import { diverge, register } from '../helpers/verify-rows.js';

interface Repaired { actions: { table: string; identity: string; action: string; overwrote: boolean }[] }

void t.test('repair: the parent\'s version by default, or this node\'s, reaches the whole tree', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-repair-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'clinic', token: 'clinic-repair-token' }] });
  t.teardown(() => stopNode(hub));
  const clinic = await startNode({
    id: 'clinic', listen: true, children: [{ id: 'post', token: 'post-repair-token' }],
    parent: { url: `http://127.0.0.1:${hub.config.listen!.port}`, token: 'clinic-repair-token' },
  });
  t.teardown(() => stopNode(clinic));
  const post = await startNode({ id: 'post', parent: { url: `http://127.0.0.1:${clinic.config.listen!.port}`, token: 'post-repair-token' } });
  t.teardown(() => stopNode(post));
  const all = [hub, clinic, post];
  await register(clinic, 'c', 6);
  await register(hub, 'h', 8);
  await settle(all, [post, clinic]);
  const clinicCfg = await clinic.writeConfig(dir);
  const postCfg = await post.writeConfig(dir);

  // the clinic and the post below it went astray the same way
  const expected = await diverge(clinic);
  await diverge(post);
  await clinic.pause();
  const repair = await spokesync(['repair', '--config', clinicCfg, '--json']);
  t.equal(repair.code, 0, repair.err);
  const r = JSON.parse(repair.out) as Repaired;
  const action = { changed: 'updated here', 'missing here': 'inserted here', 'only here': 'deleted here' } as Record<string, string>;
  t.same(r.actions.map((a) => [a.table, a.identity, a.action]).sort(),
    expected.map((e) => [e.table, e.identity, action[e.difference]]).sort(), 'each differing row, with what was done');
  t.equal(r.actions.filter((a) => a.overwrote).length, 8, 'six rows overwritten and two deleted here');
  const after = await spokesync(['verify', '--config', clinicCfg]);
  t.equal(after.code, 0, `verify right after repair: ${after.out}${after.err}`);
  await clinic.resume();
  const conflicts = await clinic.node.db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM spokesync.conflicts WHERE kind = 'repair'`);
  t.equal(Number(conflicts[0]?.n), 8, 'every overwritten version is kept in the conflicts log');
  await settle(all, [post, clinic]);
  const [h, c, p] = await Promise.all(all.map((n) => n.dump()));
  t.same(c, h, 'the clinic holds the hub\'s rows');
  t.same(p, h, 'the post received the repair through ordinary syncs');
  await post.pause();
  const postVerify = await spokesync(['verify', '--config', postCfg]);
  t.equal(postVerify.code, 0, postVerify.out + postVerify.err);
  await post.resume();
  const quarantined = await Promise.all(all.map((n) => n.node.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM spokesync.quarantine')));
  t.same(quarantined.map((q) => Number(q[0]?.n)), [0, 0, 0], 'nothing waits anywhere');

  // --prefer here: the clinic's rows win at the hub, and reach the post
  await clinic.sql(`SET sql_log_bin = 0;
    UPDATE person SET name = 'kept at the clinic' WHERE uuid = ?;
    INSERT INTO person (uuid, name) VALUES (?, 'only at the clinic');
    DELETE FROM visit WHERE uuid = ?;
    SET sql_log_bin = 1;`, [uuid('h', 4), uuid('y', 1), uuid('vh', 8)]);
  await clinic.pause();
  const here = await spokesync(['repair', '--config', clinicCfg, '--prefer', 'here']);
  t.equal(here.code, 0, here.err);
  t.match(here.out, /repaired 3 rows \(--prefer here\)/);
  t.match(here.out, new RegExp(`person\\s+${uuid('h', 4)}\\s+updated at hub`));
  t.match(here.out, new RegExp(`person\\s+${uuid('y', 1)}\\s+inserted at hub`));
  t.match(here.out, new RegExp(`visit\\s+${uuid('vh', 8)}\\s+deleted at hub`));
  await clinic.resume();
  await settle(all, [post, clinic]);
  const [h2, c2, p2] = await Promise.all(all.map((n) => n.dump()));
  t.same(h2, c2, 'the hub holds the clinic\'s rows');
  t.same(p2, c2, 'and so does the post');
  t.equal(h2?.person?.[uuid('h', 4)]?.name, 'kept at the clinic');
  t.notOk(h2?.visit?.[uuid('vh', 8)], 'the row only the hub held is gone everywhere');
  await clinic.pause();
  const last = await spokesync(['verify', '--config', clinicCfg]);
  t.equal(last.code, 0, last.out + last.err);
});
