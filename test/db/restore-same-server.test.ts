// A node's data is restored from a backup onto its own server, whose binlog is
// kept (a damaged database, not a dead disk): the binlog after the backup's
// checkpoint shows the node's writes since and the restore itself, none of
// which may be captured. The node finds the reload, captures from the end of
// the binlog, and its parent sends again what it lost, its own changes included.
import t from 'tap';
import { stateTable } from '../../apply/core/state-schema.js';
import { readRestore } from '../../agent/routing/restore.js';
import { allCaughtUp, backupNode, restoreNode, settle, startNode, stopNode, uuid, type NetNode, type NodeSpec } from '../helpers/sync-net.js';

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

void t.test('a backup loaded into the node\'s own server is found and recovered from', async (t) => {
  const p = await startNode({ id: 'p', listen: true, children: [{ id: 'c', token: 'c-token-same-server' }] });
  t.teardown(() => stopNode(p));
  const cSpec: NodeSpec = { id: 'c', parent: { url: `http://127.0.0.1:${p.config.listen!.port}`, token: 'c-token-same-server' } };
  let c = await startNode(cSpec);
  t.teardown(() => stopNode(c));
  let n = 0;
  const write = async (node: NetNode): Promise<string> => {
    const id = uuid(`${node.id}s`, ++n);
    await node.sql('INSERT INTO person (uuid, name) VALUES (?, ?)', [id, `${node.id} ${n}`]);
    return id;
  };
  await write(p);
  await write(c);
  await settle([p, c], [c]);
  await allCaughtUp([p, c]);
  const backup = await backupNode(c);
  // the checkpoint table's creation time has one-second steps: the reload must be in a later second
  await pause(1100);
  for (let round = 0; round < 2; round++) {
    await write(p);
    await write(c);
    await settle([p, c], [c]);
  }
  const acked = await p.dump();

  c = await restoreNode(c, cSpec, backup, { sameServer: true });
  t.match(await readRestore(c.node.db, c.config.database.stateSchema), { reason: /state schema was loaded again/ }, 'the reload is found');
  await settle([p, c], [c]);
  t.same(await c.dump(), acked, 'the node holds again everything its parent had');
  t.same(await p.dump(), acked, 'and the restore itself was not captured: the parent got nothing new');
  for (const node of [p, c]) {
    const [r] = await node.node.db.query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM ${stateTable(node.config.database.stateSchema, 'conflicts')}`);
    t.equal(Number(r?.n), 0, `no conflicts at ${node.id}`);
  }
  const fresh = await write(c);
  await settle([p, c], [c]);
  t.ok((await p.dump()).person?.[fresh], 'a new write goes up');
});
