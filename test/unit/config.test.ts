import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkConfig, loadConfig, parseConfig } from '../../agent/config/loader.js';
import { CONFIG_KEYS, configReference } from '../../agent/config/reference.js';
import { isSpokesyncError } from '../../apply/core/errors.js';

// The example of DESIGN.md, verbatim (flow mappings with ${VAR} included).
const DESIGN_EXAMPLE = `
node: { id: kigali }                 # [a-z0-9-]+, unique in the network
database:
  host: 127.0.0.1
  port: 3306
  user: spokesync
  password: \${SPOKESYNC_DB_PASSWORD}
  schema: openmrs                    # the application schema
  stateSchema: spokesync             # optional
  serverId: 4101                     # binlog client id, unique per server
tables:
  include: [person, person_name, patient, encounter, obs]   # names or globs
  exclude: []
listen: { host: 0.0.0.0, port: 8080 }        # parent role (tls: {cert, key})
children:
  - { id: rwinkwavu, token: \${RWINKWAVU_TOKEN} }
parent:                                       # child role
  url: http://kigali.example.org:8080
  token: \${SPOKESYNC_PARENT_TOKEN}
  interval: 5m
  timeout: 60s
  maxTries: 5
  compression: gzip                           # gzip | br | none
  batch: { records: 200, bytes: 64KiB }
`;
const ENV = { SPOKESYNC_DB_PASSWORD: 'db-secret-1', RWINKWAVU_TOKEN: 'child-secret-2', SPOKESYNC_PARENT_TOKEN: 'parent-secret-3' };

const MINIMAL = `
node: { id: rwinkwavu }
database: { host: db, user: spokesync, schema: openmrs, serverId: 7 }
tables: { include: ['*'] }
`;

void t.test('the DESIGN.md example loads into the typed config with defaults', async (t) => {
  const c = parseConfig(DESIGN_EXAMPLE, 'kigali.yaml', ENV);
  t.equal(c.file, resolve('kigali.yaml'));
  t.same(c.node, { id: 'kigali' });
  t.same(c.database, { host: '127.0.0.1', port: 3306, user: 'spokesync', password: 'db-secret-1', schema: 'openmrs', stateSchema: 'spokesync', serverId: 4101 });
  t.same(c.tables, { include: ['person', 'person_name', 'patient', 'encounter', 'obs'], exclude: [], keys: {}, direction: {} });
  t.same(c.listen, {
    host: '0.0.0.0', port: 8080, maxBodyBytes: 8 * 1024 * 1024, maxInflatedBytes: 8 * 1024 * 1024, maxElements: 100_000,
    maxConnections: 256, maxConnectionsPerAddress: 8, headersTimeout: 10_000, bodyTimeout: 60_000, requestTimeout: 900_000,
    authFailures: { max: 10, window: 60_000, block: 300_000 },
  });
  t.same(c.children, [{ id: 'rwinkwavu', token: 'child-secret-2' }]);
  t.same(c.parent, {
    url: 'http://kigali.example.org:8080', token: 'parent-secret-3', interval: 300_000, timeout: 60_000, maxTries: 5,
    compression: 'gzip', batch: { records: 200, bytes: 65536 },
  });
  t.same(c.capture, { memoryBytes: 32 * 1024 * 1024 });
  t.same(c.clock, { maxDrift: 86_400_000 }, 'clock.maxDrift: 1 day by default');
  t.same(c.log, { level: 'info', format: 'auto' });
});

void t.test('parent defaults suit the worst link: brotli (spokesync-vbr), 200 records in one request, a timeout that fits it at 1 kbps', async (t) => {
  const c = parseConfig(`${MINIMAL}parent: { url: "http://kigali.example.org:8080", token: t0k3n }\n`, 'r.yaml', {});
  t.same(c.parent, {
    url: 'http://kigali.example.org:8080', token: 't0k3n', interval: 300_000, timeout: 600_000, maxTries: 5,
    compression: 'br', batch: { records: 200, bytes: 1024 * 1024 },
  });
  // 200 OpenMRS registrations: about 3 KB of XML each (within bytes), about 110 B each on the wire with spokesync-vbr
  // (npm run bench -- exchange); a full batch up and a full answer down at 1 kbps (125 B/s) take well within the timeout
  t.ok(200 * 3100 <= c.parent!.batch.bytes, 'a batch of 200 registrations is not cut by bytes');
  const bothWaysMs = ((2 * 200 * 110) / 125) * 1000;
  t.ok(bothWaysMs * 1.5 < c.parent!.timeout, `a full batch each way: ${(bothWaysMs / 1000).toFixed(0)} s of ${c.parent!.timeout / 1000} s`);
});

