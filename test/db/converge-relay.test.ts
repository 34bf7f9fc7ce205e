// Convergence across relays: for every column, every node ends with the value of
// the highest version written anywhere, whatever the order and path of delivery.
// Tree: root ← mid ← leaf1, and root ← leaf3. A relay (root here) that applies a
// newer write whose value it already holds must still forward that write's
// version, or the nodes behind it keep an older value for good.
import t, { type Test } from 'tap';
import { settle, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The rows of one SELECT on a node (its sql() runs `USE app` first). */
async function select<R>(n: NetNode, sql: string, params?: unknown[]): Promise<R[]> {
  const results = (await n.sql(sql, params)) as unknown[];
  return results[results.length - 1] as R[];
}

async function nameAt(n: NetNode, id: string): Promise<string | undefined> {
  return (await select<{ name: string }>(n, 'SELECT name FROM person WHERE uuid = ?', [id]))[0]?.name;
}

void t.test('a relay forwards the version of a column it already held', async (t) => {
  const root = await startNode({
    id: 'root', listen: true, children: [{ id: 'mid', token: 'mid-token-relay' }, { id: 'leaf3', token: 'leaf3-token-relay' }],
  });
  t.teardown(() => stopNode(root));
  const rootUrl = `http://127.0.0.1:${root.config.listen!.port}`;
  const mid = await startNode({
    id: 'mid', listen: true, parent: { url: rootUrl, token: 'mid-token-relay' }, children: [{ id: 'leaf1', token: 'leaf1-token-relay' }],
  });
  t.teardown(() => stopNode(mid));
  const leaf1 = await startNode({ id: 'leaf1', parent: { url: `http://127.0.0.1:${mid.config.listen!.port}`, token: 'leaf1-token-relay' } });
  t.teardown(() => stopNode(leaf1));
  const leaf3 = await startNode({ id: 'leaf3', parent: { url: rootUrl, token: 'leaf3-token-relay' } });
  t.teardown(() => stopNode(leaf3));
  const all = [root, mid, leaf1, leaf3];
  const children = [leaf1, leaf3, mid];
  const id = uuid('relay', 1);

  // v0 everywhere
  await root.sql(`INSERT INTO person (uuid, name) VALUES (?, 'v0')`, [id]);
  await settle(all, children);
  // leaf1 writes v1; it reaches mid and root (leaf3 stays away)
  await pause(1100);
  await leaf1.sql(`UPDATE person SET name = 'v1' WHERE uuid = ?`, [id]);
  await settle(all, [leaf1, mid]);
  t.equal(await nameAt(root, id), 'v1');
  // the mid → root link stalls; leaf1 writes v2, which reaches mid only
  await pause(1100);
  await leaf1.sql(`UPDATE person SET name = 'v2' WHERE uuid = ?`, [id]);
  await settle(all, [leaf1]);
  t.equal(await nameAt(mid, id), 'v2');
  // leaf3, still at v0, writes v1: the newest write of all
  await pause(1100);
  await leaf3.sql(`UPDATE person SET name = 'v1' WHERE uuid = ?`, [id]);
  await settle(all, [leaf3]);
  // the link comes back
  await settle(all, children);

  const names = await Promise.all(all.map((n) => nameAt(n, id)));
  t.same(names, ['v1', 'v1', 'v1', 'v1'], 'every node holds the newest write (root, mid, leaf1, leaf3)');
  await same(t, all);

  // A delete that reaches a relay which had deleted the row already still carries its
  // (newer) tombstone on: an insert older than it must lose everywhere.
  await root.sql(`INSERT INTO setting (property, value) VALUES ('k', 'a')`);
  await settle(all, children);
  await mid.sql(`DELETE FROM setting WHERE property = 'k'`);
  await settle(all, [mid, leaf1]);
  await pause(1100);
  await leaf1.sql(`INSERT INTO setting (property, value) VALUES ('k', 'b')`);
  await pause(1100);
  // leaf3 has not heard of either: it deletes its 'a', the newest write of all
  await leaf3.sql(`DELETE FROM setting WHERE property = 'k'`);
  await settle(all, [leaf3]);
  await settle(all, children);
  const values = await Promise.all(all.map(async (n) => (await select(n, `SELECT value FROM setting WHERE property = 'k'`)).length));
  t.same(values, [0, 0, 0, 0], 'the newest write (a delete) wins on every node');
  await same(t, all);

  // A key inserted and deleted at leaf1, then inserted again at root later: the newest
  // insert wins whether a node sees the delete first (mid) or the insert first (root).
  await leaf1.sql(`INSERT INTO setting (property, value) VALUES ('k2', 'y')`);
  await leaf1.sql(`DELETE FROM setting WHERE property = 'k2'`);
  await settle(all, [leaf1]);
  await pause(1100);
  await root.sql(`INSERT INTO setting (property, value) VALUES ('k2', 'y')`);
  await settle(all, children);
  const again = await Promise.all(all.map(async (n) => (await select(n, `SELECT value FROM setting WHERE property = 'k2'`)).length));
  t.same(again, [1, 1, 1, 1], 'the newest write (an insert) wins on every node');
  await same(t, all);
});

async function same(t: Test, all: readonly NetNode[]): Promise<void> {
  const dumps = await Promise.all(all.map((n) => n.dump()));
  for (let i = 1; i < dumps.length; i++) t.same(dumps[i], dumps[0], `${all[i]!.id} = ${all[0]!.id}`);
}

