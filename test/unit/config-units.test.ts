import t from 'tap';
import fc from 'fast-check';
import { formatBytes, formatDuration, parseBytes, parseDuration } from '../../apply/core/units.js';
import { expandString, protectRefs } from '../../agent/config/env.js';
import { childTables, filterTables, matchGlob, syncedTables, tableDirection, unmatchedPatterns } from '../../agent/config/tables.js';
import { parseConfig } from '../../agent/config/loader.js';
import type { Catalog, TableInfo } from '../../apply/core/catalog.js';

void t.test('durations need a unit', async (t) => {
  const cases: Array<[string, number | undefined]> = [
    ['500ms', 500], ['60s', 60_000], ['5m', 300_000], ['1h', 3_600_000], ['2d', 172_800_000], ['1.5h', 5_400_000],
    [' 30s ', 30_000], ['0s', 0], ['300', undefined], ['5 minutes', undefined], ['5M', undefined], ['-1s', undefined], ['', undefined], ['1h30m', undefined],
  ];
  for (const [text, ms] of cases) t.equal(parseDuration(text), ms, text);
});

void t.test('sizes: bytes or a unit', async (t) => {
  const cases: Array<[string | number, number | undefined]> = [
    [65536, 65536], ['65536', 65536], ['64KiB', 65536], ['64kib', 65536], ['8MiB', 8 * 1024 ** 2], ['16M', 16 * 1024 ** 2],
    ['1GiB', 1024 ** 3], ['1KB', 1000], ['2MB', 2_000_000], ['10B', 10], ['1.5KiB', 1536],
    ['0.3B', undefined], [-1, undefined], [1.5, undefined], ['64 parsecs', undefined], ['KiB', undefined], ['', undefined],
  ];
  for (const [v, n] of cases) t.equal(parseBytes(v), n, String(v));
});

void t.test('formatted durations and sizes parse back to the same value', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 10 * 86_400_000 }), (ms) => parseDuration(formatDuration(ms)) === ms));
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (n) => parseBytes(formatBytes(n)) === n));
  t.equal(formatDuration(300_000), '5m');
  t.equal(formatBytes(65536), '64KiB');
});

void t.test('expandString', async (t) => {
  const problems: string[] = [];
  const env = { A: 'x', E: '' };
  const ex = (s: string): string => expandString(s, env, (p) => problems.push(p.message));
  t.equal(ex('${A}'), 'x');
  t.equal(ex('a${A}b${A}'), 'axbx');
  t.equal(ex('${E:-d}'), 'd');
  t.equal(ex('${E}'), '', 'set but empty is kept');
  t.equal(ex('${U:-a:-b}'), 'a:-b');
  t.equal(ex('$${A}'), '${A}');
  t.equal(ex('$A'), '$A', 'only the braced form expands');
  t.same(problems, []);
  ex('${MISSING}');
  ex('${1X}');
  ex('${A');
  t.equal(problems.length, 3);
  t.match(problems[0], 'environment variable MISSING is not set');
});

void t.test('protectRefs hides references from YAML and restores them', async (t) => {
  const text = 'a: { t: ${TOKEN}, u: $${x} }\nspokesyncref0x0x: 1';
  const p = protectRefs(text);
  t.notMatch(p.text, '${');
  t.equal(p.restore(p.text), text);
});

const catalogOf = (schema: string, names: string[]): Catalog => {
  const tables = new Map(names.map((n) => [n, { name: n } as TableInfo]));
  return { schema, tables, table: (n) => tables.get(n)! };
};

void t.test('globs and table filters', async (t) => {
  t.ok(matchGlob('person*', 'person_name'));
  t.ok(matchGlob('person*', 'person'));
  t.notOk(matchGlob('person', 'person_name'));
  t.ok(matchGlob('p?tient', 'patient'));
  t.notOk(matchGlob('Person', 'person'), 'case-sensitive');
  t.ok(matchGlob('a$b', 'a$b'), 'regex characters are literal');
  t.notOk(matchGlob('a.b', 'axb'));
  t.same(filterTables(['obs', 'person', 'person_name', 'users'], { include: ['person*', 'obs'], exclude: ['*_name'] }), ['obs', 'person']);
  t.same(unmatchedPatterns(['person', 'persn', 'x*', 'obs*'], ['person', 'obs']), ['persn', 'x*']);
});

void t.test('syncedTables applies include/exclude to the catalogue', async (t) => {
  const config = parseConfig(`
node: { id: n }
database: { host: h, user: u, schema: openmrs, serverId: 5 }
tables: { include: ['*'], exclude: [liquibase*], direction: { location: down } }
children: [{ id: c, token: t, tables: { include: [p*] } }, { id: d, token: u }]
`, 'n.yaml', {});
  const cat = catalogOf('openmrs', ['users', 'patient', 'person', 'liquibasechangelog', 'location']);
  t.same(syncedTables(config, cat), ['location', 'patient', 'person', 'users']);
  t.same(childTables(config, 'c', cat), ['patient', 'person']);
  t.same(childTables(config, 'd', cat), ['location', 'patient', 'person', 'users']);
  t.same(syncedTables(config, catalogOf('spokesync', ['journal', 'ledger'])), [], 'the state schema never syncs');
  t.equal(tableDirection(config, 'location'), 'down');
  t.equal(tableDirection(config, 'person'), 'both');
});
