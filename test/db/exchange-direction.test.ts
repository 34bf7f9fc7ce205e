// One-way tables (tables.direction) hold on the receiving side too: when two
// nodes' configs disagree, a change on a table that may not come from that
// peer is refused with a clear error, nothing of the batch is applied, and the
// sender keeps the change for when the configs agree.
import t from 'tap';
import { allCaughtUp, startNode, stopNode, uuid } from '../helpers/sync-net.js';

void t.test('a one-way table is refused from the wrong side, and nothing is lost', async (t) => {
  // kigali: settings flow only down; its child believes they flow both ways
  const parent = await startNode({ id: 'kigali', listen: true, children: [{ id: 'butaro', token: 'butaro-token-1' }], direction: { setting: 'down' } });
  t.teardown(() => stopNode(parent));
  const child = await startNode({
    id: 'butaro', parent: { url: `http://127.0.0.1:${parent.config.listen!.port}`, token: 'butaro-token-1', maxTries: 2 },
  });
  t.teardown(() => stopNode(child));

  await child.sql(`INSERT INTO person (uuid, name, gender) VALUES (?, 'Aline', 'F')`, [uuid('p', 1)]);
  await child.sql(`INSERT INTO setting (property, value) VALUES ('site.only', 'x')`);
  await allCaughtUp([parent, child]);
  const route = child.node.routeFor('kigali', 'parent');
  t.equal(await child.node.core.pending(route), 2, 'the child sends both (its config has no direction)');

  await t.rejects(child.node.syncWithParent(), { code: 'SPOKESYNC_E_UNKNOWN_TABLE', message: /"setting".*only down \(parent to child\)/ });
  const dump = await parent.dump();
  t.same(Object.keys(dump.person ?? {}), [], 'nothing of the batch was applied at the parent');
  t.same(Object.keys(dump.setting ?? {}), []);
  t.same(await parent.ledger(), []);
  t.equal(await child.node.core.pending(route), 2, 'the child still holds both changes');
  const [contact] = await child.node.db.query<{ last_result: string }>("SELECT last_result FROM spokesync.peers WHERE peer = 'kigali'");
  t.match(contact?.last_result, /^SPOKESYNC_E_UNKNOWN_TABLE/, 'status shows why');
});

void t.test('and from the parent: a child refuses an up-only table its parent sends', async (t) => {
  const parent = await startNode({ id: 'kigali', listen: true, children: [{ id: 'rwinkwavu', token: 'rwinkwavu-token-2' }] });
  t.teardown(() => stopNode(parent));
  const child = await startNode({
    id: 'rwinkwavu', parent: { url: `http://127.0.0.1:${parent.config.listen!.port}`, token: 'rwinkwavu-token-2', maxTries: 2 },
    direction: { setting: 'up' },
  });
  t.teardown(() => stopNode(child));
  await parent.sql(`INSERT INTO setting (property, value) VALUES ('central', 'y')`);
  await allCaughtUp([parent, child]);
  await t.rejects(child.node.syncWithParent(), { code: 'SPOKESYNC_E_UNKNOWN_TABLE', message: /"setting".*only up \(child to parent\)/ });
  t.same(Object.keys((await child.dump()).setting ?? {}), [], 'not applied');
  t.equal(await parent.node.core.pending(parent.node.routeFor('rwinkwavu', 'child')), 1, 'the parent still holds it for the child');
});
