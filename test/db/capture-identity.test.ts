// Identity on the OpenMRS schema: uuid rows, shared keys, natural keys,
// self-references, references to tables that do not sync, rows deleted
// before capture reads the change that refers to them, one change set per
// transaction, and ledger-marked (applied) transactions.
import t from 'tap';
import { encodeIdentity } from '../../apply/core/identity.js';
import { packHlc } from '../../apply/core/hlc.js';
import type { InsertOp, Op } from '../../apply/core/model.js';
import { createLogger } from '../../apply/core/log.js';
import { loadCatalog } from '../../apply/core/catalog.js';
import { storedVersionsQuery } from '../../apply/replay/versions.js';
import { loadOpenmrs, startServer } from '../../deploy/sandbox/mariadb.js';
import { STATE, dbFor, journal, makeCapture } from '../helpers/capture-fixture.js';

const ADMIN_USER = '82f18b44-6814-11e8-923f-e9a88dcb533f';
const CONCEPT_1 = 'cf82933b-3f3f-45e7-a5ab-5d31aaee3da3';
const TABLES = ['person', 'patient', 'person_name', 'role_privilege', 'obs'];

void t.test('capture identities on OpenMRS', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  await loadOpenmrs(s);
  const db = dbFor(s);
  t.teardown(() => db.close());
  const sql = await s.connect('openmrs');
  let cap = await makeCapture(s, db, 'openmrs', TABLES);
  await cap.start();
  t.teardown(() => cap.stop());

  const uuid = (n: string): string => `00000000-0000-4000-8000-${n.padStart(12, '0')}`;
  const addPerson = async (u: string): Promise<number> => {
    await sql.query("INSERT INTO person (gender, date_created, creator, uuid) VALUES ('F', '2026-01-02 03:04:05', 1, ?)", [u]);
    const [rows] = await sql.query('SELECT LAST_INSERT_ID() AS id');
    return Number((rows as { id: number }[])[0]!.id);
  };
  const catalog = await loadCatalog(db, 'openmrs');
  /** The insert versions of a row as apply reads them (insert_ranges through the live row, or idmap). */
  const insertVersions = async (table: string, id: string): Promise<{ hlc: string; node: string }[]> => {
    const q = storedVersionsQuery(STATE, catalog.tables.get(table), 'openmrs', 'v', table, [id]);
    const rows = await db.query<{ b: string; c: string; d: string }>(q.sql, q.params);
    // (one version per row: the same one from several places counts once)
    const seen = new Set(rows.filter((r) => r.b === '+').map((r) => `${String(r.c)} ${r.d}`));
    return [...seen].map((v) => ({ hlc: v.split(' ')[0]!, node: v.split(' ')[1]! }));
  };
  let seen = 0;
  const next = async (): Promise<Awaited<ReturnType<typeof journal>>> => {
    await cap.caughtUp();
    const rows = await journal(db, seen);
    if (rows.length > 0) seen = rows[rows.length - 1]!.seq;
    return rows;
  };

  await t.test('person + patient + name in one transaction: one change set', async (t) => {
    await sql.query('BEGIN');
    const pid = await addPerson(uuid('1'));
    await sql.query("INSERT INTO patient (patient_id, creator, date_created) VALUES (?, 1, '2026-01-02 03:04:05')", [pid]);
    await sql.query("INSERT INTO person_name (person_id, given_name, creator, date_created, uuid) VALUES (?, 'Ama', 1, NOW(), ?)", [pid, uuid('2')]);
    await sql.query('COMMIT');
    const rows = await next();
    t.equal(rows.length, 1, 'one journal row');
    const cs = rows[0]!.cs;
    t.equal(cs.origin, 'kigali');
    t.equal(cs.id, `kigali:${cs.hlc}`);
    t.equal(rows[0]!.fromPeer, null);
    t.equal(rows[0]!.tables, 'person,patient,person_name');
    t.same(cs.ops.map((o) => [o.kind, o.table, o.id]), [
      ['insert', 'person', uuid('1')], ['insert', 'patient', uuid('1')], ['insert', 'person_name', uuid('2')],
    ]);
    const [person, patient, name] = cs.ops as InsertOp[];
    t.notOk('person_id' in person!.row, 'person_id is a local id');
    t.same(person!.row.creator, { ref: 'users', id: ADMIN_USER }, 'FK to a table that does not sync travels as its uuid');
    t.notOk('patient_id' in patient!.row, 'the shared key does not travel');
    t.equal(patient!.row.allergy_status, 'Unknown');
    t.same(name!.row.person_id, { ref: 'person', id: uuid('1') });
  });

  await t.test('natural key: role_privilege is its (role, privilege) tuple, parts translated', async (t) => {
    await sql.query("INSERT INTO role_privilege (role, privilege) VALUES ('Provider', 'Add Cohorts')");
    await sql.query("DELETE FROM role_privilege WHERE role = 'Provider' AND privilege = 'Add Cohorts'");
    const rows = await next();
    const ops = rows.flatMap((r) => r.cs.ops);
    const id = encodeIdentity(['8d94f280-c2cc-11de-8d13-0010c6dffd0f', '5f8a2896-6814-11e8-923f-e9a88dcb533f']);
    t.same(ops.map((o) => [o.kind, o.table, o.id]), [['insert', 'role_privilege', id], ['delete', 'role_privilege', id]]);
    t.same((ops[0] as InsertOp).row, {
      role: { ref: 'role', id: '8d94f280-c2cc-11de-8d13-0010c6dffd0f' },
      privilege: { ref: 'privilege', id: '5f8a2896-6814-11e8-923f-e9a88dcb533f' },
    });
  });

  await t.test('obs self-reference and a reference to concept', async (t) => {
    const [p] = await sql.query('SELECT person_id FROM person WHERE uuid = ?', [uuid('1')]);
    const pid = (p as { person_id: number }[])[0]!.person_id;
    await sql.query("INSERT INTO obs (person_id, concept_id, obs_datetime, creator, date_created, uuid) VALUES (?, 1, NOW(), 1, NOW(), ?)", [pid, uuid('10')]);
    await sql.query(
      `INSERT INTO obs (person_id, concept_id, obs_datetime, obs_group_id, value_numeric, creator, date_created, uuid)
       SELECT ?, 2, NOW(), obs_id, 36.6, 1, NOW(), ? FROM obs WHERE uuid = ?`, [pid, uuid('11'), uuid('10')]);
    const rows = await next();
    const ops = rows.flatMap((r) => r.cs.ops) as InsertOp[];
    t.equal(rows.length, 2);
    t.same(ops[0]!.row.concept_id, { ref: 'concept', id: CONCEPT_1 });
    t.equal(ops[0]!.row.obs_group_id, null);
    t.same(ops[1]!.row.obs_group_id, { ref: 'obs', id: uuid('10') }, 'self-reference as the group obs uuid');
    t.equal(ops[1]!.row.value_numeric, '36.6');
    const idmap = await db.query<{ local_id: string; identity: string }>(`SELECT local_id, identity FROM ${STATE}.idmap WHERE tbl = 'concept' ORDER BY local_id`);
    t.same(idmap.map((r) => [r.local_id, r.identity]), [['1', CONSTANT_CONCEPTS[0]], ['2', CONSTANT_CONCEPTS[1]]], 'looked-up rows are remembered in idmap');
  });

  await t.test('updates carry changed columns; an identity change is delete + insert; a patient is its person', async (t) => {
    await sql.query("UPDATE person SET gender = 'M', birthdate = '1990-05-06' WHERE uuid = ?", [uuid('1')]);
    await sql.query("UPDATE person_name SET uuid = ? WHERE uuid = ?", [uuid('3'), uuid('2')]);
    await sql.query("UPDATE patient SET voided = 1 WHERE patient_id = (SELECT person_id FROM person WHERE uuid = ?)", [uuid('1')]);
    const ops: Op[] = (await next()).flatMap((r) => r.cs.ops);
    t.same(ops.map((o) => [o.kind, o.table, o.id]), [
      ['update', 'person', uuid('1')], ['delete', 'person_name', uuid('2')], ['insert', 'person_name', uuid('3')], ['update', 'patient', uuid('1')],
    ]);
    t.same(ops[0], { kind: 'update', table: 'person', id: uuid('1'), set: { gender: 'M', birthdate: '1990-05-06' }, old: { gender: 'F', birthdate: null } });
    t.same((ops[2] as InsertOp).row.person_id, { ref: 'person', id: uuid('1') });
  });

  await t.test('versions: an insert once per row (a run of insert_ranges, or col + without a one-column key), updates per column, deletes as a tombstone', async (t) => {
    const versions = (id: string): Promise<{ col: string; hlc: string; node: string }[]> => db.query(
      `SELECT col, hlc, node FROM ${STATE}.versions WHERE identity = ? ORDER BY col`, [id]);
    const idmap = (id: string): Promise<{ local_id: string; hlc: string | null; node: string | null }[]> => db.query(
      `SELECT local_id, hlc, node FROM ${STATE}.idmap WHERE tbl = 'person' AND identity = ? ORDER BY CAST(local_id AS UNSIGNED)`, [id]);
    const pid = await addPerson(uuid('50'));
    const [ins] = await next();
    t.same(await versions(uuid('50')), [], 'no per-column versions for an insert');
    t.same(await idmap(uuid('50')), [], 'no idmap row for a row inserted into a range table ...');
    const [run] = await db.query<{ n: string }>(
      `SELECT COUNT(*) AS n FROM ${STATE}.insert_ranges WHERE tbl = 'person' AND lo <= ? AND hi >= ? AND hlc = ? AND node = 'kigali'`, [pid, pid, ins!.hlc]);
    t.equal(Number(run!.n), 1, '... a run of insert_ranges holds its id with the insert version');
    t.same(await insertVersions('person', uuid('50')), [{ hlc: ins!.hlc, node: 'kigali' }], 'apply reads the insert version through the live row');
    await sql.query("UPDATE person SET gender = 'M' WHERE uuid = ?", [uuid('50')]);
    const [upd] = await next();
    t.same(await versions(uuid('50')), [{ col: 'gender', hlc: upd!.hlc, node: 'kigali' }], 'an update: its changed columns');
    await sql.query('UPDATE person SET person_id = ? WHERE person_id = ?', [pid + 1000, pid]);
    await next();
    t.same(await idmap(uuid('50')), [{ local_id: String(pid + 1000), hlc: ins!.hlc, node: 'kigali' }], 'a changed key takes the insert version along ...');
    t.same(await insertVersions('person', uuid('50')), [{ hlc: ins!.hlc, node: 'kigali' }], '... and apply reads it there');
    await sql.query('UPDATE person SET person_id = ? WHERE person_id = ?', [pid, pid + 1000]);
    await next();
    t.same(await idmap(uuid('50')), [{ local_id: String(pid), hlc: ins!.hlc, node: 'kigali' }, { local_id: String(pid + 1000), hlc: ins!.hlc, node: 'kigali' }],
      'back to a key a run holds: the idmap row stands for it');
    t.same(await insertVersions('person', uuid('50')), [{ hlc: ins!.hlc, node: 'kigali' }]);
    await sql.query("INSERT INTO role_privilege (role, privilege) VALUES ('Anonymous', 'Add Cohorts')");
    const [rp] = await next();
    const id = rp!.cs.ops[0]!.id;
    t.same(await versions(id), [{ col: '+', hlc: rp!.hlc, node: 'kigali' }], 'a table without a one-column key: one row-insert version');
    await sql.query("DELETE FROM role_privilege WHERE role = 'Anonymous' AND privilege = 'Add Cohorts'");
    const [del] = await next();
    t.same(await versions(id), [{ col: '*', hlc: del!.hlc, node: 'kigali' }, { col: '+', hlc: rp!.hlc, node: 'kigali' }], 'a delete: the tombstone');
  });

  await t.test('referenced rows deleted before capture reads the reference still resolve', async (t) => {
    const p2 = await addPerson(uuid('20'));
    await next();
    await sql.query('DELETE FROM person WHERE person_id = ?', [p2]); // captured now: its id → uuid goes into idmap
    await next();
    await cap.stop();
    // a new capture process: nothing in memory
    cap = await makeCapture(s, db, 'openmrs', TABLES);
    // a reference to the deleted person is written while capture is down (dangling: only idmap knows the person)
    await sql.query('SET SESSION foreign_key_checks = 0');
    await sql.query("INSERT INTO person_name (person_id, given_name, creator, date_created, uuid) VALUES (?, 'Kofi', 1, NOW(), ?)", [p2, uuid('21')]);
    await sql.query('SET SESSION foreign_key_checks = 1');
    // a person created and deleted while capture is down (never in idmap, gone from the table)
    await sql.query('BEGIN');
    const p3 = await addPerson(uuid('30'));
    await sql.query("INSERT INTO person_name (person_id, given_name, creator, date_created, uuid) VALUES (?, 'Esi', 1, NOW(), ?)", [p3, uuid('31')]);
    await sql.query('COMMIT');
    await sql.query('DELETE FROM person_name WHERE uuid = ?', [uuid('31')]);
    await sql.query('DELETE FROM person WHERE person_id = ?', [p3]);
    await cap.start();
    const rows = await next();
    const ops = rows.flatMap((r) => r.cs.ops);
    t.same((ops[0] as InsertOp).row.person_id, { ref: 'person', id: uuid('20') }, 'resolved through the idmap row the delete wrote');
    t.same(ops.slice(1).map((o) => [o.kind, o.table, o.id]), [
      ['insert', 'person', uuid('30')], ['insert', 'person_name', uuid('31')], ['delete', 'person_name', uuid('31')], ['delete', 'person', uuid('30')],
    ]);
    t.same((ops[2] as InsertOp).row.person_id, { ref: 'person', id: uuid('30') });
    t.notOk(cap.status().error);
  });

  await t.test('a row older than capture, deleted after a change that refers to it: found by reading ahead in the binlog', async (t) => {
    const keep = await addPerson(uuid('72'));
    // a person neither the binlog nor the idmap saw (older than capture)
    await sql.query('SET SESSION sql_log_bin = 0');
    const old = await addPerson(uuid('70'));
    await sql.query('SET SESSION sql_log_bin = 1');
    await next();
    await cap.stop();
    const lines: string[] = [];
    cap = await makeCapture(s, db, 'openmrs', TABLES, { log: createLogger({ level: 'info', write: (l) => lines.push(l) }) });
    // while capture is down: a name refers to that person; a transaction larger than a
    // capture group goes by (the delete is not among the rows mapped with the name); both go
    await sql.query("INSERT INTO person_name (person_id, given_name, creator, date_created, uuid) VALUES (?, 'Ama', 1, NOW(), ?)", [old, uuid('71')]);
    await sql.query("INSERT INTO person_name (person_id, given_name, creator, date_created, uuid) SELECT ?, 'filler', 1, NOW(), CONCAT('filler-', seq) FROM seq_1_to_6000", [keep]);
    await sql.query('DELETE FROM person_name WHERE uuid = ?', [uuid('71')]);
    await sql.query('DELETE FROM person WHERE person_id = ?', [old]);
    await cap.start();
    const ops = (await next()).flatMap((r) => r.cs.ops);
    const name = ops.find((o): o is InsertOp => o.kind === 'insert' && o.id === uuid('71'));
    t.same(name?.row.person_id, { ref: 'person', id: uuid('70') }, 'the reference names the person, found ahead in the binlog');
    t.same(ops.filter((o) => o.kind === 'delete').map((o) => [o.table, o.id]), [['person_name', uuid('71')], ['person', uuid('70')]]);
    t.equal(ops.filter((o) => o.kind === 'insert' && o.table === 'person_name').length, 6001, 'every name, once');
    const ahead = lines.filter((l) => l.includes('read ahead in the binlog')).map((l) => JSON.parse(l) as { found: number });
    t.same(ahead.map((a) => a.found), [1], 'one read ahead found the row');
    t.notOk(cap.status().error);
  });

  await t.test('ledger-marked transaction: each applied change set keeps its id, origin, stamp and peer', async (t) => {
    const far = packHlc(Date.now() + 86_400_000, 7).toString();
    await sql.query('BEGIN');
    await addPerson(uuid('40')); // a local change before any ledger row
    await sql.query(
      `INSERT INTO ${STATE}.ledger (change_id, origin, from_peer, hlc, commit_time, applied_at) VALUES (?, 'rubavu', 'musanze', ?, '2026-01-01 10:00:00', NOW(6))`,
      [`rubavu:${far}`, far]);
    await addPerson(uuid('41'));
    await sql.query(
      `INSERT INTO ${STATE}.ledger (change_id, origin, from_peer, hlc, commit_time, applied_at) VALUES ('huye:5', 'huye', 'musanze', 5, '2025-12-31 23:59:59', NOW(6))`);
    await addPerson(uuid('42'));
    await addPerson(uuid('43'));
    await sql.query('COMMIT');
    await addPerson(uuid('44'));
    const rows = await next();
    t.same(rows.map((r) => [r.changeId, r.origin, r.fromPeer, r.cs.ops.map((o) => o.id)]), [
      [rows[0]!.changeId, 'kigali', null, [uuid('40')]],
      [`rubavu:${far}`, 'rubavu', 'musanze', [uuid('41')]],
      ['huye:5', 'huye', 'musanze', [uuid('42'), uuid('43')]],
      [rows[3]!.changeId, 'kigali', null, [uuid('44')]],
    ]);
    t.equal(rows[1]!.cs.time, '2026-01-01T10:00:00Z');
    t.equal(rows[1]!.hlc, far);
    t.ok(BigInt(rows[3]!.hlc) > BigInt(far), 'the clock observed the applied stamp: later local stamps exceed it');
    t.same(await insertVersions('person', uuid('41')), [{ hlc: far, node: 'rubavu' }], 'the insert version carries the origin of the applied change');
  });
});

const CONSTANT_CONCEPTS = [CONCEPT_1, '488b58ff-64f5-4f8a-8979-fa79940b1594'];
