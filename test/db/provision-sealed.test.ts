// Sealed snapshot files between two real servers: the file shows no data and
// loads into an identical schema on the child it was made for; a wrong token,
// another child's file, a USB batch file, an unsealed file, a file changed near
// its end or cut short are refused before anything is dropped (even with
// --force); and a chunk that fails once loading has begun (a pipe, or a file
// changed between the two passes) leaves the schema empty, never half loaded.
import t, { type Test } from 'tap';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { openDb, type Db } from '../../apply/core/db.js';
import { createLogger, silentLogger } from '../../apply/core/log.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';
import { writeSnapshot, type SnapshotDeps } from '../../agent/provision/snapshot-writer.js';
import { cloneSnapshot, type CloneDeps } from '../../agent/provision/load.js';
import { openSnapshotFile, unsealed } from '../../agent/provision/sealed.js';
import { seal } from '../../agent/usb/usb-file.js';
import type { Progress } from '../../agent/provision/progress.js';
import { plainRails } from '../../agent/provision/rails.js';

const TOKEN = 'tok-leaf-0123456789';
const as = { node: 'leaf', token: TOKEN };

interface Node { s: TestServer; db: Db }

async function node(t: Test): Promise<Node> {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  await ensureStateSchema(db, 'spokesync');
  return { s, db };
}

/** Rows that do not compress away, so the file has many chunks. */
async function seed(s: TestServer): Promise<void> {
  await s.query(`CREATE DATABASE app; USE app;
    CREATE TABLE person (id INT PRIMARY KEY, uuid CHAR(36) NOT NULL, name VARCHAR(80), photo VARBINARY(64)) ENGINE=InnoDB;
    CREATE TABLE visit (id INT AUTO_INCREMENT PRIMARY KEY, person_id INT NOT NULL, note TEXT) ENGINE=InnoDB;
    INSERT INTO person SELECT seq, UUID(), CONCAT('Patient ', seq), UNHEX(SHA2(seq, 256)) FROM seq_1_to_20000;
    INSERT INTO visit (person_id, note) SELECT seq, CONCAT('diagnosis ', SHA1(seq)) FROM seq_1_to_20000;`);
}

function snapDeps(n: Node, extra: Partial<SnapshotDeps> = {}): SnapshotDeps {
  return {
    settings: { host: n.s.host, port: n.s.port, user: 'root' }, db: n.db, schema: 'app', stateSchema: 'spokesync',
    node: 'hub', log: silentLogger, progress: quiet().progress, waitForCapture: async () => undefined, rails: plainRails('leaf'), ...extra,
  };
}

/** A progress sink that counts the rows the clone has loaded. */
function quiet(): { progress: () => Progress; rows: () => number } {
  let rows = 0;
  return {
    progress: () => ({ table: () => undefined, add: (n) => { rows += n; }, done: () => undefined }),
    rows: () => rows,
  };
}

async function appState(db: Db): Promise<{ tables: number; persons: number; mark: string }> {
  const [tb] = await db.query<{ n: string }>("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'");
  const persons = Number(tb?.n) > 0
    ? Number((await db.query<{ n: string }>('SELECT COUNT(*) AS n FROM app.person').catch(() => [{ n: '0' }]))[0]?.n ?? 0)
    : 0;
  const [mark] = await db.query<{ v: string }>("SELECT v FROM spokesync.meta WHERE k = 'clone'");
  return { tables: Number(tb?.n), persons, mark: (JSON.parse(mark?.v ?? '{}') as { state?: string }).state ?? '' };
}

async function checksums(db: Db): Promise<string> {
  const rows = await db.query<{ Table: string; Checksum: string }>('CHECKSUM TABLE app.person, app.visit EXTENDED');
  return JSON.stringify(rows.map((r) => [r.Table, String(r.Checksum)]));
}

