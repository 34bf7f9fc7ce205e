// A discard is never silent: the child reports it to its parent (POST
// /v1/discards), the parent records it under the child and shows it in its
// status; reported once, and nothing is sent or written when nothing is new.
import t from 'tap';
import { openDb } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { ExchangeServer } from '../../agent/exchange/http-server.js';
import { registerDiscardRoute, reportDiscards } from '../../agent/exchange/discard-report.js';
import { routeTo } from '../../agent/routing/filters.js';
import type { ParentConfig } from '../../agent/config/types.js';
import { discard, listDiscards } from '../../apply/replay/quarantine.js';
import { startServer } from '../../deploy/sandbox/mariadb.js';
import { nodeConfig, rigNode } from '../helpers/exchange-rig.js';

const TOKEN = 'leaf-token-q7';

void t.test('a child reports its discards to the parent, once', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const hubConfig = nodeConfig('hub', { children: [{ id: 'leaf', token: TOKEN }] });
  const hub = await rigNode(db, hubConfig);
  const leaf = await rigNode(db, nodeConfig('leaf'));
  const server = new ExchangeServer({
    listen: { host: '127.0.0.1', port: 0, maxBodyBytes: 64 * 1024, maxInflatedBytes: 256 * 1024 },
    children: hubConfig.children, core: hub.core, routeFor: (c) => routeTo(hubConfig, c, 'child'), log: silentLogger,
  });
  registerDiscardRoute(server, { db, stateSchema: hub.stateSchema, log: silentLogger });
  await server.start();
  t.teardown(() => server.stop());
  const parent: ParentConfig = {
    url: server.url, token: TOKEN, interval: 60_000, timeout: 10_000, maxTries: 1, compression: 'none', batch: { records: 10, bytes: 65536 },
  };

  t.equal(await reportDiscards(db, leaf.stateSchema, 'leaf', parent, silentLogger), 0, 'nothing discarded: nothing sent');

  await db.exec(
    `INSERT INTO ${leaf.stateSchema}.quarantine (change_id, origin, from_peer, hlc, received_at, last_try, tries, reason, waits_for, body)
     VALUES ('musha:65536', 'musha', 'hub', 65536, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 4, 'a value is too long for its column: table person, column gender, op 1 of 1 (server error 1406)', NULL, '<cs/>')`);
  t.ok(await discard(db, leaf.stateSchema, 'leaf', 'musha:65536', 'ops', 'codes are one letter here', Date.now()));
  t.equal(await reportDiscards(db, leaf.stateSchema, 'leaf', parent, silentLogger), 1, 'the discard goes up');
  t.equal(await reportDiscards(db, leaf.stateSchema, 'leaf', parent, silentLogger), 0, 'once');

  const there = await listDiscards(db, hub.stateSchema);
  t.match(there, {
    count: 1,
    entries: [{ node: 'leaf', changeId: 'musha:65536', origin: 'musha', fromPeer: 'hub', tables: [], tries: 4, discardedBy: 'ops', why: 'codes are one letter here', reportedAt: /^\d{4}-/ }],
  }, 'the parent records it under the child');
  const here = await listDiscards(db, leaf.stateSchema);
  t.match(here.entries[0], { node: 'leaf', reportedAt: /^\d{4}-/ }, 'the child notes that the parent took it');

  // a parent without the route (older version): 404, the report waits
  const old = new ExchangeServer({
    listen: { host: '127.0.0.1', port: 0, maxBodyBytes: 64 * 1024, maxInflatedBytes: 256 * 1024 },
    children: hubConfig.children, core: hub.core, routeFor: (c) => routeTo(hubConfig, c, 'child'), log: silentLogger,
  });
  await old.start();
  t.teardown(() => old.stop());
  await db.exec(
    `INSERT INTO ${leaf.stateSchema}.quarantine (change_id, origin, from_peer, hlc, received_at, last_try, tries, reason, waits_for, body)
     VALUES ('musha:131072', 'musha', 'hub', 131072, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1, 'r', NULL, '<cs/>')`);
  await discard(db, leaf.stateSchema, 'leaf', 'musha:131072', 'ops', 'test', Date.now());
  t.equal(await reportDiscards(db, leaf.stateSchema, 'leaf', { ...parent, url: old.url }, silentLogger), 0);
  const [w] = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${leaf.stateSchema}.discards WHERE reported_at IS NULL`);
  t.equal(Number(w?.n), 1, 'kept unreported for a parent that takes it');
});
