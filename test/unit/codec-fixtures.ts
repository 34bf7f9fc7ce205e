// Change sets for the codec tests and benchmark: a realistic OpenMRS patient
// registration (six inserts, every column as capture sends it) and a
// deterministic pseudo-random generator, so figures are reproducible.

import type { ChangeSet, Row, Value } from '../../apply/core/model.js';

/** Small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function uuid(rnd: () => number): string {
  let h = '';
  for (let i = 0; i < 32; i++) h += Math.floor(rnd() * 16).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
}

const GIVEN = ['Jean', 'Marie', 'Claudine', 'Emmanuel', 'Aline', 'Eric', 'Grace', 'Patrick', 'Divine', 'Olivier'];
const FAMILY = ['Uwimana', 'Habimana', 'Mukamana', 'Niyonzima', 'Ndayisaba', 'Uwase', 'Nshimiyimana', 'Ingabire'];
const CITY = ['Rwinkwavu', 'Kirehe', 'Butaro', 'Kayonza', 'Rwamagana'];

const ADMIN = '1010d442-e134-11de-babe-001e378eb67e';

function nulls(...cols: string[]): Record<string, Value> {
  return Object.fromEntries(cols.map((c) => [c, null]));
}

/** The six inserts OpenMRS makes when a patient is registered, as capture would journal them. */
export function registration(n: number, rnd: () => number): ChangeSet {
  const person = uuid(rnd);
  const users: Value = { ref: 'users', id: ADMIN };
  const p: Value = { ref: 'person', id: person };
  const created = `2026-03-${String(1 + (n % 28)).padStart(2, '0')} ${String(8 + (n % 9)).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}:${String((n * 7) % 60).padStart(2, '0')}`;
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const audit = { creator: users, date_created: created, voided: '0', ...nulls('voided_by', 'date_voided', 'void_reason') };
  const changed = nulls('changed_by', 'date_changed');
  const hlc = String((1772000000000n + BigInt(n) * 7919n) << 16n);
  const ops: Array<{ table: string; id: string; row: Row }> = [
    {
      table: 'person', id: person,
      row: {
        gender: rnd() < 0.5 ? 'F' : 'M', birthdate: `19${50 + Math.floor(rnd() * 50)}-0${1 + Math.floor(rnd() * 9)}-1${Math.floor(rnd() * 9)}`,
        birthdate_estimated: '0', dead: '0', ...nulls('death_date', 'cause_of_death'), ...audit, ...changed,
        uuid: person, deathdate_estimated: '0', ...nulls('birthtime', 'cause_of_death_non_coded'),
      },
    },
    {
      table: 'person_name', id: uuid(rnd),
      row: {
        preferred: '1', person_id: p, prefix: null, given_name: pick(GIVEN), middle_name: null, family_name_prefix: null,
        family_name: pick(FAMILY), ...nulls('family_name2', 'family_name_suffix', 'degree'), ...audit, ...changed,
      },
    },
    {
      table: 'person_address', id: uuid(rnd),
      row: {
        person_id: p, preferred: '1', ...nulls('address1', 'address2'), city_village: pick(CITY), state_province: 'Eastern',
        postal_code: null, country: 'Rwanda', ...nulls('latitude', 'longitude', 'start_date', 'end_date'), ...audit,
        ...nulls('county_district', 'address3', 'address4', 'address5', 'address6'), ...changed,
        ...nulls('address7', 'address8', 'address9', 'address10', 'address11', 'address12', 'address13', 'address14', 'address15'),
      },
    },
    { table: 'patient', id: person, row: { ...audit, ...changed, allergy_status: 'Unknown' } },
    {
      table: 'patient_identifier', id: uuid(rnd),
      row: {
        patient_id: p, identifier: `${100000 + n}-${n % 10}`, identifier_type: { ref: 'patient_identifier_type', id: '05a29f94-c0ed-11e2-94be-8c13b969e334' },
        preferred: '1', location_id: { ref: 'location', id: '8d6c993e-c2cc-11de-8d13-0010c6dffd0f' }, ...audit, ...changed, patient_program_id: null,
      },
    },
    {
      table: 'person_attribute', id: uuid(rnd),
      row: {
        person_id: p, value: `07${Math.floor(rnd() * 1e8).toString().padStart(8, '0')}`,
        person_attribute_type_id: { ref: 'person_attribute_type', id: '14d4f066-15f5-102d-96e4-000c29c2a5d7' }, ...audit, ...changed,
      },
    },
  ];
  return {
    id: `rwinkwavu:${hlc}`, origin: 'rwinkwavu', hlc, time: `${created.replace(' ', 'T')}Z`,
    ops: ops.map((o) => ({ kind: 'insert', table: o.table, id: o.id, row: o.row })),
  };
}
