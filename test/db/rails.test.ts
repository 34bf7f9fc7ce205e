// Rails on the provisioning commands, as operators run them (the built binary)
// on a parent and a site that already sync. A snapshot for the site while the
// parent has a change pending for it used to move the site's cursor past that
// change with every status saying ok; a forced clone at a stopped site used to
// drop a row inserted there before it was sent. Both are refused now unless
// forced, and a forced loss is recorded and shown by `spokesync status`.
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../apply/core/db.js';
import type { TestServer } from '../../deploy/sandbox/mariadb.js';
import { fetchSnapshot } from '../../agent/provision/http.js';
import type { NodeStatus } from '../../agent/routing/node-status.js';
import { spokesync, statusOf as status } from '../helpers/cli.js';
import { APP, dumpServer, settle, startNode, stopNode, type NetNode } from '../helpers/sync-net.js';

const TOKEN = 'site-token-0123456789';

async function pair(t: Test): Promise<{ hub: NetNode; site: NetNode; hubFile: string; siteFile: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-rails-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'site', token: TOKEN }] });
  t.teardown(() => stopNode(hub));
  const site = await startNode({ id: 'site', parent: { url: `http://127.0.0.1:${hub.config.listen!.port}`, token: TOKEN } });
  t.teardown(() => stopNode(site));
  return { hub, site, dir, hubFile: await hub.writeConfig(dir), siteFile: await site.writeConfig(dir) };
}

async function people(s: TestServer, name: string): Promise<number> {
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  try {
    const [r] = await db.query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM ${APP}.person WHERE name = ?`, [name]);
    return Number(r?.n ?? 0);
  } finally {
    await db.close();
  }
}


const pendingFor = (s: NodeStatus, peer: string): number | undefined => s.peers.find((p) => p.peer === peer)?.pending;

void t.test('snapshot --peer SITE for a site that syncs: refused while a change is pending for it; --force records the loss', async (t) => {
  const { hub, site, hubFile, siteFile, dir } = await pair(t);
  await hub.sql("INSERT INTO person (uuid, name) VALUES (UUID(), 'first')");
  await settle([hub, site], [site]);
  t.equal(await people(site.server, 'first'), 1, 'the two sync');
  await hub.sql("INSERT INTO person (uuid, name) VALUES (UUID(), 'pending')");
  await hub.node.capture.caughtUp(60_000);
  t.equal(pendingFor(await status(hubFile), 'site'), 1, 'the parent has 1 change pending for the site');

  const file = join(dir, 'site.snapshot');
  const refused = await spokesync(['snapshot', '--config', hubFile, '--peer', 'site', '--out', file]);
  t.equal(refused.code, 1, 'refused');
  t.match(refused.err, /SPOKESYNC_E_WOULD_LOSE/);
  t.match(refused.err, /1 change set is pending for it[\s\S]*re-cloned/, 'says how many and that the site must be re-cloned');
  t.notOk(existsSync(file) || existsSync(`${file}.partial`), 'no file written');
  const after = await status(hubFile);
  t.equal(pendingFor(after, 'site'), 1, 'the change is still pending for the site');
  t.equal(after.losses.count, 0, 'nothing lost');
  await settle([hub, site], [site]);
  t.equal(await people(site.server, 'pending'), 1, 'and it reaches the site');

  await hub.sql("INSERT INTO person (uuid, name) VALUES (UUID(), 'skipped')");
  await hub.node.capture.caughtUp(60_000);
  const forced = await spokesync(['snapshot', '--config', hubFile, '--peer', 'site', '--out', file, '--force']);
  t.equal(forced.code, 0, forced.err);
  const s = await status(hubFile);
  t.equal(pendingFor(s, 'site'), 0, 'the cursor moved past the pending change');
  t.equal(s.losses.count, 1, 'the forced loss is recorded');
  t.match(s.losses.entries[0], { peer: 'site', changeSets: 1, command: 'snapshot --peer site --force', at: /^\d{4}-/ });
  const text = await spokesync(['status', '--config', hubFile]);
  t.match(text.out, /lost +1 forced/);
  t.match(text.out, /LOST 1 change set \(site\)[^\n]*snapshot --peer site --force/, 'status shows it');

  // re-provisioned from that file, the site has the change the cursor skipped
  await site.pause();
  const clone = await spokesync(['clone', '--config', siteFile, '--from', file, '--force']);
  t.equal(clone.code, 0, clone.err);
  await site.resume();
  t.equal(await people(site.server, 'skipped'), 1, 'the re-cloned site has it');
  await settle([hub, site], [site]);
  t.same(await dumpServer(site.server), await dumpServer(hub.server), 'the two are identical');
});

void t.test('clone --force at a stopped site with an unsent insert: refused; --discard-local records the loss', async (t) => {
  const { hub, site, hubFile, siteFile } = await pair(t);
  await hub.sql("INSERT INTO person (uuid, name) VALUES (UUID(), 'from the hub')");
  await settle([hub, site], [site]);
  await site.pause();
  await site.sql("INSERT INTO person (uuid, name) VALUES (UUID(), 'registered while stopped')");

  const refused = await spokesync(['clone', '--config', siteFile, '--force']);
  t.equal(refused.code, 1, 'refused');
  t.match(refused.err, /SPOKESYNC_E_WOULD_LOSE/);
  t.match(refused.err, /holds 1 change set not yet acknowledged by hub[\s\S]*spokesync sync[\s\S]*--discard-local/, 'says how many and what to do');
  t.equal(await people(site.server, 'registered while stopped'), 1, 'the row is still at the site');
  t.equal((await status(siteFile)).losses.count, 0);
  await site.resume();
  await settle([hub, site], [site]);
  t.equal(await people(hub.server, 'registered while stopped'), 1, 'and reaches the parent at the next sync');

  await t.rejects(fetchSnapshot(site.config.parent!), { code: 'SPOKESYNC_E_WOULD_LOSE' },
    'the parent refuses a snapshot for a site that has exchanged before, unless asked with force');
  t.equal((await status(hubFile)).losses.count, 0);

  await site.pause();
  await site.sql("INSERT INTO person (uuid, name) VALUES (UUID(), 'thrown away')");
  const forced = await spokesync(['clone', '--config', siteFile, '--force', '--discard-local']);
  t.equal(forced.code, 0, forced.err);
  t.equal(await people(site.server, 'thrown away'), 0, 'replaced by the parent\'s data');
  t.equal(await people(site.server, 'registered while stopped'), 1, 'what was sent is back from the parent');
  const here = await status(siteFile);
  t.equal(here.losses.count, 1, 'the site records its loss');
  t.match(here.losses.entries[0], { command: 'clone --force --discard-local', peer: 'hub', changeSets: 1 });
  const there = await status(hubFile);
  t.equal(there.losses.count, 1, 'the parent records the forced re-provisioning');
  t.match(there.losses.entries[0], { peer: 'site', command: /GET \/v1\/snapshot\?force=1/, by: 'site over HTTP' });
  await site.resume();
  await settle([hub, site], [site]);
  t.same(await dumpServer(site.server), await dumpServer(hub.server), 'the two are identical');
});
