// A discard is never silent over USB either: the child's export file carries
// its unreported discards, the parent's import records them under the child
// (once, however often the file is imported), and the child marks them
// reported only when a file from the parent lists them. An older node reads
// such a file's batch as before.
import t from 'tap';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { openDb, type Db } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { decodeBatch } from '../../apply/codec/batch.js';
import { routeTo } from '../../agent/routing/filters.js';
import { exportFile, importFile, type UsbDeps } from '../../agent/usb/transfer.js';
import { open } from '../../agent/usb/usb-file.js';
import { discard, listDiscards } from '../../apply/replay/quarantine.js';
import { startServer } from '../../deploy/sandbox/mariadb.js';
import { nodeConfig, rigNode, type RigNode } from '../helpers/exchange-rig.js';

const TOKEN = 'leaf-token-usb-d';

function deps(db: Db, n: RigNode): UsbDeps {
  return { config: n.config, db, core: n.core, routeFor: (peer, role) => routeTo(n.config, peer, role), log: silentLogger };
}

/** The batch in a file, read the way a node without discard fields reads it: gunzip, then the batch. */
async function plainBatch(path: string): ReturnType<typeof decodeBatch> {
  const parts: Buffer[] = [];
  for await (const item of open(createReadStream(path), () => TOKEN)) if (item.type === 'data') parts.push(item.data);
  return decodeBatch(gunzipSync(Buffer.concat(parts)));
}

void t.test('USB files carry discard reports up and their acknowledgement down', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-usb-d-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const f = (name: string) => join(dir, name);
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const hub = await rigNode(db, nodeConfig('hub', { children: [{ id: 'leaf', token: TOKEN }] }));
  const leaf = await rigNode(db, nodeConfig('leaf', {
    parent: { url: 'http://127.0.0.1:9', token: TOKEN, interval: 60_000, timeout: 10_000, maxTries: 1, compression: 'none', batch: { records: 10, bytes: 65536 } },
  }));
  const unreported = async (): Promise<number> => {
    const [r] = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${leaf.stateSchema}.discards WHERE reported_at IS NULL`);
    return Number(r?.n);
  };

  const none = await exportFile(deps(db, leaf), { peer: 'hub', out: f('leaf-0.usb') });
  t.equal(none.discards, 0, 'nothing discarded: nothing carried');

  await db.exec(
    `INSERT INTO ${leaf.stateSchema}.quarantine (change_id, origin, from_peer, hlc, received_at, last_try, tries, reason, waits_for, body)
     VALUES ('musha:65536', 'musha', 'hub', 65536, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 4, 'a value is too long for its column: table person, column gender, op 1 of 1 (server error 1406)', NULL, '<cs/>')`);
  t.ok(await discard(db, leaf.stateSchema, 'leaf', 'musha:65536', 'ops', 'codes are one letter here', Date.now()));

  const out = await exportFile(deps(db, leaf), { peer: 'hub', out: f('leaf-1.usb') });
  t.equal(out.discards, 1, 'the export carries the discard');
  const older = await plainBatch(f('leaf-1.usb'));
  t.match(older.header, { from: 'leaf', to: 'hub' }, 'a node that knows nothing of discard fields reads the batch as before');

  const imp = await importFile(deps(db, hub), { in: f('leaf-1.usb'), reply: f('hub-1.usb') });
  t.equal(imp.discards, 1, 'the parent records it');
  t.equal(imp.reply?.entries, 0);
  t.equal(imp.reply?.acknowledged, 1, 'the reply lists it as recorded');
  const there = await listDiscards(db, hub.stateSchema);
  t.match(there, {
    count: 1,
    entries: [{ node: 'leaf', changeId: 'musha:65536', origin: 'musha', fromPeer: 'hub', tries: 4, discardedBy: 'ops', why: 'codes are one letter here', reportedAt: /^\d{4}-/ }],
  }, 'the parent shows it under the child');
  const again = await importFile(deps(db, hub), { in: f('leaf-1.usb') });
  t.equal(again.discards, 0, 'a file imported twice records once');
  t.equal((await listDiscards(db, hub.stateSchema)).count, 1);
  t.equal(await unreported(), 1, 'the child does not know yet that the parent has it');

  const before = await exportFile(deps(db, leaf), { peer: 'hub', out: f('leaf-2.usb') });
  t.equal(before.discards, 1, 'until the parent acknowledges it, every export carries it again');

  const back = await importFile(deps(db, leaf), { in: f('hub-1.usb') });
  t.equal(back.acknowledged, 1, "the parent's reply acknowledges it");
  t.equal(await unreported(), 0, 'the child marks it reported');
  t.match((await listDiscards(db, leaf.stateSchema)).entries[0], { node: 'leaf', reportedAt: /^\d{4}-/ });

  const after = await exportFile(deps(db, leaf), { peer: 'hub', out: f('leaf-3.usb') });
  t.equal(after.discards, 0, 'a later export no longer carries it');
  const late = await importFile(deps(db, hub), { in: f('leaf-2.usb') });
  t.equal(late.discards, 0, 'an older file imported late records nothing new');
  t.equal((await listDiscards(db, hub.stateSchema)).count, 1);
});
