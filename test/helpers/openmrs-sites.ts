// OpenMRS data for row filter tests: two clinics (locations), patients
// registered at one or the other, and staff (a user's and a provider's
// persons, who are nobody's patients). Rows are named by uuid.
import type { TestServer } from '../../deploy/sandbox/mariadb.js';
import type { Queryable } from '../../apply/core/db.js';
import { METADATA_SQL, patient, registrationSql } from '../../deploy/demo-support.js';

export const RWINKWAVU = '11111111-0000-4000-8000-0000000000aa';
export const BUTARO = '22222222-0000-4000-8000-0000000000bb';
export const STAFF = '33333333-0000-4000-8000-0000000000cc';
export const STAFF_USER = '44444444-0000-4000-8000-0000000000dd';
export const PROVIDER = '55555555-0000-4000-8000-0000000000ee';

/** The filter of a clinic's child: patients with an identifier at that location. */
export const atLocation = (name: string): string =>
  `EXISTS (SELECT 1 FROM patient_identifier i JOIN location l ON l.location_id = i.location_id WHERE i.patient_id = person.person_id AND l.name = '${name}')`;

/** The tables the tests sync: a patient's whole record, the metadata it names, and staff. */
export const SITE_TABLES = [
  'person', 'person_name', 'person_address', 'patient', 'patient_identifier', 'visit', 'encounter', 'obs',
  'location', 'users', 'provider', 'encounter_provider', 'visit_type', 'encounter_type', 'encounter_role',
];

/** Metadata every node starts with (before any daemon runs): the two clinics and the staff. */
export async function setupSites(s: TestServer): Promise<void> {
  await s.query(`USE openmrs; ${METADATA_SQL}
    INSERT INTO location (name, creator, date_created, uuid) VALUES ('Rwinkwavu', 1, '2024-01-01', '${RWINKWAVU}'), ('Butaro', 1, '2024-01-01', '${BUTARO}');`);
}

/** A staff member: a person (no patient) who is a user and a provider. */
export async function addStaff(s: TestServer): Promise<void> {
  await s.query(`USE openmrs; START TRANSACTION;
    INSERT INTO person (gender, creator, date_created, uuid) VALUES ('M', 1, NOW(), '${STAFF}');
    SET @s = LAST_INSERT_ID();
    INSERT INTO users (system_id, username, creator, date_created, person_id, uuid) VALUES ('nurse-1', 'nurse', 1, NOW(), @s, '${STAFF_USER}');
    INSERT INTO provider (person_id, identifier, creator, date_created, uuid) VALUES (@s, 'NURSE-1', 1, NOW(), '${PROVIDER}');
    COMMIT;`);
}

/** Registers `n` patients at the location (one transaction each); returns their person uuids. */
export async function registerAt(s: TestServer, location: string, tag: string, n: number): Promise<string[]> {
  const people: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = patient(`${tag}-${i}`, 'Mukamana', i % 2 ? 'M' : 'F', `1990-05-0${1 + (i % 9)}`, `${tag.toUpperCase()}-${i}`, 50 + i);
    const r = registrationSql(p, tag, location);
    await s.query(`USE openmrs; ${r.sql}`, r.params);
    people.push(p.person);
  }
  return people;
}

/** Every uuid of a patient's record: the person and each row that follows it. */
export async function recordUuids(db: Queryable, person: string): Promise<string[]> {
  const rows = await db.query<{ u: string }>(
    `SELECT p.uuid AS u FROM openmrs.person p WHERE p.uuid = ?
     UNION ALL SELECT x.uuid FROM openmrs.person_name x JOIN openmrs.person p USING (person_id) WHERE p.uuid = ?
     UNION ALL SELECT x.uuid FROM openmrs.person_address x JOIN openmrs.person p USING (person_id) WHERE p.uuid = ?
     UNION ALL SELECT x.uuid FROM openmrs.patient_identifier x JOIN openmrs.person p ON p.person_id = x.patient_id WHERE p.uuid = ?
     UNION ALL SELECT x.uuid FROM openmrs.visit x JOIN openmrs.person p ON p.person_id = x.patient_id WHERE p.uuid = ?
     UNION ALL SELECT x.uuid FROM openmrs.encounter x JOIN openmrs.person p ON p.person_id = x.patient_id WHERE p.uuid = ?
     UNION ALL SELECT x.uuid FROM openmrs.obs x JOIN openmrs.person p USING (person_id) WHERE p.uuid = ?`,
    Array<string>(7).fill(person),
  );
  return rows.map((r) => r.u);
}
