// A conflict record credits each side to the node that wrote it: the version
// inside the change (or the row's stored version here), never the peer that
// delivered it nor the node applying it. Every write below puts its writer's id
// in the value, so each recorded side can be checked against the true writer,
// on every node of a two- and a three-level tree.
import t, { type Test } from 'tap';
import { settle, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

interface Version { hlc: string; node: string }
interface Recorded {
  node: string;
  kind: string;
  identity: string;
  outcome: string;
  local: { values?: Record<string, unknown>; versions?: Record<string, Version | null>; deleted?: Version | null };
  remote: { set?: Record<string, unknown>; row?: Record<string, unknown>; version: Version };
}

/** The writer named in a value written by this test (`<node>:<tag>`), or undefined for other values. */
const writerOf = (v: unknown): string | undefined => (typeof v === 'string' && v.includes(':') ? v.split(':')[0] : undefined);

async function conflictsAt(n: NetNode): Promise<Recorded[]> {
  const rows = await n.node.db.query<{ kind: string; identity: string; outcome: string; local_version: string; remote_version: string }>(
    'SELECT kind, identity, outcome, local_version, remote_version FROM spokesync.conflicts ORDER BY id');
  return rows.map((r) => ({
    node: n.id, kind: r.kind, identity: r.identity, outcome: r.outcome,
    local: JSON.parse(r.local_version) as Recorded['local'], remote: JSON.parse(r.remote_version) as Recorded['remote'],
  }));
}

/** Every side of every record names its true writer; returns how many sides were checked. */
function checkCredits(t: Test, records: readonly Recorded[], deleters: ReadonlyMap<string, string>): number {
  let checked = 0;
  for (const r of records) {
    const where = `${r.node}: ${r.kind} ${r.identity} (${r.outcome})`;
    for (const [col, v] of Object.entries(r.local.values ?? {})) {
      const writer = writerOf(v);
      if (writer === undefined) continue;
      t.equal(r.local.versions?.[col]?.node, writer, `${where}: the local ${col} ${JSON.stringify(v)} is credited to its writer`);
      checked++;
    }
    if (r.local.deleted) {
      t.equal(r.local.deleted.node, deleters.get(r.identity), `${where}: the local delete is credited to the node that deleted the row`);
      checked++;
    }
    const carried = Object.values(r.remote.set ?? r.remote.row ?? {}).map(writerOf).filter((w) => w !== undefined);
    const remoteWriter = carried[0] ?? deleters.get(r.identity);
    t.equal(r.remote.version.node, remoteWriter, `${where}: the incoming side is credited to the node that wrote it`);
    checked++;
  }
  return checked;
}

async function person(n: NetNode, id: string, name: string): Promise<void> {
  await n.sql('INSERT INTO person (uuid, name) VALUES (?, ?)', [id, name]);
}

async function rename(n: NetNode, id: string, tag: string): Promise<void> {
  await n.sql('UPDATE person SET name = ? WHERE uuid = ?', [`${n.id}:${tag}`, id]);
  await n.node.capture.caughtUp(60_000);
}

void t.test('two levels: parent and child edit the same column; each record names the true writers', async (t) => {
  const parent = await startNode({ id: 'p', listen: true, children: [{ id: 'c', token: 'c-token-123456' }] });
  t.teardown(() => stopNode(parent));
  const child = await startNode({ id: 'c', parent: { url: `http://127.0.0.1:${parent.config.listen!.port}`, token: 'c-token-123456' } });
  t.teardown(() => stopNode(child));
  const all = [parent, child];
  const x = uuid('x', 1);
  const y = uuid('y', 1);
  await person(parent, x, 'first');
  await person(parent, y, 'first');
  await settle(all, [child]);

  // x: the parent writes first, the child later; y: the other way round
  await rename(parent, x, 'x');
  await rename(child, x, 'x');
  await rename(child, y, 'y');
  await rename(parent, y, 'y');
  await settle(all, [child]);

  const [pd, cd] = await Promise.all([parent.dump(), child.dump()]);
  t.same(pd, cd, 'both nodes hold the same rows');
  const records = [...await conflictsAt(parent), ...await conflictsAt(child)];
  t.equal(records.filter((r) => r.identity === x).length, 2, 'the conflict on x is recorded at both nodes');
  t.equal(records.filter((r) => r.identity === y).length, 2, 'the conflict on y is recorded at both nodes');
  t.ok(checkCredits(t, records, new Map()) >= 8, 'both sides of each record were checked');
});

void t.test('three levels: edits at root, mid and leaves, carried through mid; each record names the true writers', async (t) => {
  const root = await startNode({ id: 'root', listen: true, children: [{ id: 'mid', token: 'mid-token-xyz' }] });
  t.teardown(() => stopNode(root));
  const mid = await startNode({
    id: 'mid', listen: true, parent: { url: `http://127.0.0.1:${root.config.listen!.port}`, token: 'mid-token-xyz' },
    children: [{ id: 'leaf-a', token: 'leaf-a-token-1' }, { id: 'leaf-b', token: 'leaf-b-token-2' }],
  });
  t.teardown(() => stopNode(mid));
  const midUrl = `http://127.0.0.1:${mid.config.listen!.port}`;
  const leafA = await startNode({ id: 'leaf-a', parent: { url: midUrl, token: 'leaf-a-token-1' } });
  t.teardown(() => stopNode(leafA));
  const leafB = await startNode({ id: 'leaf-b', parent: { url: midUrl, token: 'leaf-b-token-2' } });
  t.teardown(() => stopNode(leafB));
  const all = [root, mid, leafA, leafB];
  const children = [leafA, leafB, mid];
  const ids = { x: uuid('x', 2), y: uuid('y', 2), z: uuid('z', 2), w: uuid('w', 2) };
  for (const id of Object.values(ids)) await person(root, id, 'first');
  await settle(all, children);

  await rename(root, ids.x, 'x'); // root, then a leaf two levels down
  await rename(leafA, ids.x, 'x');
  await rename(leafB, ids.y, 'y'); // siblings, through mid
  await rename(leafA, ids.y, 'y');
  await rename(mid, ids.z, 'z'); // the relay itself, then root
  await rename(root, ids.z, 'z');
  await root.sql('DELETE FROM person WHERE uuid = ?', [ids.w]); // a delete at root, an edit at a leaf
  await rename(leafB, ids.w, 'w');
  await settle(all, children);

  const dumps = await Promise.all(all.map((n) => n.dump()));
  for (const [i, d] of dumps.entries()) t.same(d, dumps[0], `${all[i]!.id} holds the same rows as root`);
  const records = (await Promise.all(all.map(conflictsAt))).flat();
  for (const id of Object.values(ids)) t.ok(records.some((r) => r.identity === id), `a conflict on ${id} is recorded`);
  const checked = checkCredits(t, records, new Map([[ids.w, 'root']]));
  t.ok(checked >= 2 * records.length, `both sides of each of ${records.length} records were checked (${checked})`);
});
