// End to end over HTTP with real capture and apply: two nodes writing at the
// same time converge (every synced row equal by identity), through a link that
// cuts connections mid-request and mid-response; batches naming tables or
// columns this node does not sync are refused whole.
import t from 'tap';
import { gzipSync } from 'node:zlib';
import { encodeBatch } from '../../apply/codec/batch.js';
import type { ChangeSet } from '../../apply/core/model.js';
import { startProxy } from '../helpers/net-proxy.js';
import { raw } from '../helpers/exchange-rig.js';
import { dumpCounts } from '../../deploy/sandbox/identity-dump.js';
import { allCaughtUp, settle, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

async function writeSome(n: NetNode, tag: string, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const id = uuid(tag, i);
    await n.sql(
      `START TRANSACTION;
       INSERT INTO person (uuid, name, gender, born, photo) VALUES (?, ?, ?, '1990-01-02 03:04:05.123456', ?);
       INSERT INTO visit (uuid, person_id, note, weight) VALUES (?, LAST_INSERT_ID(), ?, '71.25');
       INSERT INTO patient (patient_id, allergy) SELECT person_id, NULL FROM person WHERE uuid = ?;
       INSERT INTO setting (property, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value);
       COMMIT;`,
      [id, `${tag} ${i} é✓`, i % 2 ? 'F' : 'M', Buffer.from([0, 255, i % 256]), uuid(`v${tag}`, i), `note ${i}\n`, id, `${tag}.last`, String(i)],
    );
  }
}