void t.test('defaults of a minimal config', async (t) => {
  const c = parseConfig(MINIMAL, 'r.yaml', {});
  t.same(c.database, { host: 'db', port: 3306, user: 'spokesync', schema: 'openmrs', stateSchema: 'spokesync', serverId: 7 });
  t.notOk('password' in c.database, 'no password key when none is given');
  t.same(c.tables, { include: ['*'], exclude: [], keys: {}, direction: {} });
  t.equal(c.listen, undefined);
  t.equal(c.parent, undefined);
  t.same(c.children, []);
  t.same(c.capture, { memoryBytes: 32 * 1024 * 1024 });
  t.same(c.log, { level: 'info', format: 'auto' });
});

void t.test('the config is deeply frozen', async (t) => {
  const c = parseConfig(DESIGN_EXAMPLE, 'k.yaml', ENV);
  t.ok(Object.isFrozen(c));
  t.ok(Object.isFrozen(c.database));
  t.ok(Object.isFrozen(c.tables.include));
  t.ok(Object.isFrozen(c.children[0]));
  t.ok(Object.isFrozen(c.parent?.batch));
  t.throws(() => {
    (c.tables.include as string[]).push('x');
  });
});

void t.test('optional keys beyond DESIGN.md', async (t) => {
  const c = parseConfig(`${MINIMAL.replace("tables: { include: ['*'] }", '')}
tables:
  include: ['*']
  exclude: [liquibase*]
  keys: { concept_name_tag_map: [concept_name_id, concept_name_tag_id] }
  direction: { location: down, obs: up }
listen:
  port: 8443
  tls: { cert: /c.pem, key: /k.pem }
  maxBodyBytes: 1MiB
  maxInflatedBytes: 16M
  maxConnections: 100
  maxConnectionsPerAddress: 4
  headersTimeout: 5s
  bodyTimeout: 30s
  requestTimeout: 1h
  authFailures: { max: 3, block: 10m }
  maxElements: 1000000
children:
  - id: a
    token: tok-a
    tables: { exclude: [obs] }
parent: { url: 'https://p.example.org/base', token: t, ca: /ca.pem, compression: br, interval: 90s, timeout: 1.5m }
capture: { memoryBytes: 4MiB }
log: { level: debug }
`, 'x.yaml', {});
  t.same(c.tables.keys, { concept_name_tag_map: ['concept_name_id', 'concept_name_tag_id'] });
  t.same(c.tables.direction, { location: 'down', obs: 'up' });
  t.same(c.listen, {
    host: '0.0.0.0', port: 8443, tls: { cert: '/c.pem', key: '/k.pem', handshakeTimeout: 60_000 }, maxBodyBytes: 1048576, maxInflatedBytes: 16777216, maxElements: 1_000_000,
    maxConnections: 100, maxConnectionsPerAddress: 4, headersTimeout: 5000, bodyTimeout: 30_000, requestTimeout: 3_600_000,
    authFailures: { max: 3, window: 60_000, block: 600_000 },
  });
  t.same(c.children[0]?.tables, { include: ['*'], exclude: ['obs'] });
  t.equal(c.parent?.ca, '/ca.pem');
  t.equal(c.parent?.compression, 'br');
  t.equal(c.parent?.interval, 90_000);
  t.equal(c.parent?.timeout, 90_000);
  t.equal(c.capture.memoryBytes, 4 * 1024 * 1024);
  t.equal(c.log.level, 'debug');
});

/** A base with every section present, so one line can be replaced per case. */
const BASE = {
  node: 'node: { id: kigali }',
  database: 'database: { host: h, port: 3306, user: u, password: pw, schema: app, serverId: 10 }',
  tables: 'tables: { include: [person] }',
  listen: 'listen: { port: 8080 }',
  children: 'children: [{ id: child-a, token: ta }]',
  parent: "parent: { url: 'http://p:8080', token: tp }",
};
const yamlWith = (over: Partial<Record<keyof typeof BASE, string>>): string =>
  Object.entries({ ...BASE, ...over }).map(([, v]) => v).join('\n');

