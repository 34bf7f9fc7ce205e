// Rows for the verify and repair tests: people registered at a node, and ten
// rows made to differ at a node behind spokesync's back (sql_log_bin=0: changed
// values in a uuid, a shared-key and a natural-key table, rows missing and
// extra, a foreign key pointing at another row).
import { uuid, type NetNode } from './sync-net.js';

export async function register(n: NetNode, tag: string, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) {
    await n.sql(
      `START TRANSACTION;
       INSERT INTO person (uuid, name, gender) VALUES (?, ?, 'F');
       INSERT INTO patient (patient_id, allergy) VALUES (LAST_INSERT_ID(), ?);
       INSERT INTO visit (uuid, person_id, note, weight) VALUES (?, LAST_INSERT_ID(), 'first visit', 61.5);
       COMMIT;`,
      [uuid(tag, i), `${tag}-${i}`, i % 3 ? null : 'penicillin', uuid(`v${tag}`, i)],
    );
  }
  await n.sql(`INSERT INTO setting (property, value) VALUES (?, 'on')`, [`${tag}.flag`]);
}

/** Writes at the child that capture never sees: the sites now differ in exactly these ten rows. */
export async function diverge(child: NetNode): Promise<{ table: string; identity: string; difference: string }[]> {
  await child.sql(`SET sql_log_bin = 0;
    UPDATE person SET name = 'changed 1' WHERE uuid = ?;
    UPDATE person SET gender = NULL WHERE uuid = ?;
    UPDATE person SET born = '2001-02-03 04:05:06.789' WHERE uuid = ?;
    UPDATE patient SET allergy = 'latex' WHERE patient_id = (SELECT person_id FROM person WHERE uuid = ?);
    UPDATE setting SET value = 'off' WHERE property = 'h.flag';
    DELETE FROM visit WHERE uuid = ?;
    DELETE FROM visit WHERE uuid = ?;
    INSERT INTO person (uuid, name) VALUES (?, 'extra 1'), (?, 'extra 2');
    UPDATE visit SET person_id = (SELECT person_id FROM person WHERE uuid = ?) WHERE uuid = ?;
    SET sql_log_bin = 1;`,
  [uuid('h', 1), uuid('c', 2), uuid('h', 3), uuid('h', 6), uuid('vh', 4), uuid('vc', 5), uuid('x', 1), uuid('x', 2), uuid('h', 2), uuid('vh', 7)]);
  return [
    { table: 'patient', identity: uuid('h', 6), difference: 'changed' },
    { table: 'person', identity: uuid('c', 2), difference: 'changed' },
    { table: 'person', identity: uuid('h', 1), difference: 'changed' },
    { table: 'person', identity: uuid('h', 3), difference: 'changed' },
    { table: 'person', identity: uuid('x', 1), difference: 'only here' },
    { table: 'person', identity: uuid('x', 2), difference: 'only here' },
    { table: 'setting', identity: 'h.flag', difference: 'changed' },
    { table: 'visit', identity: uuid('vc', 5), difference: 'missing here' },
    { table: 'visit', identity: uuid('vh', 4), difference: 'missing here' },
    { table: 'visit', identity: uuid('vh', 7), difference: 'changed' },
  ];
}
