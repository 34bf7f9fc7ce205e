// Provisioning against running nodes: children cloned over HTTP and from a file
// while the parent keeps writing end identical to the parent and then sync both
// ways with nothing lost, repeated or in conflict; a clone killed halfway is run
// again and completes without --force.
import { spokesync, spokesyncMain } from '../helpers/cli.js';
import t, { type Test } from 'tap';
import { spawn, execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Connection } from 'mysql2/promise';
import type { Config } from '../../agent/config/types.js';
import { openDb, type Db } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { SpokesyncNode } from '../../agent/node.js';
import { fetchSnapshot } from '../../agent/provision/http.js';
import { cloneSnapshot } from '../../agent/provision/load.js';
import { dumpByIdentity, dumpCounts } from '../../deploy/sandbox/identity-dump.js';
import { startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { APP, SYNCED, configText, startNode, stopNode, type NetNode } from '../helpers/sync-net.js';

const CHILDREN = [
  { id: 'leaf-http', token: 'tok-http-0123456789' },
  { id: 'leaf-file', token: 'tok-file-0123456789' },
  { id: 'leaf-kill', token: 'tok-kill-0123456789' },
];

/** Inserts people and visits and edits older people on the parent until stopped. */
function startWriter(conn: Connection, tag: string): { stop(): Promise<number> } {
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      n++;
      await conn.query(
        `INSERT INTO person (uuid, name, born) VALUES (UUID(), ?, NOW(6));
         INSERT INTO visit (uuid, person_id, note, weight) VALUES (UUID(), LAST_INSERT_ID(), ?, 70.5);
         UPDATE person SET name = CONCAT(name, '+'), changed_at = NOW() WHERE person_id = 1 + (? * 37) % 3000`,
        [`${tag}-${n}`, `visit ${tag}-${n}`, n],
      );
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return { stop: async () => { running = false; await loop; return n; } };
}

function childConfig(s: TestServer, id: string, token: string, parentUrl: string): Config {
  return {
    file: '/dev/null',
    node: { id },
    database: { host: s.host, port: s.port, user: 'root', schema: APP, stateSchema: 'spokesync', serverId: s.serverId + 1 },
    tables: { include: SYNCED, exclude: [], keys: {}, direction: {} },
    children: [],
    parent: { url: parentUrl, token, interval: 1000, timeout: 10_000, maxTries: 4, compression: 'gzip', batch: { records: 200, bytes: 256 * 1024 } },
    capture: { memoryBytes: 32 << 20 },
    log: { level: 'info' },
  };
}

/** Syncs the child until a round moves nothing; returns the child node (open). */
async function settle(hub: NetNode, child: SpokesyncNode): Promise<void> {
  for (let pass = 0; pass < 12; pass++) {
    await hub.node.capture.caughtUp(60_000);
    await child.capture.caughtUp(60_000);
    const r = await child.syncWithParent();
    if (r.sent + r.received === 0) return;
  }
  throw new Error('did not settle');
}

async function checkInStep(t: Test, hub: NetNode, child: SpokesyncNode, label: string): Promise<void> {
  await settle(hub, child);
  const [a, b] = [await dumpByIdentity(hub.node.db, APP, SYNCED), await dumpByIdentity(child.db, APP, SYNCED)];
  t.same(dumpCounts(b), dumpCounts(a), `${label}: same row counts`);
  t.ok(JSON.stringify(a) === JSON.stringify(b), `${label}: same rows by identity`);
  const [c] = await child.db.query<{ n: string }>('SELECT (SELECT COUNT(*) FROM spokesync.conflicts) + (SELECT COUNT(*) FROM spokesync.quarantine) AS n');
  t.equal(Number(c?.n), 0, `${label}: no conflicts or quarantine on the child (nothing applied twice)`);
}

/** After the clone: the child runs, syncs, writes, syncs again. */
async function runChild(t: Test, hub: NetNode, s: TestServer, cfg: Config): Promise<void> {
  const child = await SpokesyncNode.open(cfg, silentLogger, { backoffBaseMs: 20, backoffMaxMs: 50 });
  try {
    await child.startCapture();
    await checkInStep(t, hub, child, `${cfg.node.id} after the clone`);
    await s.query(`USE ${APP}; INSERT INTO person (uuid, name) VALUES (UUID(), 'born at ${cfg.node.id}');
      UPDATE person SET name = 'renamed at ${cfg.node.id}' WHERE person_id = 7`);
    await checkInStep(t, hub, child, `${cfg.node.id} after writing on the child`);
    const [n] = await hub.node.db.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${APP}.person WHERE name = 'born at ${cfg.node.id}'`);
    t.equal(Number(n?.n), 1, 'the child change reached the parent');
  } finally {
    await child.close();
  }
}

void t.test('provisioning against a running parent', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-prov-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hub = await startNode({ id: 'hub', listen: true, children: CHILDREN });
  t.teardown(() => stopNode(hub));
  const hubUrl = `http://127.0.0.1:${hub.config.listen!.port}`;
  await hub.sql(`INSERT INTO person (uuid, name, born, photo) SELECT UUID(), CONCAT('p', seq), NOW(6), UNHEX(SHA2(seq, 256)) FROM seq_1_to_3000;
    INSERT INTO visit (uuid, person_id, note, weight) SELECT UUID(), person_id, REPEAT('note ', 40), 60.25 FROM person;
    INSERT INTO patient (patient_id, allergy) SELECT person_id, 'none' FROM person WHERE person_id % 3 = 0;
    INSERT INTO setting (property, value) VALUES ('site.name', 'hub'), ('empty', ''), ('null', NULL)`);
  const writerConn = await hub.server.connect(APP);

  await t.test('clone over HTTP while the parent writes', async (t) => {
    const s = await startServer();
    t.teardown(() => s.stop());
    const cfg = childConfig(s, 'leaf-http', 'tok-http-0123456789', hubUrl);
    const db: Db = openDb({ host: s.host, port: s.port, user: 'root' });
    t.teardown(() => db.close());
    const writer = startWriter(writerConn, 'h');
    const r = await cloneSnapshot(
      { db, schema: APP, stateSchema: 'spokesync', node: 'leaf-http', log: silentLogger, force: false,
        progress: () => ({ table: () => undefined, add: () => undefined, done: () => undefined }) },
      () => fetchSnapshot(cfg.parent!),
    );
    const written = await writer.stop();
    t.ok(written > 0, `the parent wrote ${written} times during the clone`);
    t.equal(r.parent, 'hub');
    const [peer] = await hub.node.db.query<{ acked_seq: string }>("SELECT acked_seq FROM spokesync.peers WHERE peer = 'leaf-http'");
    t.equal(String(peer?.acked_seq), r.journalSeq, 'the parent started the child cursor at the snapshot');
    await runChild(t, hub, s, cfg);
  });

  await t.test('a wrong token gets no snapshot', async (t) => {
    await t.rejects(fetchSnapshot({ ...childConfig(hub.server, 'x', 'not-a-token', hubUrl).parent! }), { code: 'SPOKESYNC_E_AUTH' });
  });

  await t.test('snapshot file from the CLI while the daemon runs, clone --from with the CLI, while the parent writes', async (t) => {
    const s = await startServer();
    t.teardown(() => s.stop());
    const cfg = childConfig(s, 'leaf-file', 'tok-file-0123456789', hubUrl);
    const hubFile = await hub.writeConfig(dir);
    const childFile = join(dir, 'leaf-file.yaml');
    await (await import('node:fs/promises')).writeFile(childFile, configText(cfg));
    const file = join(dir, 'leaf-file.snapshot');
    const writer = startWriter(writerConn, 'f');
    const noPeer = await spokesync(['snapshot', '--config', hubFile, '--out', file]);
    t.equal(noPeer.code, 2, 'a snapshot file is sealed for one child: --peer is required');
    t.match(noPeer.err, /needs --peer ID/);
    const snap = await spokesync(['snapshot', '--config', hubFile, '--peer', 'leaf-file', '--out', file]);
    t.equal(snap.code, 0, 'snap exits 0', { stderr: snap.err.slice(-3000) });
    t.match(snap.out, /wrote a snapshot for leaf-file/);
    const sealed = await readFile(file);
    t.equal(sealed.subarray(0, 18).toString('ascii'), 'SPOKESYNC-SNAPSHOT', 'the file is sealed');
    t.equal((await stat(file)).mode & 0o077, 0, 'and readable by its owner only');
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 30] = tampered[tampered.length - 30]! ^ 0x01;
    await writeFile(join(dir, 'tampered.snapshot'), tampered);
    const bad = await spokesync(['clone', '--config', childFile, '--from', join(dir, 'tampered.snapshot')]);
    t.equal(bad.code, 1, 'a file changed near its end is refused');
    t.match(bad.err, /SPOKESYNC_E_SNAPSHOT/);
    await writeFile(join(dir, 'wrong-token.yaml'), configText({ ...cfg, parent: { ...cfg.parent!, token: 'tok-wrong-0123456789' } }));
    const wrong = await spokesync(['clone', '--config', join(dir, 'wrong-token.yaml'), '--from', file]);
    t.equal(wrong.code, 1, 'a wrong parent.token cannot open the file');
    t.match(wrong.err, /another key[\s\S]*parent\.token[\s\S]*SPOKESYNC_E_SNAPSHOT/);
    const [tables] = await s.query(`SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${APP}'`) as Array<{ n: number }>;
    t.equal(Number(tables?.n ?? 0), 0, 'nothing was loaded from either');
    const clone = await spokesync(['clone', '--config', childFile, '--from', file]);
    t.equal(clone.code, 0, 'clone exits 0', { stderr: clone.err.slice(-3000) });
    t.match(clone.out, /cloned 5 tables/);
    const again = await spokesync(['clone', '--config', childFile, '--from', file]);
    t.equal(again.code, 1, 'a second clone is refused');
    t.match(again.err, /SPOKESYNC_E_NOT_EMPTY/);
    t.ok((await writer.stop()) > 0);
    await runChild(t, hub, s, cfg);
  });

  await t.test('a clone killed halfway is run again and completes without --force', async (t) => {
    const s = await startServer();
    t.teardown(() => s.stop());
    const cfg = childConfig(s, 'leaf-kill', 'tok-kill-0123456789', hubUrl);
    const childFile = join(dir, 'leaf-kill.yaml');
    await (await import('node:fs/promises')).writeFile(childFile, configText(cfg));
    const hubFile = await hub.writeConfig(dir);
    const file = join(dir, 'leaf-kill.snapshot');
    // No daemon this time: the snapshot command runs capture itself.
    await hub.pause();
    const snap = await spokesync(['snapshot', '--config', hubFile, '--peer', 'leaf-kill', '--out', file]);
    await hub.resume();
    t.equal(snap.code, 0, 'snap exits 0', { stderr: snap.err.slice(-3000) });

    const fifo = join(dir, 'half.fifo');
    await promisify(execFile)('mkfifo', [fifo]);
    const bytes = await readFile(file);
    const p = spawn(process.execPath, [spokesyncMain, 'clone', '--config', childFile, '--from', fifo], { stdio: 'ignore' });
    const exited = new Promise((r) => p.once('exit', r));
    const feed = createWriteStream(fifo);
    feed.on('error', () => undefined);
    feed.write(bytes.subarray(0, Math.floor(bytes.length / 2)));
    const db = openDb({ host: s.host, port: s.port, user: 'root' });
    t.teardown(() => db.close());
    let loaded = 0;
    for (let i = 0; i < 300 && loaded === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const rows = await db.query<{ n: string }>(`SELECT (SELECT COUNT(*) FROM ${APP}.patient) + (SELECT COUNT(*) FROM ${APP}.person) AS n`).catch(() => []);
      loaded = Number(rows[0]?.n ?? 0);
    }
    t.ok(loaded > 0, 'the clone was loading');
    p.kill('SIGKILL');
    await exited;
    feed.destroy();
    const [mark] = await db.query<{ v: string }>("SELECT v FROM spokesync.meta WHERE k = 'clone'");
    t.match(JSON.parse(mark?.v ?? '{}'), { state: 'loading' }, 'the killed clone is not marked complete');
    const again = await spokesync(['clone', '--config', childFile, '--from', file]);
    t.equal(again.code, 0, 'again exits 0', { stderr: again.err.slice(-3000) });
    await runChild(t, hub, s, cfg);
  });
});
