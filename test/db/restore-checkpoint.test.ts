// Whether a capture checkpoint belongs to this server's binlog: one written
// here and kept across a server crash does; one from another server (a file this
// server never had, a position inside an event or past a file's end, a GTID the
// binlog there is behind or the server never wrote) does not; nor does one
// whose state schema was loaded again from a dump on the same server. Rebuilding
// the checkpoint table in place (OPTIMIZE) is not a restore.
import t from 'tap';
import { openDb } from '../../apply/core/db.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';
import { checkCheckpoint, noteCheckpointTable, parseGtids } from '../../agent/capture/checkpoint-check.js';
import { binlogEnd } from '../../agent/capture/binlog-server.js';
import { createCheckpoint, readCheckpoint, startingCheckpoint } from '../../agent/journal/writer.js';
import { incarnation, readRestore } from '../../agent/routing/restore.js';
import { createLogger } from '../../apply/core/log.js';
import { dumpSchemas, loadSql, startServer } from '../../deploy/sandbox/mariadb.js';

const SS = 'spokesync';
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

void t.test('a checkpoint is checked against the server\'s binlog', async (t) => {
  const server = await startServer();
  t.teardown(() => server.stop());
  const db = openDb({ host: server.host, port: server.port, user: 'root' });
  t.teardown(() => db.close());
  await db.exec('CREATE DATABASE app');
  await db.exec('CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB');
  for (let i = 0; i < 5; i++) await db.exec('INSERT INTO app.t VALUES (?, ?)', [i, `row ${i}`]);
  await ensureStateSchema(db, SS);
  const end = await binlogEnd(db);
  await createCheckpoint(db, SS, { position: end.position, gtid: end.gtid, hlc: '0' });
  await noteCheckpointTable(db, SS);
  const cp = (await readCheckpoint(db, SS))!;
  const check = (over: Partial<typeof cp> = {}) => checkCheckpoint(db, SS, { ...cp, ...over });
  const [g] = parseGtids(cp.gtid);
  t.ok(g, 'the server gives a GTID');

  t.same(await check(), { restored: false }, 'the checkpoint just written');
  for (let i = 5; i < 10; i++) await db.exec('INSERT INTO app.t VALUES (?, ?)', [i, `row ${i}`]);
  await server.crashAndRestart();
  t.same(await check(), { restored: false }, 'the same checkpoint after more writes and a crash of the server');

  t.same(await check({ position: { file: 'mysql-bin.000000', pos: 4 } }), { restored: false },
    'a file older than every file of the server: purged, not a restore (capture says so)');
  t.match(await check({ position: { file: 'mysql-bin.000099', pos: 4 } }), { restored: true, reason: /newer than every file/ });
  t.match(await check({ position: { ...cp.position, pos: 50_000_000 } }), { restored: true, reason: /beyond the end/ });
  t.match(await check({ position: { ...cp.position, pos: cp.position.pos - 3 } }), { restored: true, reason: /not the start of an event/ });
  t.match(await check({ gtid: `${g!.domain}-${g!.server}-${g!.seq + 1000n}` }), { restored: true, reason: /never held transaction/ });
  t.match(await check({ gtid: `${g!.domain}-${Number(g!.server) + 1}-1` }), { restored: true, reason: /never held transaction/ });
  t.match(await check({ gtid: `${g!.domain}-${g!.server}-${g!.seq + 2n}` }), { restored: true, reason: /is at GTID/ },
    'a GTID the server wrote, but after the position');

  await pause(1100);
  await db.exec(`OPTIMIZE TABLE ${SS}.checkpoint`);
  t.same(await check(), { restored: false }, 'the checkpoint table rebuilt in place is not a restore');
  await noteCheckpointTable(db, SS);

  const backup = await dumpSchemas(server, [SS]);
  await db.exec('INSERT INTO app.t VALUES (100, ?)', ['after the backup']);
  await pause(1100);
  await loadSql(server, backup);
  const verdict = await checkCheckpoint(db, SS, (await readCheckpoint(db, SS))!);
  t.match(verdict, { restored: true, reason: /state schema was loaded again/ }, 'the state schema loaded again from a dump on the same server');

  // found at start: capture moves to the end of the binlog, unless the clock is behind the backup
  const log = createLogger({ level: 'warn', write: () => undefined });
  await db.exec(`UPDATE ${SS}.checkpoint SET binlog_file = 'mysql-bin.000099', binlog_pos = 4, updated_at = UTC_TIMESTAMP(6) + INTERVAL 1 DAY`);
  await t.rejects(startingCheckpoint(db, SS, undefined, log), { code: 'SPOKESYNC_E_RESTORE_CLOCK' }, 'a clock behind the backup: refused');
  t.equal((await readCheckpoint(db, SS))?.position.file, 'mysql-bin.000099', 'and nothing changed');
  t.equal(await readRestore(db, SS), null);
  await db.exec(`UPDATE ${SS}.checkpoint SET updated_at = UTC_TIMESTAMP(6) - INTERVAL 1 DAY`);
  const before = await incarnation(db, SS);
  const endThen = (await binlogEnd(db)).position;
  const started = await startingCheckpoint(db, SS, undefined, log);
  t.same(started.position, endThen, 'capture starts at the end of the binlog (what the restore wrote is before it)');
  const rec = await readRestore(db, SS);
  t.match(rec, { from: { file: 'mysql-bin.000099', pos: 4 }, incarnation: { before } }, 'the restore is recorded');
  t.not(await incarnation(db, SS), before, 'with a new incarnation');
  t.same(await checkCheckpoint(db, SS, started), { restored: false }, 'and the next start finds nothing');
});
