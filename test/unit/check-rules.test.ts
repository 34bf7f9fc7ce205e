// The checks of `spokesync check` as pure functions of gathered facts.
import t from 'tap';
import { runChecks, report, formatReport } from '../../agent/check/checks.js';
import type { Facts } from '../../agent/check/facts.js';
import { parseVersion } from '../../agent/check/facts.js';
import { holds, likeMatch, parseGrants, accountOf } from '../../agent/check/grants.js';
import { grantTarget } from '../../agent/check/rules-access.js';
import { parseConfig } from '../../agent/config/loader.js';
import type { Catalog, TableInfo } from '../../apply/core/catalog.js';
import { STATE_VERSION } from '../../apply/core/state-schema.js';

const config = parseConfig(`
node: { id: n }
database: { host: db, user: spokesync, password: pw-never-shown, schema: app, serverId: 4101 }
tables: { include: [person, 'enc*', tagmap], exclude: [], keys: { tagmap: [a, b] } }
`, 'n.yaml', {});

function table(name: string, over: Partial<TableInfo> = {}): TableInfo {
  return {
    name, engine: 'InnoDB', columns: [], column: new Map(), primaryKey: [], uniqueKeys: [], foreignKeys: [], refs: new Map(),
    identity: { kind: 'uuid', column: 'uuid' }, identityProblem: null, localColumns: new Set(), ...over,
  };
}
function catalog(tables: TableInfo[]): Catalog {
  const m = new Map(tables.map((x) => [x.name, x]));
  return { schema: 'app', tables: m, table: (n) => m.get(n)! };
}

const GOOD_VARS = {
  log_bin: 'ON', binlog_format: 'ROW', binlog_row_image: 'FULL', binlog_row_metadata: 'FULL', server_id: '1',
  sync_binlog: '1', innodb_flush_log_at_trx_commit: '1', binlog_expire_logs_seconds: '1209600', expire_logs_days: '14',
  max_allowed_packet: '67108864',
};
const GOOD: Facts = {
  version: '10.11.19-MariaDB-0+deb12u1',
  variables: GOOD_VARS,
  currentUser: 'spokesync@127.0.0.1',
  grants: [
    "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `spokesync`@`127.0.0.1` IDENTIFIED BY PASSWORD '*ABC'",
    'GRANT SELECT, INSERT, UPDATE, DELETE ON `app`.* TO `spokesync`@`127.0.0.1`',
    'GRANT ALL PRIVILEGES ON `spokesync`.* TO `spokesync`@`127.0.0.1`',
  ],
  schemaExists: true,
  stateSchemaExists: false,
  stateVersion: null,
  catalog: catalog([table('person'), table('encounter'), table('encounter_type'), table('tagmap', { identity: { kind: 'natural', columns: ['a', 'b'] } })]),
  files: {},
};

void t.test('good facts: no problems', async (t) => {
  t.same(runChecks(GOOD, config), []);
});

