// Row filters in the config (children[].rows, rowsLeaving): one SQL boolean
// expression per table, refused when it could leave its parentheses.
import t from 'tap';
import { checkConfig, parseConfig } from '../../agent/config/loader.js';
import { configReference } from '../../agent/config/reference.js';
import { expressionProblem, probeSql } from '../../agent/rows/expr.js';

const BY_LOCATION = "EXISTS (SELECT 1 FROM patient_identifier i JOIN location l ON l.location_id = i.location_id WHERE i.patient_id = person.person_id AND l.name = 'Rwinkwavu')";

const withChild = (child: string): string => `
node: { id: kigali }
database: { host: db, user: spokesync, schema: openmrs, serverId: 7 }
tables: { include: ['*'] }
listen: { port: 8080 }
children:
${child}
`;

void t.test('expressions: one condition that stays inside its parentheses', async (t) => {
  for (const ok of [
    BY_LOCATION,
    'person.gender = \'F\'',
    "person.uuid IN ('a;b', 'c--d', 'e#f', 'g/*h*/')",
    'person.`from` = 1 AND person.`select` IS NULL',
    "(SELECT COUNT(*) FROM obs o WHERE o.person_id = person.person_id) > 2",
    "person.note = 'it''s \\' ; here'",
    'NOT person.voided',
    'person.order = 1',
  ]) t.equal(expressionProblem(ok), null, ok);
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['   ', /empty/],
    ['1; DROP TABLE person', /";"/],
    ['1 -- rest', /comment/],
    ['1 # rest', /comment/],
    ['1 /* x */', /comment/],
    ['1) OR (1', /closes a parenthesis/],
    ['(1', /1 parenthesis open/],
    ['((1', /2 parentheses open/],
    ["person.name = 'x", /unterminated string/],
    ['person.`name = 1', /unterminated quoted name/],
    ['1 UNION SELECT password FROM users', /UNION outside parentheses/],
    ['1 LIMIT 0', /LIMIT outside parentheses/],
    ['person.person_id = 1 INTO OUTFILE \'/tmp/x\'', /INTO outside/],
    ['x'.repeat(10_001), /longer than/],
  ];
  for (const [text, why] of bad) t.match(expressionProblem(text), why, text.slice(0, 40));
  t.equal(probeSql('openmrs', 'person', 'person.voided = 0'), 'SELECT 1 FROM `openmrs`.`person` AS `person` WHERE (person.voided = 0) LIMIT 0');
});

void t.test('config: children[].rows and rowsLeaving', async (t) => {
  const c = parseConfig(withChild(`  - id: rwinkwavu
    token: t1
    rows:
      person: "${BY_LOCATION.replace(/"/g, '\\"')}"
  - id: butaro
    token: t2
    rows: { person: "person.gender = 'M'", visit: 'TRUE' }
    rowsLeaving: delete
  - { id: plain, token: t3 }`), 'k.yaml', {});
  t.same(c.children[0]!.rows, { person: BY_LOCATION });
  t.equal(c.children[0]!.rowsLeaving, 'keep', 'keep by default');
  t.same(c.children[1]!.rows, { person: "person.gender = 'M'", visit: 'TRUE' });
  t.equal(c.children[1]!.rowsLeaving, 'delete');
  t.equal(c.children[2]!.rows, undefined, 'no filter: every row');
  t.equal(c.children[2]!.rowsLeaving, undefined);

  const problems = (child: string): string[] => checkConfig(withChild(child), 'k.yaml', {}).problems.map((p) => `${p.path}: ${p.message}`);
  t.match(problems('  - { id: a, token: t, rows: { person: "1; DELETE FROM person" } }'), [/children\[0\]\.rows\.person: the expression holds ";"/]);
  t.match(problems('  - { id: a, token: t, rows: { person: 1 } }'), [/children\[0\]\.rows\.person: expected a SQL boolean expression in quotes, got 1/]);
  t.match(problems('  - { id: a, token: t, rows: {} }'), [/children\[0\]\.rows: expected at least one table/]);
  t.match(problems('  - { id: a, token: t, rows: [person] }'), [/children\[0\]\.rows: expected a mapping/]);
  t.match(problems('  - { id: a, token: t, rows: { "per son": "TRUE" } }'), [/expected a table name/]);
  t.match(problems('  - { id: a, token: t, rowsLeaving: delete }'), [/children\[0\]\.rowsLeaving: has no effect without children\[0\]\.rows/]);
  t.match(problems('  - { id: a, token: t, rows: { person: "TRUE" }, rowsLeaving: drop }'), [/rowsLeaving: expected one of keep, delete/]);
  t.match(problems('  - { id: a, token: t, row: { person: "TRUE" } }'), [/unknown key \(did you mean rows\?\)/]);

  const help = configReference();
  t.match(help, /children\[\]\.rows +row filters: table → SQL boolean expression/);
  t.match(help, /children\[\]\.rowsLeaving +a row that stops matching.*default keep/);
});
