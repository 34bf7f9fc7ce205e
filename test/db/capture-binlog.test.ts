// Capture against the binlog's life: first start, rotation, transactions
// that touch nothing synced, a dropped binlog connection, a server crash,
// DDL, a transaction far larger than the memory budget, savepoints, capture's
// own writes in or out of the binlog, the duplicate guard, and a checkpoint
// whose binlog was purged.
import t from 'tap';
import type { InsertOp } from '../../apply/core/model.js';
import { isSpokesyncError } from '../../apply/core/errors.js';
import { appServer, journal, makeCapture } from '../helpers/capture-fixture.js';
import type { Db } from '../../apply/core/db.js';
import type { Capture } from '../../agent/capture/capture.js';

const ITEMS = `CREATE TABLE app.items (
  id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(36) NOT NULL UNIQUE, seq INT NOT NULL, note VARCHAR(200)
) ENGINE=InnoDB`;

void t.test('capture and the binlog', async (t) => {
  const { s, db } = await appServer(t);
  await db.exec(ITEMS);
  await db.exec('CREATE TABLE app.other (id INT PRIMARY KEY, v INT) ENGINE=InnoDB');
  const sql = await s.connect('app');
  let seq = 0;
  /** n transactions of `per` rows each; returns their sequence numbers */
  const write = async (n: number, per = 1): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const rows: unknown[][] = [];
      for (let j = 0; j < per; j++) {
        seq++;
        rows.push([`u-${seq}`, seq, `note ${seq}`]);
        out.push(seq);
      }
      await sql.query('INSERT INTO app.items (uuid, seq, note) VALUES ?', [rows]);
    }
    return out;
  };
  const seqs = async (state: string, cap: Capture): Promise<number[]> => {
    await cap.caughtUp(60_000);
    return (await journal(db, 0, state)).flatMap((r) => r.cs.ops.map((o) => Number((o as InsertOp).row.seq)));
  };
  const capture = (state: string, extra = {}): Promise<Capture> => makeCapture(s, db, 'app', ['items'], { stateSchema: state, ...extra });

  await t.test('first start begins at the end of the binlog; rotation is followed', async (t) => {
    await write(3); // before capture ever ran: provisioning's business
    const cap = await capture('ss_rot');
    await cap.start();
    const want = [...(await write(2)), ...(await (async () => { await sql.query('FLUSH BINARY LOGS'); return write(2); })())];
    t.same(await seqs('ss_rot', cap), want, 'nothing from before the first start; both files');
    await cap.stop();
    await sql.query('FLUSH BINARY LOGS');
    want.push(...(await write(2)));
    await sql.query('FLUSH BINARY LOGS');
    want.push(...(await write(1)));
    await cap.start();
    t.same(await seqs('ss_rot', cap), want, 'resumes across two rotations');
    const files = new Set((await journal(db, 0, 'ss_rot')).map((r) => r.file));
    t.equal(files.size, 4, 'journal rows name the file each transaction is in');
    await cap.stop();
  });

  await t.test('transactions on other tables advance the checkpoint, in batches', async (t) => {
    const cap = await capture('ss_skip');
    await cap.start();
    for (let i = 0; i < 1200; i++) await sql.query('INSERT INTO app.other VALUES (?, ?)', [i, i]);
    await cap.caughtUp();
    const [cp] = await db.query<{ binlog_pos: number }>('SELECT binlog_pos FROM ss_skip.checkpoint');
    const [end] = await db.query<{ Position: number }>('SHOW MASTER STATUS');
    t.ok(Number(cp!.binlog_pos) > 0, 'a checkpoint was written for skipped transactions');
    t.equal(cap.status().pos, Number(end!.Position), 'status is at the end of the binlog');
    t.equal((await journal(db, 0, 'ss_skip')).length, 0, 'nothing journaled');
    await cap.stop();
    await db.exec('DELETE FROM app.other');
  });

  await t.test('skipped transactions reach the checkpoint a while after the last write, with no more binlog to wake capture', async (t) => {
    const cap = await capture('ss_idle', { skipCheckpointMs: 300 });
    await cap.start();
    await write(1);
    await cap.caughtUp();
    await sql.query('INSERT INTO app.other VALUES (?, ?)', [5000, 1]);
    await cap.caughtUp();
    const [end] = await db.query<{ Position: number }>('SHOW MASTER STATUS');
    let at = 0;
    for (let i = 0; i < 50 && at !== Number(end!.Position); i++) {
      await new Promise((r) => setTimeout(r, 100));
      const [cp] = await db.query<{ binlog_pos: number }>('SELECT binlog_pos FROM ss_idle.checkpoint');
      at = Number(cp!.binlog_pos);
    }
    t.equal(at, Number(end!.Position), 'the checkpoint is at the end of the binlog');
    await cap.stop();
    await db.exec('DELETE FROM app.other');
  });

  await t.test('a dropped binlog connection and a server crash lose and repeat nothing', async (t) => {
    const cap = await capture('ss_err');
    await cap.start();
    const want = await write(20, 3);
    await cap.caughtUp();
    const dumps = await db.query<{ ID: number }>("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'");
    for (const d of dumps) await db.exec(`KILL ${Number(d.ID)}`).catch(() => undefined);
    want.push(...(await write(20, 3)));
    t.same(await seqs('ss_err', cap), want, 'after the binlog connection was killed');
    await s.crashAndRestart();
    const sql2 = await s.connect('app');
    for (let i = 0; i < 10; i++) {
      seq++;
      await sql2.query('INSERT INTO app.items (uuid, seq, note) VALUES (?, ?, ?)', [`u-${seq}`, seq, 'after crash']);
      want.push(seq);
    }
    t.same(await seqs('ss_err', cap), want, 'after the server was killed and restarted');
    await cap.stop();
  });

  const sqlAfterCrash = await s.connect('app');
  const write2 = async (rows: number): Promise<number[]> => {
    const out: number[] = [];
    const batch: unknown[][] = [];
    for (let j = 0; j < rows; j++) {
      seq++;
      batch.push([`u-${seq}`, seq, null]);
      out.push(seq);
    }
    for (let i = 0; i < batch.length; i += 5000) await sqlAfterCrash.query('INSERT INTO app.items (uuid, seq, note) VALUES ?', [batch.slice(i, i + 5000)]);
    return out;
  };

  await t.test('a transaction of 50,000 rows under a 1 MB budget, among small ones', async (t) => {
    const cap = await capture('ss_big', { memoryBytes: 1024 * 1024 });
    await cap.start();
    const want: number[] = [];
    for (let i = 0; i < 300; i++) want.push(...(await write2(10)));
    await sqlAfterCrash.query('BEGIN');
    want.push(...(await write2(50_000)));
    await sqlAfterCrash.query('COMMIT');
    for (let i = 0; i < 300; i++) want.push(...(await write2(10)));
    const got = await seqs('ss_big', cap);
    t.equal(got.length, want.length);
    t.same(got, want, 'every row once, in commit order');
    const rows = await journal(db, 0, 'ss_big');
    t.equal(rows.length, 601, 'one change set per transaction');
    t.equal(rows[300]!.opCount, 50_000);
    await cap.stop();
  });

  await t.test('a backlog read in many pieces under a small budget: each transaction once, in order', async (t) => {
    const cap = await capture('ss_budget', { memoryBytes: 300 * 1024 });
    const want: number[] = [];
    for (let round = 1; round <= 3; round++) {
      await cap.start();
      await cap.stop();
      for (let i = 0; i < 200; i++) want.push(...(await write2(100)));
      await cap.start();
      const got = await seqs('ss_budget', cap);
      t.equal(got.length, want.length, `round ${round}: as many rows as written`);
      t.equal(got.findIndex((v, i) => v !== want[i]), -1, `round ${round}: every row once, in commit order`);
      await cap.stop();
    }
    t.equal((await journal(db, 0, 'ss_budget')).length, 600);
  });

  await t.test('DDL on a synced table is recorded and the catalogue reloaded', async (t) => {
    const cap = await capture('ss_ddl');
    await cap.start();
    await sqlAfterCrash.query('ALTER TABLE app.other ADD COLUMN w INT');
    await sqlAfterCrash.query('ALTER TABLE items ADD COLUMN extra VARCHAR(10) NOT NULL DEFAULT \'x\'');
    await sqlAfterCrash.query("INSERT INTO app.items (uuid, seq, extra) VALUES ('ddl-1', -1, 'y')");
    await cap.caughtUp();
    const events = await db.query<{ tbl: string; statement: string; fingerprint: string }>('SELECT tbl, statement, fingerprint FROM ss_ddl.schema_events');
    t.same(events.map((e) => e.tbl), ['items'], 'only the synced table');
    t.match(events[0]!.statement, /ADD COLUMN extra/);
    t.match(events[0]!.fingerprint, /^[0-9a-f]{64}$/);
    const rows = await journal(db, 0, 'ss_ddl');
    t.same((rows[0]!.cs.ops[0] as InsertOp).row.extra, 'y', 'the new column travels');
    await cap.stop();
  });

  await t.test('savepoints inside a transaction: the rows rolled back to one are not journaled, the rest are', async (t) => {
    const cap = await capture('ss_save');
    await cap.start();
    await sqlAfterCrash.query('CREATE TABLE app.nontx (id INT PRIMARY KEY) ENGINE=MyISAM');
    const q = (text: string, values?: unknown[]): Promise<unknown> => sqlAfterCrash.query(text, values);
    const item = (n: number): Promise<unknown> => q('INSERT INTO app.items (uuid, seq) VALUES (?, ?)', [`sp-${n}`, 1000 + n]);
    // savepoint first, then rows (nothing logged for the savepoint nor the rolled-back row)
    await q('BEGIN');
    await q('SAVEPOINT a');
    await item(1);
    await q('ROLLBACK TO a');
    await item(2);
    await q('COMMIT');
    // rows before the savepoint: SAVEPOINT is logged inside the transaction
    await q('BEGIN');
    await item(3);
    await q('SAVEPOINT a');
    await item(4);
    await q('ROLLBACK TO SAVEPOINT a');
    await item(5);
    await q('COMMIT');
    // a non-transactional write after the savepoint: ROLLBACK TO is logged after the rolled-back row
    await q('BEGIN');
    await item(6);
    await q('SAVEPOINT `b x`');
    await item(7);
    await q('INSERT INTO app.nontx VALUES (1)');
    await q('ROLLBACK WORK TO SAVEPOINT `B X`');
    await item(8);
    await q('SAVEPOINT c');
    await item(9);
    await q('RELEASE SAVEPOINT c');
    await item(10);
    await q('COMMIT');
    const events = await db.query<{ Info: string }>(`SHOW BINLOG EVENTS IN '${cap.status().file}'`);
    t.ok(events.some((e) => /^ROLLBACK TO/.test(e.Info)), 'the binlog holds a ROLLBACK TO');
    await cap.caughtUp();
    const rows = await journal(db, 0, 'ss_save');
    t.same(rows.map((r) => r.cs.ops.map((o) => Number((o as InsertOp).row.seq) - 1000)), [[2], [3, 5], [6, 8, 9, 10]],
      'one change set per transaction with exactly the committed rows');
    t.notOk(cap.status().error);
    await cap.stop();
  });

  await t.test("capture's own writes stay out of the binlog when the account may, and are binlogged (and read past) when it may not", async (t) => {
    const eventsSince = async (from: { File: string; Position: number }): Promise<string[]> =>
      (await db.query<{ Info: string }>(`SHOW BINLOG EVENTS IN '${from.File}' FROM ${Number(from.Position)}`)).map((e) => e.Info);
    const run = async (state: string, extra: object): Promise<{ events: string[]; cap: Capture }> => {
      const cap = await capture(state, extra);
      await cap.start();
      const [from] = await db.query<{ File: string; Position: number }>('SHOW MASTER STATUS');
      await write2(1);
      await write2(1);
      await cap.caughtUp();
      await write2(1);
      await cap.caughtUp();
      const events = await eventsSince(from!);
      t.equal((await journal(db, 0, state)).length, 3, `${state}: each transaction journaled once`);
      await cap.stop();
      return { events, cap };
    };
    const root = await run('ss_nolog', {});
    t.equal(root.cap.status().stateBinlogged, false, 'root may: not binlogged');
    t.notOk(root.events.some((e) => e.includes('ss_nolog.')), 'no event of the state schema in the binlog');
    t.ok(root.events.some((e) => e.includes('app.items')), '(the application rows are)');

    await db.exec("CREATE USER ss_lp@'%' IDENTIFIED BY 'lp-secret'");
    await db.exec("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ss_lp@'%'");
    await db.exec("GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO ss_lp@'%'");
    await db.exec("GRANT ALL PRIVILEGES ON ss_logged.* TO ss_lp@'%'");
    const lp = await run('ss_logged', { settings: { host: s.host, port: s.port, user: 'ss_lp', password: 'lp-secret' } });
    t.equal(lp.cap.status().stateBinlogged, true, 'without BINLOG ADMIN: binlogged');
    t.ok(lp.events.some((e) => e.includes('ss_logged.journal')), 'the journal rows are in the binlog');
  });

  /** Change set huye:hlc put in the journal of `state` by hand, as if capture had written it already. */
  const journaledAlready = (state: string, hlc: number): Promise<unknown> => db.exec(
    `INSERT INTO ${state}.journal (change_id, origin, hlc, commit_time, tables, op_count, body, binlog_file, binlog_pos)
      VALUES (?, 'huye', ?, NOW(), '', 0, '<cs/>', 'x', 0)`, [`huye:${hlc}`, hlc]);
  /** A transaction applied from peer musanze as change set huye:hlc: its ledger row and one item. */
  const appliedItem = async (state: string, hlc: number, uuid: string, seq: number): Promise<void> => {
    await sqlAfterCrash.query('BEGIN');
    await sqlAfterCrash.query(`INSERT INTO ${state}.ledger (change_id, origin, from_peer, hlc, commit_time, applied_at) VALUES (?, 'huye', 'musanze', ?, NOW(), NOW(6))`, [`huye:${hlc}`, hlc]);
    await sqlAfterCrash.query('INSERT INTO app.items (uuid, seq) VALUES (?, ?)', [uuid, seq]);
    await sqlAfterCrash.query('COMMIT');
  };

  await t.test('a change id already in the journal fails loudly and is never written twice', async (t) => {
    const cap = await capture('ss_dup', { sleep: () => new Promise((r) => setTimeout(r, 50)) });
    await cap.start();
    await journaledAlready('ss_dup', 9);
    await appliedItem('ss_dup', 9, 'dup-1', -2);
    await t.rejects(cap.caughtUp(1500), /duplicate change id/);
    t.equal(cap.status().errorCode, 'SPOKESYNC_E_JOURNAL_DUPLICATE');
    const count = await db.query<{ n: number }>("SELECT COUNT(*) AS n FROM ss_dup.journal WHERE change_id = 'huye:9'");
    t.equal(Number(count[0]!.n), 1);
    await db.exec("DELETE FROM ss_dup.journal WHERE change_id = 'huye:9'");
    await cap.caughtUp(10_000);
    const rows = await journal(db, 0, 'ss_dup');
    t.same(rows.map((r) => [r.changeId, r.cs.ops.length]), [['huye:9', 1]], 'written once the conflict is gone');
    t.notOk(cap.status().error);
    await cap.stop();
  });

  await t.test('groups built behind a write that fails are never written; all is reread and written once', async (t) => {
    const cap = await capture('ss_ahead', { sleep: () => new Promise((r) => setTimeout(r, 50)) });
    await cap.start();
    await cap.caughtUp();
    await cap.stop();
    await journaledAlready('ss_ahead', 7);
    // a backlog of several groups (5,000 rows each at most) whose first one cannot be written
    await appliedItem('ss_ahead', 7, 'ahead-0', -3);
    const want: number[] = [];
    for (let i = 0; i < 300; i++) {
      const rows: unknown[][] = [];
      for (let j = 0; j < 50; j++) {
        rows.push([`ahead-${++seq}`, seq]);
        want.push(seq);
      }
      await sqlAfterCrash.query('INSERT INTO app.items (uuid, seq) VALUES ?', [rows]);
    }
    t.teardown(() => cap.stop());
    await cap.start();
    // the first group fails (and fails again on every retry from the checkpoint)
    for (let i = 0; i < 600 && cap.status().errorCode !== 'SPOKESYNC_E_JOURNAL_DUPLICATE'; i++) await new Promise((r) => setTimeout(r, 100));
    t.equal(cap.status().errorCode, 'SPOKESYNC_E_JOURNAL_DUPLICATE', 'the first group cannot be written');
    await new Promise((r) => setTimeout(r, 500));
    const during = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM ss_ahead.journal');
    t.equal(Number(during[0]!.n), 1, 'nothing after the failed group was written while it fails');
    await db.exec("DELETE FROM ss_ahead.journal WHERE change_id = 'huye:7'");
    await cap.caughtUp(120_000);
    const rows = await journal(db, 0, 'ss_ahead');
    t.equal(rows[0]!.changeId, 'huye:7', 'the failed change set first');
    t.same(rows.slice(1).flatMap((r) => r.cs.ops.map((o) => Number((o as InsertOp).row.seq))), want, 'then every later one, once, in order');
    await cap.stop();
  });

  await t.test('a purged binlog at the checkpoint is an error with the remedy, never skipped', async (t) => {
    const cap = await capture('ss_purge');
    await cap.start();
    await write2(1);
    await cap.caughtUp();
    await cap.stop();
    await write2(1);
    await sqlAfterCrash.query('FLUSH BINARY LOGS');
    const [last] = await db.query<{ File: string }>('SHOW MASTER STATUS');
    // the server keeps a file a binlog reader still has open: retry until the stopped reader is gone
    for (let i = 0; i < 50; i++) {
      await sqlAfterCrash.query(`PURGE BINARY LOGS TO '${last!.File}'`);
      const files = await db.query<{ Log_name: string }>('SHOW BINARY LOGS');
      if (files.length === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.teardown(() => cap.stop());
    const err = await cap.start().then(() => null, (e: unknown) => e);
    t.ok(isSpokesyncError(err, 'SPOKESYNC_E_BINLOG_PURGED'), 'SPOKESYNC_E_BINLOG_PURGED');
    t.match((err as Error).message, /no longer on the server/);
    t.match((err as { fix: string }).fix, /clone/);
    t.equal(cap.status().running, false);
  });
});

export type { Db };
