// A three-level tree: root ← mid ← (leaf-a, leaf-b), writes at every node.
// Every node ends with the same synced rows; each ledger holds exactly the
// changes that originated elsewhere, each once; siblings reach each other
// through mid, and root's changes reach the leaves through mid. One-way tables
// and a child filter hold along the way.
import t from 'tap';
import { dumpCounts } from '../../deploy/sandbox/identity-dump.js';
import { registerPatients, settle, startNode, stopNode, uuid } from '../helpers/sync-net.js';


void t.test('three-level tree converges; each change applied once per node', async (t) => {
  const root = await startNode({
    id: 'root', listen: true, children: [{ id: 'mid', token: 'mid-token-xyz' }],
    direction: { setting: 'down' },
  });
  t.teardown(() => stopNode(root));
  const rootUrl = `http://127.0.0.1:${root.config.listen!.port}`;
  const mid = await startNode({
    id: 'mid', listen: true, parent: { url: rootUrl, token: 'mid-token-xyz', compression: 'br' },
    children: [
      { id: 'leaf-a', token: 'leaf-a-token-1' },
      // leaf-b does not take visits
      { id: 'leaf-b', token: 'leaf-b-token-2', tables: { include: ['*'], exclude: ['visit'] } },
    ],
    direction: { setting: 'down' },
  });
  t.teardown(() => stopNode(mid));
  const midUrl = `http://127.0.0.1:${mid.config.listen!.port}`;
  const leafA = await startNode({
    id: 'leaf-a', parent: { url: midUrl, token: 'leaf-a-token-1', batch: { records: 4, bytes: 4096 } }, direction: { setting: 'down' },
  });
  t.teardown(() => stopNode(leafA));
  const leafB = await startNode({
    id: 'leaf-b', parent: { url: midUrl, token: 'leaf-b-token-2', compression: 'none' }, direction: { setting: 'down' },
  });
  t.teardown(() => stopNode(leafB));
  const all = [root, mid, leafA, leafB];
  const children = [leafA, leafB, mid];

  await Promise.all([
    registerPatients(root, 'r', 1, 6),
    registerPatients(mid, 'm', 1, 5),
    registerPatients(leafA, 'a', 1, 8),
    registerPatients(leafB, 'b', 1, 7),
    root.sql(`INSERT INTO setting (property, value) VALUES ('root.only', 'down')`),
  ]);
  // a setting written at a leaf goes nowhere ('down' only); the one from root reaches everyone
  await leafA.sql(`INSERT INTO setting (property, value) VALUES ('leaf.local', 'stays')`);
  await settle(all, children);

  // edits of rows that came from elsewhere travel too: leaf-b edits root's person, root edits leaf-a's
  await leafB.sql(`UPDATE person SET name = 'renamed at leaf-b' WHERE uuid = ?`, [uuid('r', 2)]);
  await root.sql(`UPDATE person SET gender = 'M' WHERE uuid = ?`, [uuid('a', 5)]);
  await mid.sql(`DELETE FROM patient WHERE patient_id = (SELECT person_id FROM person WHERE uuid = ?)`, [uuid('b', 1)]);
  const passes = await settle(all, children);
  t.ok(passes <= 4, `settled in ${passes} passes`);

  const dumps = await Promise.all(all.map((n) => n.dump()));
  const [r, m, a, b] = dumps;
  const people = 6 + 5 + 8 + 7;
  t.same(dumpCounts(r!), { patient: people - 1, person: people, setting: 1, visit: people });
  t.same(m, r, 'mid = root');
  // leaf-a holds its local setting on top of everything else
  t.same({ ...a, setting: r!.setting }, r, 'leaf-a = root (but its own down-only setting)');
  t.same(Object.keys(a!.setting ?? {}).sort(), ['leaf.local', 'root.only']);
  t.same({ ...b, visit: r!.visit }, r, 'leaf-b = root, without visits');
  t.same(Object.keys(b!.visit ?? {}).sort(), Array.from({ length: 7 }, (_, i) => uuid('vb', i + 1)).sort(), 'leaf-b has only its own visits');
  t.equal(r!.person?.[uuid('r', 2)]?.name, 'renamed at leaf-b', 'a leaf edit reached root via mid');
  t.equal(a!.person?.[uuid('a', 5)]?.gender, 'M', 'a root edit reached the leaf via mid');

  // ledgers: every node applied each change that originated elsewhere exactly once
  // (the ledger key is the change id; here we check the set is exactly right)
  const own = await Promise.all(all.map((n) => n.own()));
  const everything = own.flat();
  t.equal(new Set(everything).size, everything.length, 'change ids are unique network-wide');
  const [localSetting] = await leafA.node.db.query<{ change_id: string }>(
    "SELECT change_id FROM spokesync.journal WHERE from_peer IS NULL AND tables = 'setting'",
  );
  t.ok(localSetting, 'the down-only change was journaled at leaf-a');
  for (const [i, n] of all.entries()) {
    const ledger = await n.ledger();
    const expected = everything.filter((id) => !own[i]!.includes(id) && id !== localSetting?.change_id).sort();
    t.same(ledger, expected, `${n.id}: ledger = every change from elsewhere that reaches it, once (${ledger.length})`);
  }
  const [midJournal] = await mid.node.db.query<{ n: number; d: number }>(
    'SELECT COUNT(*) AS n, COUNT(DISTINCT change_id) AS d FROM spokesync.journal',
  );
  t.equal(Number(midJournal?.n), Number(midJournal?.d), 'mid journaled each change once');
  const st = await mid.node.core.pending(mid.node.routeFor('root', 'parent'));
  t.equal(st, 0, 'nothing pending toward root');
});
