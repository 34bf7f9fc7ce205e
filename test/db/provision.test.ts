// Snapshot → stream → clone between two real servers: the child ends identical
// (structure and every value, bit for bit), the parent's cursor for the child is
// the journal seq at the snapshot's binlog position, and damaged, foreign or
// unwanted loads are refused before they are marked complete. The streams here
// are unsealed, as the HTTP body is; snapshot files are sealed on top of this
// (provision-sealed.test.ts).
import t, { type Test } from 'tap';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { spawn } from 'node:child_process';
import { startServer, loadOpenmrs, mariadbBinary, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { openDb, type Db } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';
import { writeSnapshot, type SnapshotDeps } from '../../agent/provision/snapshot-writer.js';
import { cloneSnapshot, type CloneDeps } from '../../agent/provision/load.js';
import type { BinlogPosition } from '../../agent/capture/position.js';
import type { Progress } from '../../agent/provision/progress.js';
import { plainRails } from '../../agent/provision/rails.js';

const quiet = (): Progress => ({ table: () => undefined, add: () => undefined, done: () => undefined });

const TYPED = `CREATE TABLE typed (
  id INT AUTO_INCREMENT PRIMARY KEY,
  dt DATETIME(6) NULL, ts TIMESTAMP(6) NULL, d DECIMAL(65,30) NULL, ub BIGINT UNSIGNED NULL, b BIT(10) NULL,
  e ENUM('a','b c','') NULL, s SET('x','y','z') NULL, j JSON NULL, y YEAR NULL, tm TIME(6) NULL,
  blb LONGBLOB NULL, vb VARBINARY(16) NULL, txt TEXT CHARACTER SET utf8mb4 NULL, lat VARCHAR(20) CHARACTER SET latin1 NULL,
  dbl DOUBLE NULL, flt FLOAT NULL, g POINT NULL,
  gen INT AS (id * 2) VIRTUAL, gens VARCHAR(40) AS (CONCAT('t-', txt)) STORED
) ENGINE=InnoDB`;

async function seedTyped(s: TestServer): Promise<void> {
  await s.query(`USE openmrs; ${TYPED}`);
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  await s.query(
    `INSERT INTO openmrs.typed (dt, ts, d, ub, b, e, s, j, y, tm, blb, vb, txt, lat, dbl, flt, g) VALUES
     ('2026-01-02 03:04:05.123456', '2038-01-19 03:14:07.999999', '-12345678901234567890123456789012345.123456789012345678901234567890',
      '18446744073709551615', b'1010101010', 'b c', 'x,z', '{"k": [1, "é", null]}', '2026', '-838:59:59.000000',
      ?, X'00FF00', 'tab\\tnl\\ncr\\rnul\\0 😀 ünï', 'café', 1e-1 + 2e-1, 16777215, ST_GeomFromText('POINT(1 2)')),
     (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
     ('0000-00-00 00:00:00', NULL, '0', '0', b'0', '', '', '[]', '0000', '00:00:00', '', '', '', '', -0.0, 3.4e38, NULL)`,
    [all],
  );
}

async function seedPeople(s: TestServer, n: number, tag: string): Promise<void> {
  const values = Array.from({ length: n }, () =>
    `('M', '1980-01-01', 1, NOW(), UUID(), 0)`).join(',');
  await s.query(`INSERT INTO openmrs.person (gender, birthdate, creator, date_created, uuid, voided) VALUES ${values}`);
  await s.query(
    `INSERT INTO openmrs.person_name (person_id, given_name, family_name, creator, date_created, uuid, voided, preferred)
     SELECT person_id, CONCAT(?, person_id), 'Test', 1, NOW(), UUID(), 0, 1 FROM openmrs.person`,
    [tag],
  );
}

interface Node { s: TestServer; db: Db }

async function node(t: Test, openmrs: boolean): Promise<Node> {
  const s = await startServer();
  t.teardown(() => s.stop());
  if (openmrs) await loadOpenmrs(s);
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  await ensureStateSchema(db, 'spokesync');
  return { s, db };
}

/** Stands in for the parent's capture: checkpoint past the snapshot, journal rows before and after it. */
function fakeCapture(db: Db): { deps: Pick<SnapshotDeps, 'waitForCapture'>; seen: BinlogPosition[] } {
  const seen: BinlogPosition[] = [];
  return {
    seen,
    deps: {
      async waitForCapture(pos) {
        seen.push(pos);
        const next = pos.file.replace(/\d+$/, (d) => String(Number(d) + 1).padStart(d.length, '0'));
        await db.exec('DELETE FROM spokesync.journal');
        const rows: Array<[string, number]> = [[pos.file, pos.pos - 300], [pos.file, pos.pos], [pos.file, pos.pos], [pos.file, pos.pos + 1], [next, 4]];
        let i = 0;
        for (const [file, p] of rows) {
          i++;
          await db.exec(
            `INSERT INTO spokesync.journal (change_id, origin, hlc, commit_time, tables, op_count, body, binlog_file, binlog_pos)
             VALUES (?, 'hub', ?, NOW(), 'person', 1, '<cs/>', ?, ?)`,
            [`hub:${i}`, i, file, p],
          );
        }
        await db.exec(
          `REPLACE INTO spokesync.checkpoint (id, binlog_file, binlog_pos, updated_at) VALUES (1, ?, 4, UTC_TIMESTAMP(6))`,
          [next],
        );
      },
    },
  };
}

function snapDeps(n: Node, extra: Pick<SnapshotDeps, 'waitForCapture'>, peer = 'leaf'): SnapshotDeps {
  return {
    settings: { host: n.s.host, port: n.s.port, user: 'root' },
    db: n.db, schema: 'openmrs', stateSchema: 'spokesync', node: 'hub', log: silentLogger, progress: quiet, rails: plainRails(peer), ...extra,
  };
}

function cloneDeps(n: Node, force = false): CloneDeps {
  return { db: n.db, schema: 'openmrs', stateSchema: 'spokesync', node: 'leaf', log: silentLogger, force, progress: quiet };
}

async function tableSums(db: Db): Promise<Map<string, string>> {
  const tables = await db.query<{ TABLE_NAME: string }>(
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'openmrs' ORDER BY TABLE_NAME",
  );
  const out = new Map<string, string>();
  for (const { TABLE_NAME: name } of tables) {
    const [ddl] = await db.query<Record<string, string>>(`SHOW CREATE TABLE openmrs.\`${name}\``);
    const [sum] = await db.query<{ Checksum: string }>(`CHECKSUM TABLE openmrs.\`${name}\` EXTENDED`);
    out.set(name, `${sum?.Checksum}|${ddl?.['Create Table']}`);
  }
  return out;
}

void t.test('snapshot to a file and clone it: identical structure and data, cursors at the snapshot', async (t) => {
  const hub = await node(t, true);
  const leaf = await node(t, false);
  await seedTyped(hub.s);
  await seedPeople(hub.s, 3000, 'P');
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-snap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'leaf.snapshot');
  const cap = fakeCapture(hub.db);
  const snap = await writeSnapshot(snapDeps(hub, cap.deps), 'leaf', createWriteStream(file));
  t.equal(snap.tables, 117);
  t.ok(snap.rows > 6000);
  t.same(cap.seen, [snap.position], 'waits for capture to pass the snapshot position');
  t.equal(snap.journalSeq, '3', 'cursor = last journal row at or before the snapshot position');
  const [hubPeer] = await hub.db.query<{ acked_seq: string; received_seq: string }>(
    "SELECT acked_seq, received_seq FROM spokesync.peers WHERE peer = 'leaf'",
  );
  t.same(hubPeer, { acked_seq: '3', received_seq: '0' }, 'the parent starts the child cursor at the snapshot');

  await leaf.s.query("CREATE DATABASE openmrs");
  await ensureStateSchema(leaf.db, 'spokesync');
  const [before] = await leaf.db.query<{ File: string; Position: string }>('SHOW MASTER STATUS');
  const res = await cloneSnapshot(cloneDeps(leaf), async () => createReadStream(file));
  t.equal(res.rows, snap.rows);
  t.equal(res.parent, 'hub');
  t.equal(res.journalSeq, '3');

  const [a, b] = await Promise.all([tableSums(hub.db), tableSums(leaf.db)]);
  t.equal(b.size, a.size);
  for (const [name, sum] of a) t.equal(b.get(name), sum, `table ${name} identical`);
  const typed = await leaf.db.query<Record<string, unknown>>(
    'SELECT HEX(blb) AS blb, HEX(b) AS b, dbl, ST_AsText(g) AS g, gen, gens, txt, lat FROM openmrs.typed ORDER BY id',
  );
  t.equal(typed[0]?.blb, Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex').toUpperCase());
  t.equal(typed[0]?.b, '2AA');
  t.equal(typed[0]?.dbl, 0.30000000000000004);
  t.equal(typed[0]?.g, 'POINT(1 2)');
  t.equal(typed[0]?.gen, 2, 'generated columns are computed by the child');
  t.equal(typed[0]?.txt, 'tab\tnl\ncr\rnul\0 😀 ünï');
  t.equal(typed[0]?.lat, 'café');
  t.equal(typed[1]?.txt, null);
  t.equal(typed[2]?.txt, '');

  const [peer] = await leaf.db.query<Record<string, string>>("SELECT acked_seq, received_seq FROM spokesync.peers WHERE peer = 'hub'");
  t.same(peer, { acked_seq: '0', received_seq: '3' }, 'the child has taken the parent journal up to the snapshot');
  const meta = new Map((await leaf.db.query<{ k: string; v: string }>('SELECT k, v FROM spokesync.meta')).map((r) => [r.k, r.v]));
  t.equal(meta.get('parent.id'), 'hub');
  t.match(JSON.parse(meta.get('clone') ?? '{}'), { state: 'done', from: 'hub', journalSeq: '3' });
  const [cp] = await leaf.db.query<{ binlog_file: string; binlog_pos: string }>('SELECT binlog_file, binlog_pos FROM spokesync.checkpoint');
  const [end] = await leaf.db.query<{ File: string; Position: string }>('SHOW MASTER STATUS');
  t.same([cp?.binlog_file, String(cp?.binlog_pos)], [end?.File, String(end?.Position)], 'capture starts at the binlog end');
  const binlog = (await leaf.s.query(`SHOW BINLOG EVENTS IN '${before?.File}' FROM ${before?.Position}`)) as Array<{ Info: string }>;
  t.same(binlog.filter((e) => /openmrs|rows/i.test(e.Info)), [], 'the load never reached the binlog');

  await t.test('a second clone into the loaded schema is refused without --force, done with it', async (t) => {
    await t.rejects(cloneSnapshot(cloneDeps(leaf), async () => createReadStream(file)), { code: 'SPOKESYNC_E_NOT_EMPTY' });
    await leaf.db.exec("INSERT INTO openmrs.typed (txt) VALUES ('local only')");
    const again = await cloneSnapshot(cloneDeps(leaf, true), async () => createReadStream(file));
    t.equal(again.rows, snap.rows);
    const [n] = await leaf.db.query<{ n: string }>("SELECT COUNT(*) AS n FROM openmrs.typed WHERE txt = 'local only'");
    t.equal(Number(n?.n), 0, '--force replaced the schema');
  });

  await t.test('a snapshot made for another node is refused before anything is dropped', async (t) => {
    const other = join(dir, 'other.snapshot');
    await writeSnapshot(snapDeps(hub, fakeCapture(hub.db).deps, 'someone-else'), 'someone-else', createWriteStream(other));
    await t.rejects(cloneSnapshot(cloneDeps(leaf, true), async () => createReadStream(other)), { code: 'SPOKESYNC_E_SNAPSHOT' });
    const [n] = await leaf.db.query<{ n: string }>("SELECT COUNT(*) AS n FROM openmrs.person");
    t.ok(Number(n?.n) >= 3000, 'data untouched');
  });

  await t.test('a damaged file is refused and never marked complete; a good file then loads without --force', async (t) => {
    const good = await readFile(file);
    const plain = gunzipSync(good);
    // Same length, valid gzip, one value changed: only the sha256 can tell.
    const at = plain.indexOf(Buffer.from('"Test"'));
    t.ok(at > 0);
    const tampered = Buffer.from(plain);
    tampered.write('"Tost"', at);
    const bad = join(dir, 'tampered.snapshot');
    await writeFile(bad, gzipSync(tampered));
    await t.rejects(cloneSnapshot(cloneDeps(leaf, true), async () => createReadStream(bad)), { code: 'SPOKESYNC_E_SNAPSHOT' });
    const [mark] = await leaf.db.query<{ v: string }>("SELECT v FROM spokesync.meta WHERE k = 'clone'");
    t.match(JSON.parse(mark?.v ?? '{}'), { state: 'loading' }, 'not marked complete');
    const [left] = await leaf.db.query<{ n: string }>("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'openmrs'");
    t.equal(Number(left?.n), 0, 'the checksum fails only at the end, after every row loaded: the schema is emptied again');
    const truncated = join(dir, 'truncated.snapshot');
    await writeFile(truncated, good.subarray(0, Math.floor(good.length * 0.7)));
    await t.rejects(cloneSnapshot(cloneDeps(leaf), async () => createReadStream(truncated)), { code: 'SPOKESYNC_E_SNAPSHOT' },
      'an unfinished clone is resumed without --force, and a truncated file is refused');
    const ok = await cloneSnapshot(cloneDeps(leaf), async () => createReadStream(file));
    t.equal(ok.rows, snap.rows, 'an unfinished clone starts over without --force');
    const sums = await tableSums(leaf.db);
    for (const [name, sum] of a) t.equal(sums.get(name), sum, `table ${name} identical`);
  });
});

/** mysql-conf/grants.sql as documented, then any extra grants. */
async function grants(s: TestServer, extra: string[] = []): Promise<void> {
  const sql = await readFile(new URL('../../../mysql-conf/grants.sql', import.meta.url), 'utf8');
  await new Promise<void>((resolve, reject) => {
    const p = spawn(mariadbBinary('mariadb'), ['-h127.0.0.1', `-P${s.port}`, '-uroot'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(err))));
    p.stdin.end(`SET @spokesync_password = 'pw', @app_schema = 'openmrs';\n${sql}\n${extra.map((g) => `${g} TO 'spokesync'@'127.0.0.1';`).join('\n')}\n`);
  });
}

