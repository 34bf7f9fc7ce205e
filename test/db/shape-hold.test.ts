// Table shapes that differ between nodes hold the change sets of that table
// (never round them, never stop the link): root ← mid ← leaf.
// - DECIMAL(8,4) at the leaf, DECIMAL(6,2) above: 1.2345 is held at mid, not
//   stored as 1.23; person keeps flowing both ways; once mid and root widen the
//   column the held change sets apply by themselves, in order.
// - a column added at root only: rows carrying its default flow down without
//   it; a row carrying another value is held (with the rows of that table
//   after it) until mid and leaf add the column; then all apply.
import t from 'tap';
import { nodeStatus } from '../../agent/routing/node-status.js';
import { settle, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

async function tree(t: { teardown(fn: () => unknown): void }): Promise<{ root: NetNode; mid: NetNode; leaf: NetNode; all: NetNode[]; kids: NetNode[] }> {
  const root = await startNode({ id: 'root', listen: true, children: [{ id: 'mid', token: 'mid-token-xyz' }] });
  t.teardown(() => stopNode(root));
  const mid = await startNode({
    id: 'mid', listen: true, parent: { url: `http://127.0.0.1:${root.config.listen!.port}`, token: 'mid-token-xyz' },
    children: [{ id: 'leaf', token: 'leaf-token-123' }],
  });
  t.teardown(() => stopNode(mid));
  const leaf = await startNode({ id: 'leaf', parent: { url: `http://127.0.0.1:${mid.config.listen!.port}`, token: 'leaf-token-123', compression: 'br' } });
  t.teardown(() => stopNode(leaf));
  return { root, mid, leaf, all: [root, mid, leaf], kids: [leaf, mid] };
}

const person = (n: NetNode, tag: string, i: number): Promise<unknown> =>
  n.sql(`INSERT INTO person (uuid, name) VALUES (?, ?)`, [uuid(tag, i), `${tag}${i}`]);

async function weight(n: NetNode, u: string): Promise<string | null | undefined> {
  const rows = await n.sql(`SELECT CAST(weight AS CHAR) AS w FROM visit WHERE uuid = ?`, [u]) as unknown[];
  const r = (rows as { w: string | null }[][]).flat().find((x) => x && typeof x === 'object' && 'w' in x);
  return r === undefined ? undefined : r.w;
}

async function count(n: NetNode, table: string): Promise<number> {
  const rows = (await n.sql(`SELECT COUNT(*) AS c FROM ${table}`) as { c: number | string }[][]).flat();
  return Number(rows.find((x) => x && typeof x === 'object' && 'c' in x)!.c);
}

void t.test('a narrower DECIMAL above holds the table, never rounds, and releases once widened', async (t) => {
  const { root, mid, leaf, all, kids } = await tree(t);
  await person(leaf, 'p', 1);
  await settle(all, kids);
  await leaf.sql(`ALTER TABLE visit MODIFY weight DECIMAL(8,4) NULL`);
  await leaf.sql(`INSERT INTO visit (uuid, person_id, weight) VALUES (?, (SELECT person_id FROM person WHERE uuid = ?), 1.2345)`, [uuid('v', 1), uuid('p', 1)]);
  await leaf.sql(`INSERT INTO visit (uuid, person_id, weight) VALUES (?, (SELECT person_id FROM person WHERE uuid = ?), 2.5)`, [uuid('v', 2), uuid('p', 1)]);
  await person(leaf, 'l', 1);
  await person(root, 'r', 1);
  await settle(all, kids);

  t.equal(await weight(mid, uuid('v', 1)), undefined, 'not at mid: held, not rounded');
  t.equal(await weight(root, uuid('v', 1)), undefined, 'not at root');
  t.equal(await count(mid, 'person'), 3, 'person flows up to mid');
  t.equal(await count(root, 'person'), 3, 'and to root');
  t.equal(await count(leaf, 'person'), 3, 'and down to the leaf');
  const s = await nodeStatus(mid.node.db, mid.config, mid.node.reader);
  t.equal(s.held.length, 1, 'status lists one held table');
  t.match(s.held[0], { peer: 'leaf', table: 'visit', count: 2, column: 'weight', here: 'DECIMAL(6,2)', there: 'DECIMAL(8,4)' });
  t.match(s.held[0]!.message, /held: 2 change sets for `visit` from leaf — column `weight` is DECIMAL\(6,2\) here and DECIMAL\(8,4\) at leaf; make the schemas match/);

  await root.sql(`ALTER TABLE visit MODIFY weight DECIMAL(8,4) NULL`);
  await mid.sql(`ALTER TABLE visit MODIFY weight DECIMAL(8,4) NULL`);
  await settle(all, kids);
  for (const n of all) {
    t.equal(await weight(n, uuid('v', 1)), '1.2345', `${n.id} holds 1.2345`);
    t.equal(await weight(n, uuid('v', 2)), '2.5000', `${n.id} holds 2.5`);
  }
  t.same((await nodeStatus(mid.node.db, mid.config, mid.node.reader)).held, [], 'nothing held any more');
  const dumps = await Promise.all(all.map((n) => n.dump()));
  t.same(dumps[1], dumps[0], 'mid = root');
  t.same(dumps[2], dumps[0], 'leaf = root');
});

void t.test('a column added at root only: defaults flow, other values wait for the column', async (t) => {
  const { root, mid, leaf, all, kids } = await tree(t);
  await root.sql(`ALTER TABLE person ADD COLUMN nickname VARCHAR(20) NULL DEFAULT 'none'`);
  await person(root, 'r', 1);
  await root.sql(`INSERT INTO person (uuid, name, nickname) VALUES (?, 'Robert', 'Bob')`, [uuid('r', 2)]);
  await person(root, 'r', 3);
  await person(leaf, 'l', 1);
  await root.sql(`INSERT INTO setting (property, value) VALUES ('a', 'b')`);
  await settle(all, kids);

  t.equal(await count(mid, 'person'), 2, "mid took root's first person (default nickname) and the leaf's");
  t.equal(await count(leaf, 'person'), 2, 'so did the leaf');
  t.equal(await count(root, 'person'), 4, 'the leaf reached root: the link runs');
  t.equal(await count(leaf, 'setting'), 1, 'other tables flow down');
  const s = await nodeStatus(mid.node.db, mid.config, mid.node.reader);
  t.match(s.held, [{ peer: 'root', table: 'person', count: 2, column: 'nickname', here: 'missing' }]);

  await mid.sql(`ALTER TABLE person ADD COLUMN nickname VARCHAR(20) NULL DEFAULT 'none'`);
  await leaf.sql(`ALTER TABLE person ADD COLUMN nickname VARCHAR(20) NULL DEFAULT 'none'`);
  // mid applies what it held when it next syncs; the leaf gets it on its sync after that
  await settle(all, kids);
  await settle(all, kids);
  for (const n of all) {
    t.equal(await count(n, 'person'), 4, `${n.id} has every person`);
    const rows = (await n.sql(`SELECT nickname FROM person WHERE uuid = ?`, [uuid('r', 2)]) as { nickname: string }[][]).flat();
    t.equal(rows.find((x) => x && typeof x === 'object' && 'nickname' in x)?.nickname, 'Bob', `${n.id}: Bob`);
  }
});
