// `spokesync verify` on a parent and a child whose local ids differ: identical
// sites exit 0 having moved little; ten rows made to differ behind spokesync's
// back (sql_log_bin=0: changed values in a uuid, a shared-key and a natural-key
// table, rows missing and extra at the child, a foreign key pointing at another
// row) exit 1 listing exactly those rows by table and identity, never a value;
// rows whose changes are on their way are listed apart as in flight.
import t from 'tap';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spokesync } from '../helpers/cli.js';
import { settle, startNode, stopNode, uuid } from '../helpers/sync-net.js';
import { diverge, register } from '../helpers/verify-rows.js';
import type { VerifyJson } from '../../agent/verify/verify-report.js';

void t.test('verify: identical, ten differing rows, rows in flight', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-verify-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'clinic', token: 'clinic-verify-token' }] });
  t.teardown(() => stopNode(hub));
  const clinic = await startNode({ id: 'clinic', parent: { url: `http://127.0.0.1:${hub.config.listen!.port}`, token: 'clinic-verify-token' } });
  t.teardown(() => stopNode(clinic));
  // the clinic's own rows first: its local ids differ from the hub's for every row
  await register(clinic, 'c', 6);
  await register(hub, 'h', 8);
  await settle([hub, clinic], [clinic]);
  const clinicCfg = await clinic.writeConfig(dir);
  await clinic.pause();

  const both = await spokesync(['verify', '--config', clinicCfg, '--out', join(dir, 'a'), '--in', join(dir, 'b')]);
  t.equal(both.code, 2, 'bad usage');
  t.match(both.err, /SPOKESYNC_E_USAGE/);
  const prefer = await spokesync(['repair', '--config', clinicCfg, '--prefer', 'nobody']);
  t.equal(prefer.code, 2, 'bad usage');
  t.match(prefer.err, /--prefer takes parent or here/);

  const same = await spokesync(['verify', '--config', clinicCfg, '--json']);
  t.equal(same.code, 0, same.err);
  const v = JSON.parse(same.out) as VerifyJson;
  t.equal(v.identical, true);
  t.same(v.differing, []);
  t.same(v.tables.map((x) => [x.table, x.state, x.rowsHere, x.rowsThere]),
    [['patient', 'same', 14, 14], ['person', 'same', 14, 14], ['setting', 'same', 2, 2], ['visit', 'same', 14, 14]]);
  t.ok(v.bytes.total > 0 && v.bytes.total < 4000, `identical sites: ${v.bytes.total} bytes moved`);
  t.equal(v.rounds, 2, 'shapes and one checksum per table');
  const text = await spokesync(['verify', '--config', clinicCfg]);
  t.equal(text.code, 0, text.err);
  t.match(text.out, /clinic against hub: 4 tables compared, identical\n[\s\S]*bytes moved: \d+ \(sent \d+, received \d+\)/);

  await clinic.resume();
  const expected = await diverge(clinic);
  await clinic.pause();
  const differ = await spokesync(['verify', '--config', clinicCfg, '--json']);
  t.equal(differ.code, 1, differ.err);
  const d = JSON.parse(differ.out) as VerifyJson;
  t.equal(d.identical, false);
  t.same(d.differing, expected, 'exactly the ten rows, by table and identity');
  t.same(d.inFlight, []);
  t.notMatch(differ.out, /changed 1|extra 1|latex|2001-02-03/, 'no value is printed');
  const listed = await spokesync(['verify', '--config', clinicCfg]);
  t.equal(listed.code, 1);
  t.match(listed.out, /10 rows differ in 4 tables/);
  t.match(listed.out, new RegExp(`visit\\s+${uuid('vh', 7)}\\s+changed`));

  // by file: the hub checks the clinic (a parent never calls a child), and the clinic the hub
  const hubCfg = await hub.writeConfig(dir);
  const clinicFile = join(dir, 'clinic.verify');
  const wrote = await spokesync(['verify', '--config', clinicCfg, '--out', clinicFile]);
  t.equal(wrote.code, 0, wrote.err);
  t.match(wrote.out, /wrote the checksums of 44 rows in 4 tables for hub/);
  const atHub = await spokesync(['verify', '--config', hubCfg, '--in', clinicFile, '--json']);
  t.equal(atHub.code, 1, atHub.err);
  const flip = { changed: 'changed', 'missing here': 'only here', 'only here': 'missing here' } as Record<string, string>;
  t.same((JSON.parse(atHub.out) as VerifyJson).differing, expected.map((e) => ({ ...e, difference: flip[e.difference] })),
    'the hub, beside its running daemon, finds the same rows from the clinic\'s file');
  const hubFile = join(dir, 'hub.verify');
  const wroteHub = await spokesync(['verify', '--config', hubCfg, '--out', hubFile, '--peer', 'clinic']);
  t.equal(wroteHub.code, 0, wroteHub.err);
  const atClinic = await spokesync(['verify', '--config', clinicCfg, '--in', hubFile, '--json']);
  t.equal(atClinic.code, 1, atClinic.err);
  const fromFile = JSON.parse(atClinic.out) as VerifyJson;
  t.same(fromFile.differing, expected);
  t.equal(fromFile.bytes.total, (await stat(hubFile)).size, 'by file, the bytes moved are the file\'s');
  const notMine = await spokesync(['verify', '--config', clinicCfg, '--in', clinicFile]);
  t.equal(notMine.code, 1);
  t.match(notMine.err, /SPOKESYNC_E_USB_FILE/, 'a file written for another node');

  // changes on their way at either side are in flight, not differences
  await clinic.resume();
  await clinic.sql(`UPDATE person SET name = 'renamed at the clinic' WHERE uuid = ?`, [uuid('h', 5)]);
  await hub.sql(`INSERT INTO visit (uuid, person_id, note) VALUES (?, (SELECT person_id FROM person WHERE uuid = ?), 'new at hub')`, [uuid('vn', 1), uuid('c', 1)]);
  await hub.node.capture.caughtUp(60_000);
  await clinic.pause();
  const moving = await spokesync(['verify', '--config', clinicCfg, '--json']);
  t.equal(moving.code, 1, moving.err);
  const m = JSON.parse(moving.out) as VerifyJson;
  t.same(m.differing, expected, 'the same ten rows differ');
  t.same(m.inFlight, [
    { table: 'person', identity: uuid('h', 5), at: 'here' },
    { table: 'visit', identity: uuid('vn', 1), at: 'there' },
  ]);

  // a change set quarantined here is in flight too: a visit of a person the hub never sent
  await clinic.resume();
  await hub.sql(`SET sql_log_bin = 0; INSERT INTO person (uuid, name) VALUES (?, 'never sent'); SET sql_log_bin = 1;
    INSERT INTO visit (uuid, person_id) VALUES (?, LAST_INSERT_ID());`, [uuid('q', 1), uuid('vq', 1)]);
  await settle([hub, clinic], [clinic]);
  const waiting = await clinic.node.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM spokesync.quarantine');
  t.equal(Number(waiting[0]?.n), 1, 'the visit waits in quarantine at the clinic');
  await clinic.pause();
  const held = await spokesync(['verify', '--config', clinicCfg, '--json']);
  t.equal(held.code, 1, held.err);
  const q = JSON.parse(held.out) as VerifyJson;
  t.same(q.differing, [...expected, { table: 'person', identity: uuid('q', 1), difference: 'missing here' }]
    .sort((a, b) => (a.table + a.identity < b.table + b.identity ? -1 : 1)));
  t.same(q.inFlight, [{ table: 'visit', identity: uuid('vq', 1), at: 'here' }], 'the quarantined visit is in flight, not a difference');

  // a table whose columns differ is reported, not compared
  await clinic.sql('ALTER TABLE setting MODIFY value VARCHAR(200) NULL');
  const shaped = await spokesync(['verify', '--config', clinicCfg, '--json']);
  t.equal(shaped.code, 1, shaped.err);
  const sh = JSON.parse(shaped.out) as VerifyJson;
  t.match(sh.tables.find((x) => x.table === 'setting'), { state: 'shape differs', shape: 'column value is varchar(200) here and text there' });
  t.notOk(sh.differing.some((x) => x.table === 'setting'), 'its rows are not compared');
  const shapedText = await spokesync(['verify', '--config', clinicCfg]);
  t.match(shapedText.out, /1 table differs in shape/);
});