void t.test('two nodes, HTTP, real capture and apply', async (t) => {
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'leaf', token: 'leaf-token-e2e' }] });
  t.teardown(() => stopNode(hub));
  const hubUrl = `http://127.0.0.1:${hub.config.listen!.port}`;
  const proxy = await startProxy({ target: { host: '127.0.0.1', port: hub.config.listen!.port } });
  t.teardown(() => proxy.close());
  const leaf = await startNode({ id: 'leaf', parent: { url: proxy.url, token: 'leaf-token-e2e', batch: { records: 7, bytes: 64 * 1024 } } });
  t.teardown(() => stopNode(leaf));
  const both = [hub, leaf];

  await t.test('writing at the same time on both nodes converges', async (t) => {
    await Promise.all([writeSome(hub, 'h', 1, 20), writeSome(leaf, 'l', 1, 20)]);
    await settle(both, [leaf]);
    // now both edit shared rows at the same time: same row different columns, and the same column
    await Promise.all([
      hub.sql(`UPDATE person SET name = 'hub name', changed_at = '2026-01-01 00:00:00' WHERE uuid = ?`, [uuid('l', 3)]),
      leaf.sql(`UPDATE person SET gender = NULL WHERE uuid = ?`, [uuid('l', 3)]),
      hub.sql(`UPDATE visit SET weight = '80.00' WHERE uuid = ?`, [uuid('vh', 5)]),
      leaf.sql(`UPDATE visit SET weight = '81.50' WHERE uuid = ?`, [uuid('vh', 5)]),
      leaf.sql(`DELETE FROM visit WHERE uuid = ?`, [uuid('vl', 7)]),
      writeSome(leaf, 'l', 21, 5),
      writeSome(hub, 'h', 21, 5),
    ]);
    await settle(both, [leaf]);
    const [a, b] = [await hub.dump(), await leaf.dump()];
    t.same(dumpCounts(a), { patient: 50, person: 50, setting: 2, visit: 49 });
    t.same(a, b, 'every synced row equal by identity');
    t.equal(a.person?.[uuid('l', 3)]?.name, 'hub name', 'non-overlapping column edits merge');
    t.equal(a.person?.[uuid('l', 3)]?.gender, null);
    // ledgers: each node applied exactly the other's changes, once
    t.same(await hub.ledger(), await leaf.own(), 'hub ledger = leaf changes');
    t.same(await leaf.ledger(), await hub.own(), 'leaf ledger = hub changes');
  });

  await t.test('connections cut mid-request and mid-response: resumes and converges', async (t) => {
    await Promise.all([writeSome(hub, 'h', 100, 15), writeSome(leaf, 'l', 100, 15)]);
    await allCaughtUp(both);
    proxy.cutNext(
      { direction: 'up', afterBytes: 700 },
      { direction: 'down', afterBytes: 300 },
      { direction: 'down', afterBytes: 150 },
      { direction: 'up', afterBytes: 400 },
      { direction: 'down', afterBytes: 50 },
    );
    const cutsBefore = proxy.stats.cuts;
    await settle(both, [leaf]);
    t.equal(proxy.stats.cuts - cutsBefore, 5, 'all five cuts happened');
    const [a, b] = [await hub.dump(), await leaf.dump()];
    t.same(a, b, 'converged');
    t.equal(Object.keys(a.person ?? {}).length, 80);
    t.same(await hub.ledger(), await leaf.own(), 'each leaf change applied once on hub');
    t.same(await leaf.ledger(), await hub.own(), 'each hub change applied once on leaf');
    const [dup] = await hub.node.db.query<{ n: number }>(
      'SELECT COUNT(*) - COUNT(DISTINCT change_id) AS n FROM spokesync.journal',
    );
    t.equal(Number(dup?.n), 0, 'journal holds each change once');
  });

  await t.test('batches naming tables or columns missing here: taken and held, nothing applied; an unsynced table: 422', async (t) => {
    const before = await hub.dump();
    const ledgerBefore = await hub.ledger();
    const cs = (table: string, row: Record<string, string>, hlc: number): ChangeSet => ({
      id: `leaf:${hlc}`, origin: 'leaf', hlc: String(hlc), time: '2026-01-01T00:00:00Z',
      ops: [
        { kind: 'insert', table: 'person', id: uuid('x', hlc), row: { uuid: uuid('x', hlc), name: 'ok', gender: null, born: null, photo: null, changed_at: null } },
        { kind: 'insert', table, id: uuid('y', hlc), row },
      ],
    });
    const header = { version: 1 as const, from: 'leaf', to: 'hub', seq: '999001', ack: '0', more: false };
    const url = `${hubUrl}/v1/exchange`;
    const headers = { authorization: 'Bearer leaf-token-e2e', 'content-encoding': 'gzip' };
    const cases: [string, ChangeSet][] = [
      ['a table not in the schema', cs('nope', { uuid: uuid('y', 2) }, 2)],
      ['a column not in the schema', cs('visit', { uuid: uuid('y', 3), nope: '1' }, 3)],
    ];
    // a table this node has but does not sync: the configs differ, the batch is refused as before
    const unsynced = await raw(url, { headers, body: gzipSync(await encodeBatch(header, [{ seq: '999001', cs: cs('scratch', { uuid: uuid('y', 1), v: 'x' }, 1) }])) });
    t.equal(unsynced.status, 422, 'a table that exists but is not synced');
    t.match(unsynced.body.toString(), /^SPOKESYNC_E_UNKNOWN_TABLE: /);
    for (const [what, c] of cases) {
      const r = await raw(url, { headers, body: gzipSync(await encodeBatch(header, [{ seq: '999001', cs: c }])) });
      t.equal(r.status, 200, `${what}: taken (held, issue 15: it used to stop the link with 422)`);
    }
    const held = await hub.node.db.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM spokesync.held');
    t.equal(Number(held[0]!.n), 2, 'both held');
    await allCaughtUp([hub]);
    t.same(await hub.dump(), before, 'no row changed (not even the valid person op)');
    t.same(await hub.ledger(), ledgerBefore, 'ledger unchanged');
    t.equal((await raw(`${hubUrl}/v1/health`, { method: 'GET' })).status, 200, 'still serving');
  });
});
