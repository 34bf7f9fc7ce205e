// A child restored from an old backup whose only link to its parent after the
// restore is a USB stick: the child's file says it was restored, the parent's
// reply carries what it had sent since and the child's own change sets, and
// the child takes them back from the file.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportFile, importFile } from '../../agent/usb/transfer.js';
import { readRestore } from '../../agent/routing/restore.js';
import { allCaughtUp, backupNode, restoreNode, settle, startNode, stopNode, uuid, type NetNode, type NodeSpec } from '../helpers/sync-net.js';

void t.test('a restored child recovers over USB files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-restore-usb-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const p = await startNode({ id: 'p', listen: true, children: [{ id: 'c', token: 'c-token-restore-usb' }] });
  t.teardown(() => stopNode(p));
  const cSpec: NodeSpec = { id: 'c', parent: { url: `http://127.0.0.1:${p.config.listen!.port}`, token: 'c-token-restore-usb' } };
  let c = await startNode(cSpec);
  t.teardown(() => stopNode(c));
  let n = 0;
  const write = async (node: NetNode): Promise<string> => {
    const id = uuid(`${node.id}u`, ++n);
    await node.sql('INSERT INTO person (uuid, name) VALUES (?, ?)', [id, `${node.id} ${n}`]);
    return id;
  };
  await write(p);
  await write(c);
  await settle([p, c], [c]);
  await allCaughtUp([p, c]);
  const backup = await backupNode(c);
  for (let round = 0; round < 2; round++) {
    await write(p);
    await write(c);
    await settle([p, c], [c]);
  }
  const acked = await p.dump();

  c = await restoreNode(c, cSpec, backup);
  t.ok(await readRestore(c.node.db, c.config.database.stateSchema));
  // two trips of the stick: the first tells the parent, the second brings back the rest and the acks
  for (let trip = 1; trip <= 2; trip++) {
    await allCaughtUp([p, c]);
    await exportFile(c.node.usb(), { out: join(dir, `c-${trip}.usb`) });
    await importFile(p.node.usb(), { in: join(dir, `c-${trip}.usb`), reply: join(dir, `p-${trip}.usb`) });
    await importFile(c.node.usb(), { in: join(dir, `p-${trip}.usb`) });
  }
  t.same(await c.dump(), acked, 'everything the parent had acknowledged is back at the child');
  t.same(await p.dump(), acked, 'the parent took nothing twice');
});
