// A clinic's disk dies and the node is restored from a backup of its two
// schemas (mariadb-dump of the application and the state schema) taken a while
// before, onto a new server. Its peers acknowledged more than the backup holds:
// the parent sends again what it had sent since, the node's own change sets that
// reached the parent come back to it, new changes go up with fresh ids, and
// nothing is applied twice. No re-clone.
import t from 'tap';
import { createLogger } from '../../apply/core/log.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { formatStatus, nodeStatus } from '../../agent/routing/node-status.js';
import { INCARNATION_KEY, readRestore } from '../../agent/routing/restore.js';
import { getMeta } from '../../agent/routing/cursors.js';
import { encodeBatch } from '../../apply/codec/batch.js';
import { raw } from '../helpers/exchange-rig.js';
import { allCaughtUp, backupNode, restoreNode, settle, startNode, stopNode, uuid, type NetNode, type NodeSpec } from '../helpers/sync-net.js';

const TOKEN = 'c-token-restore-1';

async function count(n: NetNode, sql: string, params: unknown[] = []): Promise<number> {
  const [r] = await n.node.db.query<{ n: string | number }>(sql, params);
  return Number(r?.n ?? 0);
}

void t.test('a child restored from an old backup gets back what its parent acknowledged', async (t) => {
  const logs: string[] = [];
  const p = await startNode({ id: 'p', listen: true, children: [{ id: 'c', token: TOKEN }], log: createLogger({ level: 'info', write: (l) => logs.push(l) }) });
  t.teardown(() => stopNode(p));
  const cSpec: NodeSpec = { id: 'c', parent: { url: `http://127.0.0.1:${p.config.listen!.port}`, token: TOKEN } };
  let c = await startNode(cSpec);
  t.teardown(() => stopNode(c));
  const ss = c.config.database.stateSchema;
  let n = 0;
  const person = async (node: NetNode, what: string): Promise<string> => {
    const id = uuid(`${node.id}${what}`, ++n);
    await node.sql('INSERT INTO person (uuid, name) VALUES (?, ?)', [id, `${node.id} ${what} ${n}`]);
    await node.sql('INSERT INTO visit (uuid, person_id, note) SELECT ?, person_id, ? FROM person WHERE uuid = ?', [uuid(`v${node.id}`, n), what, id]);
    return id;
  };

  // before the backup: both sides write and sync
  const early = [await person(p, 'a'), await person(c, 'a'), await person(c, 'a')];
  await settle([p, c], [c]);
  await allCaughtUp([p, c]);
  const backup = await backupNode(c);
  const fromCAtBackup = await count(p, `SELECT COUNT(*) AS n FROM ${stateTable(ss, 'ledger')} WHERE origin = 'c'`);

  // after it: both keep writing and syncing for a while
  await c.sql(`UPDATE person SET name = 'renamed after the backup' WHERE uuid = ?`, [early[1]]);
  await p.sql(`INSERT INTO setting (property, value) VALUES ('after.backup', 'p')`);
  for (let round = 0; round < 3; round++) {
    await person(p, 'b');
    await person(c, 'b');
    await settle([p, c], [c]);
  }
  await c.sql(`DELETE FROM visit WHERE person_id = (SELECT person_id FROM person WHERE uuid = ?)`, [early[2]]);
  await settle([p, c], [c]);
  const acked = await p.dump();
  t.same(await c.dump(), acked, 'before the failure both nodes agree');
  const pLedgerFromC = await count(p, `SELECT COUNT(*) AS n FROM ${stateTable(ss, 'ledger')} WHERE origin = 'c'`);

  // the disk dies; the backup goes onto a new server
  c = await restoreNode(c, cSpec, backup);
  const rec = await readRestore(c.node.db, ss);
  t.ok(rec, 'the restore is found when capture starts');
  t.not(rec?.incarnation.after, rec?.incarnation.before, 'the node takes a new incarnation');
  const st = await nodeStatus(c.node.db, c.config, c.node.reader);
  t.ok(st.restore, 'status says the node was restored');
  t.match(formatStatus(st), /restored from a backup: found .* capture started at mysql-bin/);

  await settle([p, c], [c]);
  t.same(await c.dump(), acked, 'every row the parent had acknowledged is back at the restored child');
  t.same(await p.dump(), acked, 'the parent lost nothing and took nothing twice');
  t.equal(await count(p, `SELECT COUNT(*) AS n FROM ${stateTable(ss, 'ledger')} WHERE origin = 'c'`), pLedgerFromC,
    'what the child sent again was taken as duplicates');
  t.ok(logs.some((l) => l.includes('peer restored from a backup')), 'the parent logs the restore');
  t.equal((await nodeStatus(c.node.db, c.config, c.node.reader)).restore?.ownBack, pLedgerFromC - fromCAtBackup,
    'every change set the child made after the backup and the parent took came back to it');
  t.equal(await count(c, `SELECT COUNT(*) AS n FROM ${stateTable(ss, 'journal')} WHERE origin = 'c' AND from_peer = 'p'`), pLedgerFromC - fromCAtBackup,
    'and is in its journal again, as its own, come from the parent (so it never goes up again)');
  const pst = await nodeStatus(p.node.db, p.config, p.node.reader);
  t.ok(pst.peers.find((x) => x.peer === 'c')?.restore, 'the parent\'s status shows the child restored');
  t.match(formatStatus(pst), /c was restored from a backup \(seen .*\): its cursor went back from \d+ to \d+/);

  // new writes at the restored child go up with fresh ids
  const fresh = await person(c, 'new');
  await c.sql(`UPDATE person SET name = 'edited after the restore' WHERE uuid = ?`, [early[0]]);
  await settle([p, c], [c]);
  const end = await p.dump();
  t.same(await c.dump(), end, 'both nodes agree after new writes');
  t.ok(end.person?.[fresh], 'the new row reached the parent');
  t.equal(end.person?.[early[0]!]?.name, 'edited after the restore');
  for (const node of [p, c]) {
    t.equal(await count(node, `SELECT COUNT(*) AS n FROM ${stateTable(ss, 'conflicts')}`), 0, `no conflicts at ${node.id}: nothing applied twice`);
    t.equal(await count(node, `SELECT COUNT(*) AS n FROM ${stateTable(ss, 'quarantine')}`), 0, `nothing quarantined at ${node.id}`);
  }
  const last = (await nodeStatus(c.node.db, c.config, c.node.reader)).peers.find((x) => x.peer === 'p');
  t.equal(last?.lastResult, 'ok', 'the child\'s exchanges end well');

  // what is not a restore is still refused
  const pInc = (await getMeta(p.node.db, ss, INCARNATION_KEY))!;
  const cInc = (await getMeta(c.node.db, ss, INCARNATION_KEY))!;
  const forged = await raw(`http://127.0.0.1:${p.config.listen!.port}/v1/exchange`, {
    headers: { authorization: `Bearer ${TOKEN}` },
    body: await encodeBatch({ version: 1, from: 'c', to: 'p', seq: '1', ack: '999999', more: false, inc: cInc, rinc: pInc }, []),
  });
  t.equal(forged.status, 409, 'an ack above what the parent sent, of its own incarnation, is refused as before');
  t.match(forged.body.toString(), /^SPOKESYNC_E_ACK/);
  // an hour before the backup's clock: no change set of c has that stamp
  const before = String(BigInt(rec!.hlc) - (3_600_000n << 16n));
  const own = {
    id: `c:${before}`, origin: 'c', hlc: before, time: '2026-01-01T00:00:00Z',
    ops: [{ kind: 'insert' as const, table: 'person', id: uuid('forged', 1), row: { uuid: uuid('forged', 1), name: 'forged', gender: null, born: null, photo: null, changed_at: null } }],
  };
  await t.rejects(c.node.core.take('p', { version: 1, from: 'p', to: 'c', seq: '1', ack: '0', more: false }, [{ seq: '1', cs: own }]),
    { code: 'SPOKESYNC_E_ORIGIN' }, 'a change set of the node\'s own stamped before the backup\'s clock (not lost in the restore) is refused');
});
