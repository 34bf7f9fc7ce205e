// kill -9 of the capture process at random moments while an application
// writes multi-table transactions: in the end the journal holds every
// committed transaction exactly once, in commit order, each one change set.
import t from 'tap';
import type { InsertOp } from '../../apply/core/model.js';
import { STATE, appServer, journal, spawnCapture, type CaptureChild } from '../helpers/capture-fixture.js';
import type { CaptureProcArgs } from '../helpers/capture-proc.js';

const KILLS = 9;

void t.test('capture survives kill -9 at random points without loss or duplicates', async (t) => {
  const { s, db } = await appServer(t);
  await db.exec('CREATE TABLE app.visit (id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(36) NOT NULL UNIQUE, seq INT NOT NULL) ENGINE=InnoDB');
  await db.exec(`CREATE TABLE app.note (id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(36) NOT NULL UNIQUE, seq INT NOT NULL,
    visit_id INT NOT NULL, body TEXT, FOREIGN KEY (visit_id) REFERENCES app.visit (id)) ENGINE=InnoDB`);
  const args: CaptureProcArgs = {
    port: s.port, schema: 'app', stateSchema: STATE, tables: ['visit', 'note'], node: 'kigali', serverId: 4242,
    mode: 'run', memoryBytes: 256 * 1024,
  };
  let child: CaptureChild = spawnCapture(args);
  t.teardown(() => { child.proc.kill('SIGKILL'); });
  await child.ready;

  // the application: each transaction writes a visit and a note that refers to it, numbered
  const app = await s.connect('app');
  let committed = 0;
  let writing = true;
  const writer = (async () => {
    while (writing) {
      const n = committed + 1;
      await app.query('BEGIN');
      const [res] = await app.query('INSERT INTO visit (uuid, seq) VALUES (?, ?)', [`v-${n}`, n]);
      const visitId = (res as { insertId: number }).insertId;
      await app.query('INSERT INTO note (uuid, seq, visit_id, body) VALUES (?, ?, ?, ?)', [`n-${n}`, n, visitId, 'x'.repeat(n % 500)]);
      await app.query('COMMIT');
      committed = n;
      if (n % 50 === 0) await new Promise((r) => setImmediate(r));
    }
  })();

  const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  for (let k = 0; k < KILLS; k++) {
    await pause(150 + Math.random() * 600);
    child.proc.kill('SIGKILL');
    await child.exited;
    await pause(Math.random() * 200);
    child = spawnCapture(args);
    await child.ready;
  }
  writing = false;
  await writer;
  child.proc.kill('SIGKILL');
  await child.exited;
  t.ok(committed > 100, `the application committed ${committed} transactions`);

  const last = spawnCapture({ ...args, mode: 'catchup', timeoutMs: 120_000 });
  child = last;
  await last.caughtUp;

  const rows = await journal(db);
  const seqs: number[] = [];
  let wrongShape = 0;
  for (const r of rows) {
    const ops = r.cs.ops as InsertOp[];
    const [visit, note] = ops;
    const ok = ops.length === 2 && visit?.table === 'visit' && note?.table === 'note' &&
      visit.row.seq === note.row.seq && (note.row.visit_id as { id?: string } | null)?.id === visit.id;
    if (!ok) wrongShape++;
    seqs.push(Number(visit?.row.seq));
  }
  t.equal(wrongShape, 0, 'each transaction is one change set: its visit and the note referring to it');
  t.equal(rows.length, committed, 'as many change sets as committed transactions');
  const firstWrong = seqs.findIndex((v, i) => v !== i + 1);
  t.equal(firstWrong, -1, 'every transaction exactly once, in commit order');
  const ids = new Set(rows.map((r) => r.changeId));
  t.equal(ids.size, rows.length, 'change ids are unique');
  const hlcs = rows.map((r) => BigInt(r.hlc));
  t.ok(hlcs.every((h, i) => i === 0 || h > hlcs[i - 1]!), 'stamps increase in commit order');
  for (const table of ['visit', 'note']) {
    const want = new Map(rows.flatMap((r) => r.cs.ops.filter((o) => o.table === table).map((o) => [o.id, r.hlc] as const)));
    const got = await db.query<{ uuid: string; n: string | number; hlc: string | null }>(
      `SELECT l.uuid, COUNT(r.lo) AS n, MAX(r.hlc) AS hlc FROM app.${table} l
         LEFT JOIN ${STATE}.insert_ranges r ON r.tbl = ? AND l.id BETWEEN r.lo AND r.hi GROUP BY l.uuid`, [table]);
    const wrong = got.filter((g) => Number(g.n) !== 1 || String(g.hlc) !== want.get(g.uuid));
    t.equal(got.length, committed, `${table}: every row is there`);
    t.same(wrong.slice(0, 3), [], `${table}: every row is in one run of insert_ranges, with the version of the change set that inserted it`);
  }
  const [versioned] = await db.query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM ${STATE}.idmap WHERE hlc IS NOT NULL`);
  t.equal(Number(versioned!.n), 0, 'no insert version fell back to an idmap row (the marks were read again after each restart)');
});
