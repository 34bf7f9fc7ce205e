// `spokesync quarantine` as operators run it: the built binary against a real
// server. List, show (decoded), retry (with and without a running daemon),
// discard (recorded, shown by status), and exit 2 on every bad input.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spokesync, spokesyncHere } from '../helpers/cli.js';
import { APP, STATE, applyEnv, changeSet, entries, personInsert, uuid } from './apply-fixture.js';

void t.test('spokesync quarantine: list, show, retry, discard, and clear errors', async (t) => {
  const env = await applyEnv();
  t.teardown(() => env.close());
  const file = join(mkdtempSync(join(tmpdir(), 'spokesync-quarantine-')), 'node.yaml');
  writeFileSync(file, `
node: { id: here }
database: { host: 127.0.0.1, port: ${env.server.port}, user: root, schema: ${APP}, stateSchema: ${STATE}, serverId: 65012 }
tables: { include: [person, person_name] }
`);
  const none = await spokesync(['quarantine', '--config', file]);
  t.equal(none.code, 0, none.err);
  t.equal(none.out.trim(), 'nothing in quarantine');

  const applier = await env.applier();
  const missing = uuid();
  const n1 = uuid();
  const n2 = uuid();
  const waits = changeSet('musha', [{ kind: 'insert', table: 'person_name', id: n1, row: { uuid: n1, person_id: { ref: 'person', id: missing }, given: 'Aline', family: 'Uwase' } }]);
  const waits2 = changeSet('gahini', [{ kind: 'insert', table: 'person_name', id: n2, row: { uuid: n2, person_id: { ref: 'person', id: missing }, given: 'Eric', family: 'Habimana' } }]);
  const wide = changeSet('musha', [personInsert(uuid(), 'W', { gender: 'far-too-long-gender' })]);
  t.match(await applier.applyBatch('kigali', entries(waits, waits2, wide)), { quarantined: 3 });

  const json = await spokesync(['quarantine', '--config', file, '--json']);
  t.equal(json.code, 0, json.err);
  const items = JSON.parse(json.out) as Array<Record<string, unknown>>;
  t.equal(items.length, 3);
  t.match(items.find((i) => i.changeId === wide.id), {
    origin: 'musha', fromPeer: 'kigali', tables: ['person'], tries: 1, nextTry: /^\d{4}-/,
    reason: 'a value is too long for its column: table person, column gender, op 1 of 1 (server error 1406)',
    firstTry: /^\d{4}-/, lastTry: /^\d{4}-/,
  });
  const text = await spokesync(['quarantine', '--config', file]);
  t.match(text.out, /^3 change sets in quarantine, in origin order:/);
  t.match(text.out, new RegExp(`${waits.id} {2}origin musha, from kigali, tables person_name\\n {2}reason {3}person_name.person_id references a person row that is not here`));
  t.notMatch(text.out, /far-too-long-gender/, 'the list shows no value');

  const shown = await spokesync(['quarantine', '--config', file, 'show', waits.id]);
  t.equal(shown.code, 0, shown.err);
  t.match(shown.out, /1\. insert person_name /);
  t.match(shown.out, /given = "Aline"/, 'show decodes the values as they would be applied');
  t.match(shown.out, new RegExp(`person_id = \\{"ref":"person","id":"${missing}"\\}`));
  const shownJson = JSON.parse((await spokesync(['quarantine', '--config', file, 'show', waits.id, '--json'])).out) as Record<string, unknown>;
  t.match(shownJson, { changeId: waits.id, ops: [{ kind: 'insert', table: 'person_name', row: { given: 'Aline' } }] });

  // every bad input: a clear message and exit 2
  const bad: Array<[string[], RegExp]> = [
    [['show', 'nope:1'], /no change set "nope:1" is in quarantine/],
    [['retry', 'nope:1'], /no change set "nope:1" is in quarantine/],
    [['discard', 'nope:1', '--reason', 'x'], /no change set "nope:1" is in quarantine/],
    [['discard', waits.id], /discard needs --reason/],
    [['discard', waits.id, '--reason', ' '], /discard needs --reason/],
    [['retry', waits.id, '--all'], /an ID or --all, not both/],
    [['retry'], /an ID or --all/],
    [['show'], /show needs the id/],
    [['purge', waits.id], /unknown action "purge"/],
    [['show', waits.id, '--reason', 'x'], /--reason goes with discard/],
  ];
  for (const [args, want] of bad) {
    const r = await spokesyncHere(['quarantine', '--config', file, ...args]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.err, want, args.join(' '));
  }

  // discard: out of quarantine, kept with who/when/why, shown by status
  const d = await spokesync(['quarantine', '--config', file, 'discard', wide.id, '--reason', 'gender codes are one letter here'], { USER: 'ops' });
  t.equal(d.code, 0, d.err);
  t.match(d.out, new RegExp(`discarded ${wide.id}`));
  t.same((await env.rows<{ change_id: string }>(`SELECT change_id FROM ${STATE}.quarantine WHERE change_id = ?`, [wide.id])), []);
  t.match(await env.rows(`SELECT node, origin, from_peer, tables, why, tries, body IS NOT NULL AS kept FROM ${STATE}.discards`), [
    { node: 'here', origin: 'musha', from_peer: 'kigali', tables: 'person', why: 'gender codes are one letter here', tries: 1, kept: 1 },
  ]);
  const status = await spokesync(['status', '--config', file]);
  t.equal(status.code, 0, status.err);
  t.match(status.out, /discarded {3}1/);
  t.match(status.out, new RegExp(`discarded ${wide.id} \\(person\\) here, not yet reported to the parent: .* gender codes are one letter here`));
  const sj = JSON.parse((await spokesync(['status', '--config', file, '--json'])).out) as { discards: { count: number; entries: unknown[] } };
  t.match(sj.discards, { count: 1, entries: [{ changeId: wide.id, why: 'gender codes are one letter here', reportedAt: null }] });

  // retry while the daemon runs (it holds the node lock): made due for its next tick
  const lock = await env.server.connect();
  await lock.query('SELECT GET_LOCK(?, 0)', [`spokesync:${STATE}`]);
  const busy = await spokesync(['quarantine', '--config', file, 'retry', '--all']);
  t.equal(busy.code, 0, busy.err);
  t.match(busy.out, /2 change sets made due: the running daemon tries them at its next tick/);
  t.same(await env.rows(`SELECT next_try FROM ${STATE}.quarantine`), [{ next_try: null }, { next_try: null }]);
  await lock.query('SELECT RELEASE_LOCK(?)', [`spokesync:${STATE}`]);

  // retry with no daemon: applied at once once the row it needs is there
  await env.db.exec(`INSERT INTO ${APP}.person (uuid, name) VALUES (?, 'P')`, [missing]);
  const now = await spokesync(['quarantine', '--config', file, 'retry', waits.id]);
  t.equal(now.code, 0, now.err);
  t.match(now.out, new RegExp(`; ${waits.id} applied`));
  t.equal(await env.count(`${APP}.person_name`, 'uuid = ?', [n1]), 1);
});