void t.test('sealed snapshot files', async (t) => {
  const hub = await node(t);
  const leaf = await node(t);
  await seed(hub.s);
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-sealed-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'leaf.snapshot');
  const snap = await writeSnapshot(snapDeps(hub, { sealWith: TOKEN, sealChunk: 16 * 1024 }), 'leaf', createWriteStream(file));
  t.equal(snap.rows, 40000);
  const bytes = await readFile(file);
  t.equal(bytes.subarray(0, 18).toString('ascii'), 'SPOKESYNC-SNAPSHOT', 'a sealed snapshot file');
  t.ok(bytes.length > 20 * 16 * 1024, `many chunks (${bytes.length} bytes)`);
  t.throws(() => gunzipSync(bytes), 'not readable as gzip');
  for (const text of ['Patient', 'CREATE TABLE', 'diagnosis', 'spokesync-snapshot']) {
    t.notOk(bytes.includes(Buffer.from(text)), `"${text}" does not show`);
  }
  const hubSums = await checksums(hub.db);

  await t.test('the child it was made for clones it: identical data', async (t) => {
    const r = await cloneSnapshot(cloneDeps(leaf), () => openSnapshotFile(file, as));
    t.equal(r.rows, 40000);
    t.equal(r.parent, 'hub');
    t.equal(await checksums(leaf.db), hubSums, 'same checksums as the parent');
  });

  const refusedUntouched = async (t: Test, f: string, expect: { message: RegExp; fix?: RegExp }, label: string, with_ = as): Promise<void> => {
    const q = quiet();
    await t.rejects(cloneSnapshot({ ...cloneDeps(leaf, true), progress: q.progress }, () => openSnapshotFile(f, with_)),
      { code: 'SPOKESYNC_E_SNAPSHOT', exit: 1, ...expect }, label);
    t.equal(q.rows(), 0, `${label}: not a row loaded`);
    t.same(await appState(leaf.db), { tables: 2, persons: 20000, mark: 'done' }, `${label}: the loaded schema is untouched, even with --force`);
  };

  await t.test('a wrong token, another child, a USB file or an unsealed file: refused before anything is dropped', async (t) => {
    await refusedUntouched(t, file, { message: /sealed with another key/, fix: /parent\.token/ }, 'a wrong token',
      { node: 'leaf', token: 'tok-other-0123456789' });

    const other = join(dir, 'other.snapshot');
    await writeSnapshot(snapDeps(hub, { sealWith: TOKEN, rails: plainRails('someone-else') }), 'someone-else', createWriteStream(other));
    await refusedUntouched(t, other, { message: /made for node someone-else, not for leaf/, fix: /--peer leaf/ }, "another child's file");

    const usb = join(dir, 'batch.usb');
    await pipeline(Readable.from([Buffer.from('<batch/>')]), (src: AsyncIterable<Buffer>) => seal(src, { sender: 'hub', receiver: 'leaf', secret: TOKEN }), createWriteStream(usb));
    await refusedUntouched(t, usb, { message: /a spokesync USB file, not a snapshot file/ }, 'a USB batch file for the same child');

    const plain = join(dir, 'plain.snapshot');
    await writeSnapshot(snapDeps(hub), 'leaf', createWriteStream(plain));
    await refusedUntouched(t, plain, { message: /plain gzip file/ }, 'an unsealed snapshot');
  });

  await t.test('changed near the end, cut short, or with bytes added: refused before anything is dropped', async (t) => {
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 40] = tampered[tampered.length - 40]! ^ 0x01;
    await writeFile(join(dir, 'tampered.snapshot'), tampered);
    await refusedUntouched(t, join(dir, 'tampered.snapshot'), { message: /chunk \d+ of the file does not authenticate/ }, 'one bit changed in the last chunk');
    await writeFile(join(dir, 'cut.snapshot'), bytes.subarray(0, Math.floor(bytes.length * 0.95)));
    await refusedUntouched(t, join(dir, 'cut.snapshot'), { message: /truncated/ }, 'cut at 95%');
    await writeFile(join(dir, 'longer.snapshot'), Buffer.concat([bytes, Buffer.from('\n')]));
    await refusedUntouched(t, join(dir, 'longer.snapshot'), { message: /bytes after its final chunk/ }, 'a byte added');
  });

  await t.test('a chunk near the end that fails once loading has begun: the schema is left empty, then a good file loads', async (t) => {
    // Read once, as from a pipe, or as a file changed after pass one: rows load before the bad chunk is reached.
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 40] = tampered[tampered.length - 40]! ^ 0x01;
    const warnings: string[] = [];
    const q = quiet();
    await t.rejects(cloneSnapshot(
      { ...cloneDeps(leaf, true), progress: q.progress, log: createLogger({ level: 'warn', write: (l) => warnings.push(l) }) },
      async () => unsealed(Readable.from([tampered.subarray(0, 100_000), tampered.subarray(100_000)]), as),
    ), { code: 'SPOKESYNC_E_SNAPSHOT', message: /does not authenticate/ });
    t.ok(q.rows() > 20000, `rows were loading when the bad chunk came (${q.rows()})`);
    t.same(await appState(leaf.db), { tables: 0, persons: 0, mark: 'loading' }, 'no half-loaded tables; marked unfinished');
    const [sch] = await leaf.db.query<{ n: string }>("SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'app'");
    t.equal(Number(sch?.n), 1, 'the schema itself is there, empty');
    t.match(warnings.join('\n'), /the application schema was emptied again/);

    const r = await cloneSnapshot(cloneDeps(leaf), () => openSnapshotFile(file, as));
    t.equal(r.rows, 40000, 'the unfinished clone starts over without --force');
    t.equal(await checksums(leaf.db), hubSums);
  });

  await t.test('a pipe is read once, authenticated as it loads', async (t) => {
    const r = await cloneSnapshot(cloneDeps(leaf, true), async () => unsealed(createReadStream(file, { highWaterMark: 4096 }), as));
    t.equal(r.rows, 40000);
    t.equal(await checksums(leaf.db), hubSums);
  });
});

function cloneDeps(n: Node, force = false): CloneDeps {
  return { db: n.db, schema: 'app', stateSchema: 'spokesync', node: 'leaf', log: silentLogger, force, progress: quiet().progress };
}