// [what, replaced section, expected key path, message pattern]
const bad: Array<[string, Partial<Record<keyof typeof BASE, string>>, string, RegExp]> = [
  ['unknown top-level key', { node: 'node: { id: kigali }\nnodes: 1' }, 'nodes', /unknown key \(did you mean node\?\)/],
  ['misspelt key', { database: 'database: { host: h, user: u, schema: app, serverid: 10 }' }, 'database.serverid', /did you mean serverId/],
  ['node id with capitals', { node: 'node: { id: Kigali }' }, 'node.id', /lower-case.*got 'Kigali'/],
  ['node id with underscore', { node: 'node: { id: a_b }' }, 'node.id', /node id/],
  ['missing node', { node: '' }, 'node', /missing/],
  ['port zero', { database: 'database: { host: h, port: 0, user: u, schema: app, serverId: 10 }' }, 'database.port', /1 to 65535, got 0/],
  ['port too big', { listen: 'listen: { port: 70000 }' }, 'listen.port', /1 to 65535, got 70000/],
  ['port as text', { listen: "listen: { port: '8080' }" }, 'listen.port', /whole number.*got '8080'/],
  ['serverId zero', { database: 'database: { host: h, user: u, schema: app, serverId: 0 }' }, 'database.serverId', /1 to 4294967295/],
  ['serverId too big', { database: 'database: { host: h, user: u, schema: app, serverId: 4294967296 }' }, 'database.serverId', /4294967295/],
  ['missing serverId', { database: 'database: { host: h, user: u, schema: app }' }, 'database.serverId', /missing: binlog client id/],
  ['state schema equal to schema', { database: 'database: { host: h, user: u, schema: app, stateSchema: app, serverId: 1 }' }, 'database.stateSchema', /must differ/],
  ['schema name with a backtick', { database: 'database: { host: h, user: u, schema: "a`b", serverId: 1 }' }, 'database.schema', /schema name/],
  ['empty include', { tables: 'tables: { include: [] }' }, 'tables.include', /at least one/],
  ['include not a list', { tables: 'tables: { include: person }' }, 'tables.include', /list of table names/],
  ['bad glob', { tables: "tables: { include: ['per son'] }" }, 'tables.include[0]', /table name or glob/],
  ['keys not a list', { tables: 'tables: { include: [a], keys: { t: c } }' }, 'tables.keys.t', /list of key column names/],
  ['bad direction', { tables: 'tables: { include: [a], direction: { t: sideways } }' }, 'tables.direction.t', /both, up or down, got 'sideways'/],
  ['duplicate child ids', { children: 'children: [{ id: a, token: t1 }, { id: a, token: t2 }]' }, 'children[1].id', /already children\[0\]\.id/],
  ['child id is the node id', { children: 'children: [{ id: kigali, token: t1 }]' }, 'children[0].id', /own id/],
  ['duplicate child tokens', { children: 'children: [{ id: a, token: same }, { id: b, token: same }]' }, 'children[1].token', /same token as children\[0\]/],
  ['child without token', { children: 'children: [{ id: a }]' }, 'children[0].token', /missing/],
  ['unknown child key', { children: 'children: [{ id: a, token: t, tabels: {} }]' }, 'children[0].tabels', /did you mean tables/],
  ['bad compression', { parent: "parent: { url: 'http://p', token: t, compression: zip }" }, 'parent.compression', /one of gzip, br, none, got 'zip'/],
  ['interval as a word', { parent: "parent: { url: 'http://p', token: t, interval: five }" }, 'parent.interval', /expected a duration like 30s, 5m or 1h, got 'five'/],
  ['interval without a unit', { parent: "parent: { url: 'http://p', token: t, interval: 300 }" }, 'parent.interval', /bare number has no unit/],
  ['timeout below a second', { parent: "parent: { url: 'http://p', token: t, timeout: 10ms }" }, 'parent.timeout', /at least 1s/],
  ['batch bytes unit', { parent: "parent: { url: 'http://p', token: t, batch: { bytes: 64 parsecs } }" }, 'parent.batch.bytes', /size like 65536, 64KiB or 8MiB/],
  ['batch records zero', { parent: "parent: { url: 'http://p', token: t, batch: { records: 0 } }" }, 'parent.batch.records', /1 to/],
  ['ftp url', { parent: "parent: { url: 'ftp://p', token: t }" }, 'parent.url', /http:\/\/ or https:\/\//],
  ['maxTries zero', { parent: "parent: { url: 'http://p', token: t, maxTries: 0 }" }, 'parent.maxTries', /1 to 100/],
  ['tls without key', { listen: 'listen: { port: 1, tls: { cert: /c } }' }, 'listen.tls.key', /missing/],
  ['inflated below body', { listen: 'listen: { port: 1, maxBodyBytes: 2MiB, maxInflatedBytes: 1MiB }' }, 'listen.maxInflatedBytes', /at least listen.maxBodyBytes/],
  ['too few elements', { listen: 'listen: { port: 1, maxElements: 10 }' }, 'listen.maxElements', /from 100 to/],
  ['section as a scalar', { listen: 'listen: 8080' }, 'listen', /expected a mapping.*got 8080/],
  ['per-address above the total', { listen: 'listen: { port: 1, maxConnections: 10, maxConnectionsPerAddress: 20 }' }, 'listen.maxConnectionsPerAddress', /at most listen.maxConnections \(10\)/],
  ['headers timeout without a unit', { listen: 'listen: { port: 1, headersTimeout: 10 }' }, 'listen.headersTimeout', /bare number has no unit/],
  ['body timeout beyond the request timeout', { listen: 'listen: { port: 1, bodyTimeout: 20m }' }, 'listen.bodyTimeout', /at most listen.requestTimeout/],
  ['unknown auth failure key', { listen: 'listen: { port: 1, authFailures: { max: 5, windows: 1m } }' }, 'listen.authFailures.windows', /did you mean window/],
  ['auth failures zero', { listen: 'listen: { port: 1, authFailures: { max: 0 } }' }, 'listen.authFailures.max', /1 to/],
  ['log level', { node: 'node: { id: n }\nlog: { level: verbose }' }, 'log.level', /debug, info, warn, error/],
  ['log format', { node: 'node: { id: n }\nlog: { format: pretty }' }, 'log.format', /auto, text, json/],
  ['capture too small', { node: 'node: { id: n }\ncapture: { memoryBytes: 1KiB }' }, 'capture.memoryBytes', /at least 1MiB/],
  ['clock drift too small', { node: 'node: { id: n }\nclock: { maxDrift: 5s }' }, 'clock.maxDrift', /at least 1m/],
  ['clock drift too large', { node: 'node: { id: n }\nclock: { maxDrift: 400d }' }, 'clock.maxDrift', /at most 366d/],
  ['clock drift without unit', { node: 'node: { id: n }\nclock: { maxDrift: 3600 }' }, 'clock.maxDrift', /bare number has no unit/],
];

for (const [what, over, path, pattern] of bad) {
  void t.test(`refused: ${what}`, async (t) => {
    const { config, problems } = checkConfig(yamlWith(over), 'rwinkwavu.yaml', {});
    t.equal(config, undefined);
    const p = problems.find((x) => x.path === path);
    t.ok(p, `a problem at ${path}; got ${JSON.stringify(problems)}`);
    t.match(p?.message, pattern);
    const e = t.throws(() => parseConfig(yamlWith(over), 'rwinkwavu.yaml', {})) as Error;
    t.ok(isSpokesyncError(e, 'SPOKESYNC_E_CONFIG'), 'SPOKESYNC_E_CONFIG');
    t.match(e.message, `rwinkwavu.yaml: ${path}: `, 'message names the file and the key');
  });
}

void t.test('every problem is reported at once, each on its own line', async (t) => {
  const text = yamlWith({
    node: 'node: { id: Bad }',
    parent: "parent: { url: 'http://p', token: t, interval: five, batch: { bytes: lots } }",
    listen: 'listen: { port: 0, extra: 1 }',
  });
  const e = t.throws(() => parseConfig(text, 'n.yaml', {})) as Error;
  const lines = e.message.split('\n');
  t.equal(lines.length, 5, e.message);
  for (const key of ['node.id', 'parent.interval', 'parent.batch.bytes', 'listen.port', 'listen.extra']) {
    t.ok(lines.some((l) => l.startsWith(`n.yaml: ${key}: `)), key);
  }
});

void t.test('secrets never appear in messages', async (t) => {
  const secret = 'hunter2-very-secret';
  const cases = [
    yamlWith({ database: `database: { host: h, user: u, password: [${secret}], schema: app, serverId: 1 }` }),
    yamlWith({ children: `children: [{ id: a, token: ${secret} }, { id: b, token: ${secret} }]` }),
    yamlWith({ parent: `parent: { url: 'http://user:${secret}@p', token: t }` }),
    yamlWith({ parent: `parent: { url: 'http://p', token: { x: ${secret} } }` }),
    yamlWith({ database: `database: { host: h, user: u, pasword: ${secret}, schema: app, serverId: 1 }` }),
    `database: { password: "${secret}\n  broken: [`,
  ];
  for (const text of cases) {
    const e = t.throws(() => parseConfig(text, 'n.yaml', {})) as Error;
    t.notMatch(e.message, secret);
  }
  const n = t.throws(() => parseConfig(yamlWith({ database: 'database: { host: h, user: u, password: 12345, schema: app, serverId: 1 }' }), 'n.yaml', {})) as Error;
  t.match(n.message, /database.password: expected a non-empty string \(quote the value\), got a number/);
  t.notMatch(n.message, '12345');
});

void t.test('${ENV} expansion', async (t) => {
  const c = parseConfig(yamlWith({
    database: 'database: { host: "${DB_HOST:-localhost}", port: ${DB_PORT}, user: "u-${WHO}", password: "$${literal}", schema: app, serverId: ${SID:-42} }',
  }), 'n.yaml', { DB_PORT: '3307', WHO: 'me', SID: '' });
  t.equal(c.database.host, 'localhost', 'default when unset');
  t.equal(c.database.port, 3307, 'a number from the environment');
  t.equal(c.database.user, 'u-me', 'inside a string');
  t.equal(c.database.password, '${literal}', '$${ is a literal');
  t.equal(c.database.serverId, 42, 'default when empty');

  const e = t.throws(() => parseConfig(DESIGN_EXAMPLE, 'kigali.yaml', { SPOKESYNC_DB_PASSWORD: 'x' })) as Error;
  t.ok(isSpokesyncError(e, 'SPOKESYNC_E_CONFIG_ENV'));
  t.match(e.message, 'kigali.yaml: children[0].token: environment variable RWINKWAVU_TOKEN is not set');
  t.match(e.message, 'kigali.yaml: parent.token: environment variable SPOKESYNC_PARENT_TOKEN is not set');
  t.equal(e.message.split('\n').length, 2, 'no second problem for the empty value');

  const mixed = t.throws(() => parseConfig(DESIGN_EXAMPLE.replace('interval: 5m', 'interval: 5'), 'kigali.yaml', {})) as Error;
  t.ok(isSpokesyncError(mixed, 'SPOKESYNC_E_CONFIG'), 'env and other problems together: SPOKESYNC_E_CONFIG');
  t.match(mixed.message, 'parent.interval');
  t.match(mixed.message, 'SPOKESYNC_DB_PASSWORD');
  t.match((mixed as { fix?: string }).fix, /environment variables/);

  const malformed = checkConfig(yamlWith({ node: 'node: { id: "${not valid}" }' }), 'n.yaml', {});
  t.match(malformed.problems[0], { path: 'node.id', message: /malformed reference/ });
});

void t.test('YAML syntax errors and duplicate keys', async (t) => {
  const dup = checkConfig('node: { id: a }\nnode: { id: b }\n', 'n.yaml', {});
  t.match(dup.problems[0]?.message, /YAML syntax error at line 2, column 1: Map keys must be unique/);
  const empty = checkConfig('# nothing\n', 'n.yaml', {});
  t.match(empty.problems[0]?.message, /empty/);
  const list = checkConfig('- a\n- b\n', 'n.yaml', {});
  t.match(list.problems[0]?.message, /expected a mapping/);
});

void t.test('loadConfig reads a file; a missing file is a config error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spokesync-config-'));
  const file = join(dir, 'node.yaml');
  writeFileSync(file, MINIMAL);
  t.equal(loadConfig(file, {}).node.id, 'rwinkwavu');
  t.equal(loadConfig(file, {}).file, file);
  const e = t.throws(() => loadConfig(join(dir, 'nope.yaml'), {})) as Error;
  t.ok(isSpokesyncError(e, 'SPOKESYNC_E_CONFIG'));
  t.match(e.message, /nope\.yaml: cannot read the config file \(ENOENT\)/);
});

void t.test('the reference lists every key with its default once', async (t) => {
  const keys = CONFIG_KEYS.map((k) => k.key);
  t.equal(new Set(keys).size, keys.length, 'no key twice');
  const ref = configReference();
  for (const k of keys) t.match(ref, `  ${k} `, k);
  t.match(ref, /parent\.interval\s+time between exchanges .*default 5m/);
  t.match(ref, /listen\.maxBodyBytes\s+.*default 8MiB/);
  t.match(ref, /listen\.maxConnectionsPerAddress\s+.*default 8\)/);
  t.match(ref, /listen\.headersTimeout\s+.*default 10s/);
  t.match(ref, /listen\.bodyTimeout\s+.*default 60s/);
  t.match(ref, /listen\.authFailures\.block\s+.*default 5m/);
  // Every default in the table is valid for its own key.
  t.ok(parseConfig(MINIMAL, 'r.yaml', {}));
});