void t.test('least privilege: snapshot with the grants of mysql-conf/grants.sql; clone needs BINLOG ADMIN, CREATE and DROP', async (t) => {
  const hub = await node(t, true);
  const leaf = await node(t, false);
  await grants(hub.s);
  await grants(leaf.s);
  const as = (n: Node): Db => {
    const db = openDb({ host: n.s.host, port: n.s.port, user: 'spokesync', password: 'pw' });
    t.teardown(() => db.close());
    return db;
  };
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-snap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'leaf.snapshot');
  const hubDb = as(hub);
  const snap = await writeSnapshot({
    ...snapDeps(hub, fakeCapture(hub.db).deps), settings: { host: hub.s.host, port: hub.s.port, user: 'spokesync', password: 'pw' }, db: hubDb,
  }, 'leaf', createWriteStream(file));
  t.equal(snap.tables, 116, 'the snapshot needs no more than grants.sql');

  // global grants reach new connections only: a fresh pool for each try
  const leafDeps = (): CloneDeps => ({ ...cloneDeps(leaf), db: as(leaf) });
  await t.rejects(cloneSnapshot(leafDeps(), async () => createReadStream(file)), { code: 'SPOKESYNC_E_PREFLIGHT', fix: /BINLOG ADMIN/ });
  await leaf.s.query("GRANT BINLOG ADMIN ON *.* TO 'spokesync'@'127.0.0.1'");
  await t.rejects(cloneSnapshot(leafDeps(), async () => createReadStream(file)), { code: 'SPOKESYNC_E_PREFLIGHT', fix: /GRANT CREATE, DROP/ });
  await leaf.s.query("GRANT CREATE, DROP ON `openmrs`.* TO 'spokesync'@'127.0.0.1'");
  const res = await cloneSnapshot(leafDeps(), async () => createReadStream(file));
  t.equal(res.rows, snap.rows, 'with BINLOG ADMIN, CREATE and DROP the clone completes');
});
