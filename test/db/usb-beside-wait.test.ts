// An import beside the process that holds the node decides a conflict only
// once that process's capture has journaled the local writes before it: a
// newer local write that capture has not recorded yet still wins over an older
// change from the file, and both nodes end with it.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spokesync } from '../helpers/cli.js';
import { startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';
import { exportFile, importFile } from '../../agent/usb/transfer.js';

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function nameAt(n: NetNode, id: string): Promise<string | undefined> {
  const [row] = await n.node.db.query<{ name: string }>('SELECT name FROM app.person WHERE uuid = ?', [id]);
  return row?.name;
}

void t.test('a conflict beside the daemon waits for its capture', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-beside-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'site', token: 'site-token-wait' }] });
  t.teardown(() => stopNode(hub));
  const site = await startNode({ id: 'site', parent: { url: `http://127.0.0.1:${hub.config.listen!.port}`, token: 'site-token-wait' } });
  t.teardown(() => stopNode(site));
  const id = uuid('w', 1);
  await hub.sql(`INSERT INTO person (uuid, name) VALUES (?, 'v0')`, [id]);
  await hub.node.capture.caughtUp(60_000);
  await site.node.syncWithParent();
  t.equal(await nameAt(site, id), 'v0');

  // the site's change, older than the hub's local write below
  await pause(1100);
  await site.sql(`UPDATE person SET name = 'from site' WHERE uuid = ?`, [id]);
  await site.node.capture.caughtUp(60_000);
  await exportFile(site.node.usb(), { out: join(dir, 'site.usb') });

  // the hub's own process holds the node; its capture stands still while the hub writes
  await hub.node.capture.stop();
  await pause(1100);
  await hub.sql(`UPDATE person SET name = 'at hub, later' WHERE uuid = ?`, [id]);
  const config = await hub.writeConfig(dir);
  const importing = spokesync(['import', '--config', config, '--in', join(dir, 'site.usb'), '--reply', join(dir, 'hub.usb')]);
  await pause(3000);
  t.equal(await nameAt(hub, id), 'at hub, later', 'the import waits while capture has not journaled the local write');
  await hub.node.capture.start();
  const r = await importing;
  t.equal(r.code, 0, r.err);
  t.match(r.err, /working beside it/, 'the import ran beside the process holding the node');
  t.match(r.out, /applied 1, duplicates 0, quarantined 0, conflicts 1/);
  t.equal(await nameAt(hub, id), 'at hub, later', 'the newer local write won');

  await importFile(site.node.usb(), { in: join(dir, 'hub.usb') });
  t.equal(await nameAt(site, id), 'at hub, later', 'and reached the site with the reply');
});
