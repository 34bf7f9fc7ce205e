// The application schema of the fault test: registrations (person, patient),
// visits, encounters and obs-like rows, plus settings with a natural key. Every
// node starts from the same tables and the same seed rows (as a clone would),
// and the seed rows are the ones every site edits at once.
export const SCHEMA = 'app';
export const TABLES = ['person', 'patient', 'visit', 'encounter', 'obs', 'setting'] as const;
export type Table = (typeof TABLES)[number];

/** Tables whose rows are their uuid (patient is its person's uuid, setting its property). */
export const UUID_TABLES = ['person', 'visit', 'encounter', 'obs'] as const;

export const SCHEMA_SQL = `
CREATE TABLE person (
  person_id INT AUTO_INCREMENT PRIMARY KEY,
  uuid CHAR(36) NOT NULL UNIQUE,
  name VARCHAR(100) NOT NULL,
  gender CHAR(1) NULL,
  birthdate DATE NULL
) ENGINE=InnoDB;
CREATE TABLE patient (
  patient_id INT NOT NULL PRIMARY KEY,
  identifier VARCHAR(60) NOT NULL,
  allergy VARCHAR(100) NULL,
  FOREIGN KEY (patient_id) REFERENCES person (person_id)
) ENGINE=InnoDB;
CREATE TABLE visit (
  visit_id INT AUTO_INCREMENT PRIMARY KEY,
  uuid CHAR(36) NOT NULL UNIQUE,
  patient_id INT NOT NULL,
  started DATETIME(6) NOT NULL,
  note VARCHAR(200) NULL,
  FOREIGN KEY (patient_id) REFERENCES patient (patient_id)
) ENGINE=InnoDB;
CREATE TABLE encounter (
  encounter_id INT AUTO_INCREMENT PRIMARY KEY,
  uuid CHAR(36) NOT NULL UNIQUE,
  visit_id INT NOT NULL,
  patient_id INT NOT NULL,
  kind VARCHAR(20) NOT NULL,
  at DATETIME(6) NOT NULL,
  FOREIGN KEY (visit_id) REFERENCES visit (visit_id),
  FOREIGN KEY (patient_id) REFERENCES patient (patient_id)
) ENGINE=InnoDB;
-- uuid deliberately without a unique index: a change set applied twice shows as two rows
CREATE TABLE obs (
  obs_id INT AUTO_INCREMENT PRIMARY KEY,
  uuid CHAR(36) NOT NULL,
  encounter_id INT NOT NULL,
  person_id INT NOT NULL,
  concept VARCHAR(20) NOT NULL,
  value_numeric DECIMAL(10,2) NULL,
  value_text VARCHAR(200) NULL,
  KEY obs_uuid (uuid),
  FOREIGN KEY (encounter_id) REFERENCES encounter (encounter_id),
  FOREIGN KEY (person_id) REFERENCES person (person_id)
) ENGINE=InnoDB;
CREATE TABLE setting (
  property VARCHAR(100) NOT NULL PRIMARY KEY,
  value VARCHAR(200) NULL
) ENGINE=InnoDB;`;

/** The columns whose last value is checked: every write to them is tracked. */
export const EDITED: Readonly<Record<string, string>> = {
  person: 'name',
  visit: 'note',
  obs: 'value_numeric',
  setting: 'value',
};

export const HOT = 12;
const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');
export const seedUuid = (kind: string, i: number): string => `5eed${kind.charCodeAt(0).toString(16)}00-0000-4000-8000-${hex(i, 12)}`;
export const seedSetting = (i: number): string => `chaos.setting.${i}`;

/** Seed values: what every edited column holds before anyone writes. */
export function seedValue(table: string, i: number): string {
  if (table === 'person') return `seed-${i}`;
  if (table === 'visit') return `seed-note-${i}`;
  if (table === 'obs') return `${i}.00`;
  return `seed-${i}`;
}

/** The rows every node starts with (ids included, as a clone has them). */
export function seedSql(): string {
  const out: string[] = [];
  for (let i = 1; i <= HOT; i++) {
    out.push(
      `INSERT INTO person (person_id, uuid, name, gender, birthdate) VALUES (${i}, '${seedUuid('person', i)}', '${seedValue('person', i)}', 'F', '1990-01-01');`,
      `INSERT INTO patient (patient_id, identifier) VALUES (${i}, 'SEED-${i}');`,
      `INSERT INTO visit (visit_id, uuid, patient_id, started, note) VALUES (${i}, '${seedUuid('visit', i)}', ${i}, '2024-01-01 08:00:00', '${seedValue('visit', i)}');`,
      `INSERT INTO encounter (encounter_id, uuid, visit_id, patient_id, kind, at) VALUES (${i}, '${seedUuid('encounter', i)}', ${i}, ${i}, 'seed', '2024-01-01 08:00:00');`,
      `INSERT INTO obs (obs_id, uuid, encounter_id, person_id, concept, value_numeric) VALUES (${i}, '${seedUuid('obs', i)}', ${i}, ${i}, 'weight', ${seedValue('obs', i)});`,
      `INSERT INTO setting (property, value) VALUES ('${seedSetting(i)}', '${seedValue('setting', i)}');`,
    );
  }
  return out.join('\n');
}
