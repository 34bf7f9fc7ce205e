// `spokesync conflicts` as users run it: the built binary against a real server.
import { spokesync } from '../helpers/cli.js';
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APP, STATE, applyEnv, changeSet, entries, personInsert } from './apply-fixture.js';

void t.test('spokesync conflicts lists recorded conflicts, newest first, as text or JSON', async (t) => {
  const env = await applyEnv();
  t.teardown(() => env.close());
  const file = join(mkdtempSync(join(tmpdir(), 'spokesync-conflicts-')), 'node.yaml');
  writeFileSync(file, `
node: { id: here }
database: { host: 127.0.0.1, port: ${env.server.port}, user: root, schema: ${APP}, stateSchema: ${STATE}, serverId: 65011 }
tables: { include: [person] }
`);
  const none = await spokesync(['conflicts', '--config', file]);
  t.equal(none.code, 0, none.err);
  t.equal(none.out.trim(), 'no conflicts recorded');

  const applier = await env.applier();
  const id = '0f0f0f0f-1111-2222-3333-444444444444';
  await applier.applyBatch('kigali', entries(changeSet('kigali', [personInsert(id, 'Ada')])));
  await env.db.exec(`UPDATE ${APP}.person SET name = 'Ada here', note = ? WHERE uuid = ?`, ['x', id]);
  for (const name of ['Ada one', 'Ada two']) {
    await applier.applyBatch('kigali', entries(changeSet('kigali', [{ kind: 'update', table: 'person', id, set: { name }, old: { name: 'Ada' } }])));
  }

  const json = await spokesync(['conflicts', '--config', file, '--json', '--limit', '1']);
  t.equal(json.code, 0, json.err);
  const rows = JSON.parse(json.out) as Array<Record<string, unknown>>;
  t.equal(rows.length, 1, '--limit');
  t.match(rows[0], {
    kind: 'update', table: 'person', identity: id, origin: 'kigali', outcome: 'remote wins: name',
    local: { values: { name: 'Ada one' } }, remote: { set: { name: 'Ada two' }, old: { name: 'Ada' } },
  }, 'the newest first, with both versions');

  const text = await spokesync(['conflicts', '--config', file]);
  t.equal(text.code, 0);
  t.match(text.out, /^2 most recent conflicts, newest first:\n/);
  t.match(text.out, /update person 0f0f0f0f-1111-2222-3333-444444444444 {2}\[unreviewed\]\n {2}change {3}kigali:\d+ \(origin kigali\)\n {2}outcome {2}remote wins: name\n/);

  const bad = await spokesync(['conflicts', '--config', file, '--limit', 'lots']);
  t.equal(bad.code, 2, 'a bad --limit is a usage error');
  t.match(bad.out + bad.err, /--limit/);
});
