// A spokesync older than its state schema (a newer release ran on this node, or
// the state was restored from one) refuses to start, the daemon and every
// command that opens the state: SPOKESYNC_E_STATE_NEWER naming both versions,
// exit 1, and nothing written: not a row, not a table, not a byte of binlog.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Queryable } from '../../apply/core/db.js';
import { STATE_VERSION, ensureStateSchema } from '../../apply/core/state-schema.js';
import { freePort, loadOpenmrs, startServer } from '../../deploy/sandbox/mariadb.js';
import { spokesync } from '../helpers/cli.js';

const NEWER = STATE_VERSION + 1;

/** Everything of the state schema and the binlog that a write would change. */
async function fingerprint(db: Queryable): Promise<unknown> {
  const tables = await db.query<{ t: string }>("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'spokesync' ORDER BY 1");
  const columns = await db.query("SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'spokesync' ORDER BY 1, 2");
  const sums = await db.query(`CHECKSUM TABLE ${tables.map((x) => `spokesync.\`${x.t}\``).join(', ')} EXTENDED`);
  const [binlog] = await db.query<{ File: string; Position: string }>('SHOW MASTER STATUS');
  return { tables, columns, sums, binlog: `${binlog?.File}:${binlog?.Position}` };
}

void t.test('every command that opens the state refuses a newer one and writes nothing', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  await loadOpenmrs(s);
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  await ensureStateSchema(db, 'spokesync');
  // what a newer release may have done: a table of its own, one of ours gone, its version
  await db.exec('CREATE TABLE spokesync.future_things (id INT PRIMARY KEY) ENGINE=InnoDB');
  await db.exec('DROP TABLE spokesync.carry');
  await db.exec("INSERT INTO spokesync.peers (peer, acked_seq, received_seq, sent_seq) VALUES ('hub', 4, 9, 4)");
  await db.exec("UPDATE spokesync.meta SET v = ? WHERE k = 'version'", [String(NEWER)]);
  const before = await fingerprint(db);

  const dir = mkdtempSync(join(tmpdir(), 'spokesync-state-newer-'));
  const config = join(dir, 'clinic.yaml');
  writeFileSync(config, [
    'node: { id: clinic }',
    `database: { host: 127.0.0.1, port: ${s.port}, user: root, schema: openmrs, serverId: 65030 }`,
    'tables: { include: [person, person_name] }',
    `parent: { url: "http://127.0.0.1:${await freePort()}", token: clinic-token-0123456789 }`,
  ].join('\n') + '\n');
  const refusal = new RegExp(`the state schema spokesync is at state version ${NEWER}, written by a newer spokesync; ` +
    `this spokesync knows state versions up to ${STATE_VERSION}: upgrade spokesync on this node\\n  fix: .*install that release or a newer one.*\\(SPOKESYNC_E_STATE_NEWER\\)`);

  const commands = [['run'], ['status'], ['sync'], ['quarantine'], ['conflicts'], ['export', '--out', join(dir, 'up.usb')],
    ['verify'], ['join'], ['clone', '--force']];
  for (const args of commands) {
    const r = await spokesync([...args, '--config', config], {}, { killAfterMs: 30_000 });
    t.equal(r.code, 1, `${args[0]}: exit 1`);
    t.match(r.err, refusal, `${args[0]}: refused, naming both versions`);
  }
  const check = await spokesync(['check', '--config', config]);
  t.equal(check.code, 1, 'check: exit 1');
  t.match(check.out, new RegExp(`error: the state schema spokesync is at state version ${NEWER}`), 'check names it among the problems');

  t.same(await fingerprint(db), before, 'the state schema and the binlog untouched');
});