// [what, changed facts, expected checks (errors then warnings), message pattern of the first]
const cases: Array<[string, Partial<Facts> & { vars?: Record<string, string | undefined> }, string[], RegExp]> = [
  ['log_bin off', { vars: { log_bin: 'OFF' } }, ['log_bin'], /binary logging is off/],
  ['statement format', { vars: { binlog_format: 'MIXED' } }, ['binlog_format'], /binlog_format is MIXED, must be ROW/],
  ['minimal image', { vars: { binlog_row_image: 'MINIMAL' } }, ['binlog_row_image'], /must be FULL/],
  ['minimal metadata', { vars: { binlog_row_metadata: 'MINIMAL' } }, ['binlog_row_metadata'], /binlog_row_metadata is MINIMAL/],
  ['MariaDB 10.4', { version: '10.4.32-MariaDB', vars: { binlog_row_metadata: undefined } }, ['binlog_row_metadata'], /MariaDB 10\.4\.32 has no binlog_row_metadata.*10\.5\+/],
  ['MySQL 5.7', { version: '5.7.44-log', vars: { binlog_row_metadata: undefined } }, ['binlog_row_metadata'], /MySQL 5\.7\.44/],
  ['server_id 0', { vars: { server_id: '0' } }, ['server_id'], /refuses binlog clients/],
  ['server_id clash', { vars: { server_id: '4101' } }, ['server_id'], /database\.serverId \(4101\) is the server's own server_id/],
  ['sync_binlog 0', { vars: { sync_binlog: '0' } }, ['sync_binlog'], /sync_binlog is 0, must be 1/],
  ['flush at commit 2', { vars: { innodb_flush_log_at_trx_commit: '2' } }, ['innodb_flush_log_at_trx_commit'], /power cut/],
  ['small packet', { vars: { max_allowed_packet: String(4 * 1024 * 1024) } }, ['max_allowed_packet'], /max_allowed_packet is 4MiB, must be at least 16MiB/],
  ['never purged', { vars: { binlog_expire_logs_seconds: '0', expire_logs_days: '0' } }, ['binlog_retention'], /never purged/],
  ['purged after 2 days', { vars: { binlog_expire_logs_seconds: '172800', expire_logs_days: '2' } }, ['binlog_retention'], /purged after 2 days/],
  ['expire_logs_days only', { vars: { binlog_expire_logs_seconds: undefined, expire_logs_days: '10' } }, [], /./],
  ['purged by size', { vars: { max_binlog_total_size: '1073741824', binlog_space_limit: '1073741824' } }, ['binlog_retention'], /purges binlogs by size/],
  ['MySQL compression', { version: '8.0.36', vars: { binlog_transaction_compression: 'ON' } }, ['binlog_transaction_compression'], /compressed transaction payloads/],
  ['MySQL partial JSON', { version: '8.0.36', vars: { binlog_row_value_options: 'PARTIAL_JSON' } }, ['binlog_row_value_options'], /PARTIAL_JSON/],
  ['MySQL defaults pass', { version: '8.0.36', vars: { binlog_transaction_compression: 'OFF', binlog_row_value_options: '' } }, [], /./],
  ['no replication grant', { grants: GOOD.grants.slice(1) }, ['grants.replication'], /lacks REPLICATION SLAVE and REPLICATION CLIENT \(BINLOG MONITOR\) on \*\.\*/],
  ['no schema grant', { grants: [GOOD.grants[0]!, GOOD.grants[2]!] }, ['grants.schema'], /lacks SELECT, INSERT, UPDATE, DELETE on schema app/],
  ['no state grant', { grants: GOOD.grants.slice(0, 2) }, ['grants.state'], /cannot create spokesync's state schema spokesync/],
  ['state exists, no grant', { grants: GOOD.grants.slice(0, 2), stateSchemaExists: true }, ['grants.state'], /lacks ALL PRIVILEGES on spokesync's state schema/],
  ['state of this version', { stateSchemaExists: true, stateVersion: String(STATE_VERSION) }, [], /./],
  ['state of an older version', { stateSchemaExists: true, stateVersion: '4' }, [], /./],
  ['state of a newer version', { stateSchemaExists: true, stateVersion: String(STATE_VERSION + 1) }, ['state.version'],
    new RegExp(`state schema spokesync is at state version ${STATE_VERSION + 1}, written by a newer spokesync; this spokesync knows state versions up to ${STATE_VERSION}`)],
  ['state version unreadable', { stateSchemaExists: true, stateVersion: 'x1' }, ['state.version'], /a state version this spokesync cannot read \("x1"\)/],
  ['role grants do not count', { grants: [...GOOD.grants.slice(1), 'GRANT `repl` TO `spokesync`@`127.0.0.1`'] }, ['grants.replication'], /through roles repl/],
  ['ALL on *.*', { grants: ["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"] }, [], /./],
  ['no schema', { schemaExists: false, catalog: null }, ['schema'], /the application schema app does not exist/],
  ['missing literal table', { catalog: catalog([table('encounter'), table('tagmap'), table('persons')]) }, ['tables.include'],
    /tables\.include names person, which is not a table of schema app \(did you mean persons\?\)/],
  ['glob matching nothing', { catalog: catalog([table('person'), table('tagmap')]) }, ['tables.include'], /enc\* matches no table/],
  ['MyISAM table', { catalog: catalog([table('person', { engine: 'MyISAM' }), table('encounter'), table('tagmap')]) }, ['table.engine'], /person uses MyISAM, not InnoDB/],
  ['no identity', { catalog: catalog([table('person'), table('encounter_x', { identity: null, identityProblem: 'table encounter_x has no primary key: ... tables.keys.encounter_x' }), table('tagmap')]) },
    ['table.identity'], /tables\.keys\.encounter_x/],
];

for (const [what, change, checks, pattern] of cases) {
  void t.test(what, async (t) => {
    const { vars, ...rest } = change;
    const variables: Record<string, string> = { ...GOOD_VARS };
    for (const [k, v] of Object.entries(vars ?? {})) {
      if (v === undefined) delete variables[k];
      else variables[k] = v;
    }
    const facts: Facts = { ...GOOD, variables, ...rest };
    const problems = runChecks(facts, config);
    t.same(problems.map((p) => p.check), checks, JSON.stringify(problems, null, 1));
    if (problems[0]) t.match(problems[0].message, pattern);
    for (const p of problems) {
      t.ok(p.fix.length > 10, 'has a fix');
      t.notMatch(p.message + p.fix, 'pw-never-shown');
    }
  });
}

void t.test('fixes are statements to run', async (t) => {
  const p = runChecks({ ...GOOD, grants: [] }, config);
  t.equal(p.find((x) => x.check === 'grants.replication')?.fix, "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'spokesync'@'127.0.0.1';");
  t.equal(p.find((x) => x.check === 'grants.schema')?.fix, "GRANT SELECT, INSERT, UPDATE, DELETE ON `app`.* TO 'spokesync'@'127.0.0.1';");
  t.equal(p.find((x) => x.check === 'grants.state')?.fix, "GRANT ALL PRIVILEGES ON `spokesync`.* TO 'spokesync'@'127.0.0.1';");
  const m = runChecks({ ...GOOD, variables: { ...GOOD_VARS, binlog_row_metadata: 'NO_LOG' } }, config);
  t.match(m[0]?.fix, "binlog_row_metadata = FULL` in the server's config");
  t.match(m[0]?.fix, "SET GLOBAL binlog_row_metadata = 'FULL'");
});

void t.test('overrides and child filters that name no synced table are warnings', async (t) => {
  const c = parseConfig(`
node: { id: n }
database: { host: db, user: spokesync, schema: app, serverId: 4101 }
tables: { include: [person], keys: { tagmap: [a, b] }, direction: { persn: up } }
children: [{ id: c, token: t, tables: { include: [encounter] } }]
`, 'n.yaml', {});
  const p = runChecks(GOOD, c);
  t.same(p.map((x) => [x.check, x.severity]), [['tables.keys', 'warning'], ['tables.direction', 'warning'], ['children.tables', 'warning'], ['children.tables', 'warning']]);
  t.match(p[0]?.message, 'tables.keys.tagmap: tagmap is not a synced table');
  t.match(p[1]?.message, 'tables.direction.persn: persn is not a synced table of schema app (did you mean person?)');
  t.match(p[2]?.message, 'children[0].tables.include: encounter matches no synced table');
  t.match(p[3]?.message, 'children[0] (c) receives no table');
});

void t.test('config files that cannot be read', async (t) => {
  const withTls = parseConfig(`
node: { id: n }
database: { host: db, user: spokesync, schema: app, serverId: 4101 }
tables: { include: [person, 'enc*', tagmap], keys: { tagmap: [a, b] } }
listen: { port: 8443, tls: { cert: /etc/c.pem, key: /etc/k.pem } }
`, 'n.yaml', {});
  const p = runChecks({ ...GOOD, files: { '/etc/c.pem': null, '/etc/k.pem': 'EACCES' } }, withTls);
  t.same(p.map((x) => x.message), ['listen.tls.key: cannot read /etc/k.pem (EACCES)']);
});

void t.test('errors come before warnings; the report counts both', async (t) => {
  const facts = { ...GOOD, variables: { ...GOOD_VARS, binlog_expire_logs_seconds: '0', expire_logs_days: '0', sync_binlog: '0' } };
  const problems = runChecks(facts, config).filter((p) => p.check !== 'tables.keys');
  t.same(problems.map((p) => p.severity), ['error', 'warning']);
  const r = report(config, problems, facts);
  t.match(r, { ok: false, errors: 1, warnings: 1, server: 'MariaDB 10.11.19', address: 'db:3306', user: 'spokesync@127.0.0.1' });
  t.match(formatReport(r), /\nerror: sync_binlog is 0.*\n {2}fix: .*\n\nwarning: binlogs are never purged.*\n {2}fix: .*\n\n1 error, 1 warning$/);
  const w = report(config, problems.slice(1), facts);
  t.equal(w.ok, true, 'warnings alone pass');
  t.match(formatReport(w), /0 errors, 1 warning \(warnings do not stop spokesync\)$/);
});

void t.test('grant parsing', async (t) => {
  const { grants, roles } = parseGrants([
    'GRANT USAGE ON *.* TO `u`@`%`',
    'GRANT SELECT (a, b), INSERT ON `app`.`t` TO `u`@`%`',
    'GRANT SELECT, INSERT, UPDATE, DELETE ON `open\\_mrs`.* TO `u`@`%`',
    'GRANT ALL PRIVILEGES ON `st%`.* TO `u`@`%` WITH GRANT OPTION',
    'GRANT EXECUTE ON PROCEDURE `app`.`p` TO `u`@`%`',
    'GRANT REPLICATION REPLICA ON *.* TO `u`@`%`',
    'GRANT `dba` TO `u`@`%`',
    "GRANT PROXY ON ''@'%' TO 'u'@'%'",
  ]);
  t.same(roles, ['dba']);
  t.ok(holds(grants, 'REPLICATION SLAVE', '*'), 'REPLICATION REPLICA is REPLICATION SLAVE');
  t.notOk(holds(grants, 'REPLICATION CLIENT', '*'));
  t.ok(holds(grants, 'DELETE', 'open_mrs'));
  t.notOk(holds(grants, 'DELETE', 'openXmrs'), 'an escaped _ is literal');
  t.notOk(holds(grants, 'SELECT', 'app'), 'a table-level grant is not a schema grant');
  t.ok(holds(grants, 'CREATE', 'state'), 'ALL on a % pattern');
  t.ok(likeMatch('a_c', 'abc'));
  t.notOk(likeMatch('a\\_c', 'abc'));
  t.equal(accountOf("o'brien@10.0.0.%"), "'o\\'brien'@'10.0.0.%'");
  t.equal(grantTarget('open_mrs'), '`open\\_mrs`.*');
  t.same(parseVersion('8.0.36-28'), { kind: 'mysql', major: 8, minor: 0, patch: 36, label: 'MySQL 8.0.36' });
});
