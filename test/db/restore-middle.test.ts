// A middle node's disk dies: it is restored from a backup of its two schemas
// taken a while before. Its parent sends again what it had sent since and the
// node's own change sets it took; its child does the same from its side, so the
// node's own change that reached only the child comes back too. Every node ends
// with the same rows, and new writes at the node reach both sides.
import t from 'tap';
import { stateTable } from '../../apply/core/state-schema.js';
import { readRestore } from '../../agent/routing/restore.js';
import { allCaughtUp, backupNode, restoreNode, settle, startNode, stopNode, uuid, type NetNode, type NodeSpec } from '../helpers/sync-net.js';

void t.test('a middle node restored from an old backup: its parent and its child each send again what it lost', async (t) => {
  const p = await startNode({ id: 'p', listen: true, children: [{ id: 'm', token: 'm-token-restore' }] });
  t.teardown(() => stopNode(p));
  const mSpec: NodeSpec = {
    id: 'm', listen: true, parent: { url: `http://127.0.0.1:${p.config.listen!.port}`, token: 'm-token-restore' }, children: [{ id: 'g', token: 'g-token-restore' }],
  };
  let m = await startNode(mSpec);
  t.teardown(() => stopNode(m));
  const g = await startNode({ id: 'g', parent: { url: `http://127.0.0.1:${m.config.listen!.port}`, token: 'g-token-restore' } });
  t.teardown(() => stopNode(g));
  const all = (): NetNode[] => [p, m, g];
  const children = (): NetNode[] => [g, m];
  let n = 0;
  const write = async (node: NetNode): Promise<string> => {
    const id = uuid(`${node.id}x`, ++n);
    await node.sql('INSERT INTO person (uuid, name) VALUES (?, ?)', [id, `${node.id} ${n}`]);
    return id;
  };
  for (const node of all()) await write(node);
  await settle(all(), children());
  await allCaughtUp(all());
  const backup = await backupNode(m);
  for (let round = 0; round < 2; round++) {
    for (const node of all()) await write(node);
    await settle(all(), children());
  }
  // m's last writes: one reached its parent and its child, the other only its child
  const onlyUp = await write(m);
  await allCaughtUp(all());
  await m.node.syncWithParent();
  const onlyDown = await write(m);
  await settle(all(), [g]);
  const expected = await p.dump();
  t.ok(expected.person?.[onlyUp] && !expected.person?.[onlyDown], 'the parent has one of m\'s last writes, not the other');
  t.ok((await g.dump()).person?.[onlyDown], 'the child has both');

  m = await restoreNode(m, mSpec, backup);
  t.ok(await readRestore(m.node.db, m.config.database.stateSchema), 'the middle node finds its restore');
  await settle(all(), children());
  const end = await p.dump();
  t.ok(end.person?.[onlyUp] && end.person?.[onlyDown], 'both of m\'s last writes are everywhere');
  t.same(await m.dump(), end, 'the middle node holds everything again');
  t.same(await g.dump(), end, 'its child too');
  for (const node of all()) {
    const [c] = await node.node.db.query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM ${stateTable(node.config.database.stateSchema, 'conflicts')}`);
    t.equal(Number(c?.n), 0, `no conflicts at ${node.id}`);
  }
  const fresh = await write(m);
  await settle(all(), children());
  t.ok((await p.dump()).person?.[fresh] && (await g.dump()).person?.[fresh], 'a new write at the middle node reaches both sides');
});
