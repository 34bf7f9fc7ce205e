// INVISIBLE columns sync like any other: a table whose uuid (and another
// column) is INVISIBLE is captured in one schema and applied in another, and
// inserts, updates and deletes arrive whole, without a false conflict (a row
// read with SELECT * lacks its invisible columns, so its digest differs from
// the origin's).
import t from 'tap';
import { journal, makeCapture } from '../helpers/capture-fixture.js';
import { STATE, applyEnv, entries } from './apply-fixture.js';

const table = (schema: string): string => `CREATE TABLE ${schema}.person (
  person_id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  uuid CHAR(38) NOT NULL DEFAULT '' INVISIBLE,
  name VARCHAR(100) NULL,
  note VARCHAR(20) NULL INVISIBLE,
  UNIQUE KEY person_uuid (uuid)) ENGINE=InnoDB`;

void t.test('a table with an invisible uuid and another invisible column: insert, update and delete apply without a conflict', async (t) => {
  const env = await applyEnv(['CREATE DATABASE app', 'CREATE DATABASE src', table('app'), table('src')]);
  t.teardown(() => env.close());
  const cap = await makeCapture(env.server, env.db, 'src', ['person'], { stateSchema: 'ss_src' });
  await cap.start();
  t.teardown(() => cap.stop());
  const applier = await env.applier({ tables: new Set(['person']) });

  const rows = (schema: string): Promise<unknown[]> => env.rows(`SELECT uuid, name, note FROM ${schema}.person ORDER BY uuid`);
  await env.db.exec("INSERT INTO src.person (uuid, name, note) VALUES ('p1', 'Ana', 'n1'), ('p2', 'Bo', NULL), ('p3', NULL, 'n3')");
  await env.db.exec("UPDATE src.person SET name = 'Ana B', note = 'n1b' WHERE uuid = 'p1'");
  await env.db.exec("UPDATE src.person SET note = 'n2' WHERE uuid = 'p2'");
  await cap.caughtUp();
  const first = await journal(env.db, 0, 'ss_src');
  const r1 = await applier.applyBatch('kigali', entries(...first.map((e) => e.cs)));
  t.match(r1, { applied: first.length, conflicts: 0 }, 'inserts and updates applied, no conflict');
  t.same(await rows('app'), await rows('src'), 'the invisible columns arrived');

  await env.db.exec("DELETE FROM src.person WHERE uuid IN ('p1', 'p3')");
  await env.db.exec("DELETE FROM src.person WHERE uuid = 'p2'");
  await cap.caughtUp();
  const second = await journal(env.db, first.at(-1)!.seq, 'ss_src');
  t.equal(second.length, 2);
  const r2 = await applier.applyBatch('kigali', entries(...second.map((e) => e.cs)));
  t.match(r2, { applied: 2, conflicts: 0 }, 'deletes applied, no conflict');
  t.equal(await env.count('app.person'), 0, 'every row deleted');
  t.equal(await env.count(`${STATE}.conflicts`), 0, 'no conflict recorded');
});
