// DDL while capture runs: a table created that matches the config's tables
// (here: names starting with p) is captured from its first row, without a
// restart, rows written right after the CREATE included; a table renamed out
// of them stops syncing with a log line; one created without an identity is
// named in an error and left alone; capture goes on through all of it.
import t from 'tap';
import { createLogger } from '../../apply/core/log.js';
import { appServer, journal, makeCapture } from '../helpers/capture-fixture.js';

void t.test('a table created while capture runs is captured from its first row; one renamed out of the synced tables stops', async (t) => {
  const { s, db } = await appServer(t);
  await db.exec('CREATE TABLE app.person (id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(38) NOT NULL UNIQUE, name VARCHAR(20))');
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'debug', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const seen: string[][] = [];
  const cap = await makeCapture(s, db, 'app', ['person'], { log, syncs: (name) => name.startsWith('p'), onTables: (now) => seen.push([...now].sort()) });
  await cap.start();
  t.teardown(() => cap.stop());

  const raw = await s.connect('app');
  // the rows follow the CREATE at once, in the same session: capture reads them before it has seen the DDL
  await raw.query('CREATE TABLE app.pet (id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(38) NOT NULL UNIQUE, name VARCHAR(20))');
  await raw.query("INSERT INTO app.pet (uuid, name) VALUES ('pet1', 'a'), ('pet2', 'b')");
  await raw.query("INSERT INTO app.person (uuid, name) VALUES ('per1', 'x')");
  await raw.query("UPDATE app.pet SET name = 'c' WHERE uuid = 'pet1'");
  await raw.query('CREATE TABLE app.zother (id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(38) NOT NULL UNIQUE)');
  await raw.query("INSERT INTO app.zother (uuid) VALUES ('z1')");
  await raw.query('CREATE TABLE app.pnokey (v INT)');
  await raw.query('INSERT INTO app.pnokey VALUES (1)');
  await cap.caughtUp();
  const ops = (await journal(db)).flatMap((e) => e.cs.ops.map((o) => `${o.kind} ${o.table} ${o.id}`));
  t.same(ops, ['insert pet pet1', 'insert pet pet2', 'insert person per1', 'update pet pet1'], 'the new table\'s rows, from its first, in order');
  t.same(seen, [['person', 'pet']], 'the synced tables, told once');
  t.ok(lines.some((l) => l.msg === 'a table matching tables.include appeared: it syncs from its first row' && l.table === 'pet'), 'logged');
  t.ok(lines.some((l) => l.level === 'error' && l.table === 'pnokey'), 'a matching table without identity is named in an error');

  const before = (await journal(db)).length;
  await raw.query('RENAME TABLE app.pet TO app.zpet');
  await raw.query("INSERT INTO app.zpet (uuid, name) VALUES ('pet3', 'd')");
  await raw.query("INSERT INTO app.person (uuid, name) VALUES ('per2', 'y')");
  await cap.caughtUp();
  const after = (await journal(db, before)).flatMap((e) => e.cs.ops.map((o) => `${o.kind} ${o.table} ${o.id}`));
  t.same(after, ['insert person per2'], 'the renamed table no longer syncs; the others do');
  t.same(seen.at(-1), ['person'], 'told');
  t.ok(lines.some((l) => l.msg === 'a synced table stopped syncing' && l.table === 'pet'), 'with a log line');
  t.equal(cap.status().running, true);
  t.notOk(cap.status().error);
  await raw.end();
});
