// mysql-conf/ and `spokesync check` agree: a server configured with
// mysql-conf/spokesync.cnf and an account made by mysql-conf/grants.sql passes
// every check; a server with bad settings gets exactly those problems.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, loadOpenmrs, mariadbBinary, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { runCli } from '../../agent/cli/dispatch.js';
import { parseConfig } from '../../agent/config/loader.js';
import { runChecks } from '../../agent/check/checks.js';
import { gatherFacts } from '../../agent/check/facts.js';
import { assertPreflight } from '../../agent/check/preflight.js';
import { connectDb } from '../../apply/core/db.js';
import type { Config } from '../../agent/config/types.js';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const NO_IDENTITY = ['concept_name_tag_map', 'concept_proposal_tag_map', 'liquibasechangelog', 'liquibasechangeloglock', 'scheduler_task_config_property'];

/** Pipes SQL into the mariadb client as root (stops at the first error). */
async function mariadb(s: TestServer, sql: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const c = spawn(mariadbBinary('mariadb'), ['-h127.0.0.1', `-P${s.port}`, '-uroot'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mariadb client: ${err}`))));
    c.stdin.end(sql);
  });
}

function configFor(s: TestServer, db: string, tables: string, serverId = 64001): Config {
  return parseConfig(`
node: { id: check-test }
database: { host: 127.0.0.1, port: ${s.port}, ${db}, schema: openmrs, serverId: ${serverId} }
tables: ${tables}
`, 'check-test.yaml', {});
}

async function check(config: Config) {
  const { host, port, user, password } = config.database;
  const db = await connectDb({ host, port, user, ...(password === undefined ? {} : { password }) });
  try {
    const f = await gatherFacts(db, config);
    return runChecks(f, config);
  } finally {
    await db.close();
  }
}

void t.test('a server set up from mysql-conf/ passes every check', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spokesync-cnf-'));
  const cnf = join(dir, 'my.cnf');
  writeFileSync(cnf, `[mysqld]\n!include ${join(repo, 'mysql-conf', 'spokesync.cnf')}\n`);
  const s = await startServer({ defaultsFile: cnf });
  t.teardown(() => s.stop());
  await loadOpenmrs(s);
  const grants = readFileSync(join(repo, 'mysql-conf', 'grants.sql'), 'utf8');
  await mariadb(s, `SET @spokesync_password = 'conf-test-pw';\n${grants}`);

  const config = configFor(s, 'user: spokesync, password: conf-test-pw', `{ include: ['*'], exclude: [${NO_IDENTITY.join(', ')}] }`);
  t.same(await check(config), [], 'no problems, not even warnings');

  // The same through the command, as JSON.
  const file = join(dir, 'node.yaml');
  writeFileSync(file, `
node: { id: check-test }
database: { host: 127.0.0.1, port: ${s.port}, user: spokesync, password: \${PW}, schema: openmrs, serverId: 64001 }
tables: { include: ['*'], exclude: [liquibase*, concept_*_tag_map, scheduler_task_config_property] }
`);
  const out: string[] = [];
  const code = await runCli(['check', '--config', file, '--json'], {
    stdout: (x) => out.push(x), stderr: () => undefined, env: { PW: 'conf-test-pw' }, signal: new AbortController().signal,
  });
  t.equal(code, 0);
  const report = JSON.parse(out.join('\n')) as { ok: boolean; problems: unknown[]; user: string; server: string };
  t.equal(report.ok, true);
  t.same(report.problems, []);
  t.equal(report.user, 'spokesync@127.0.0.1');
  t.match(report.server, /^MariaDB 10\./);

  // grants.sql without a password creates nothing.
  await t.rejects(mariadb(s, grants.replace(/@spokesync_user, 'spokesync'/, "@spokesync_user, 'other'")), /missing password/);
  const users = (await s.query("SELECT COUNT(*) AS n FROM mysql.user WHERE user = 'other'")) as Array<{ n: number | string }>;
  t.equal(Number(users[0]?.n), 0);
});

void t.test('bad settings, missing grants and tables without identity are reported with fixes', async (t) => {
  const s = await startServer({ extraArgs: ['--binlog-row-metadata=MINIMAL', '--sync-binlog=0'] });
  t.teardown(() => s.stop());
  await loadOpenmrs(s);

  const root = configFor(s, 'user: root', '{ include: [person, patient, obs, liquibasechangelog] }');
  const problems = await check(root);
  const errors = problems.filter((p) => p.severity === 'error');
  t.same(errors.map((p) => p.check).sort(), ['binlog_row_metadata', 'sync_binlog', 'table.identity'], JSON.stringify(errors, null, 1));
  const meta = errors.find((p) => p.check === 'binlog_row_metadata');
  t.match(meta?.message, /binlog_row_metadata is MINIMAL, must be FULL/);
  t.match(meta?.fix, /binlog_row_metadata = FULL.*mysql-conf\/spokesync\.cnf/);
  t.match(errors.find((p) => p.check === 'sync_binlog'), { message: /sync_binlog is 0, must be 1.*power cut/, fix: /sync_binlog = 1/ });
  const identity = errors.find((p) => p.check === 'table.identity');
  t.equal(identity?.subject, 'liquibasechangelog');
  t.match(identity?.message, /liquibasechangelog.*tables\.keys\.liquibasechangelog/);
  t.match(identity?.fix, /tables\.keys\.liquibasechangelog/);
  // The test server keeps binlogs for ever: a warning, not an error.
  t.same(problems.filter((p) => p.severity === 'warning').map((p) => p.check), ['binlog_retention']);

  // What `run` calls before starting: every error in one SPOKESYNC_E_PREFLIGHT.
  const rootDb = await connectDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => rootDb.close());
  const e = (await assertPreflight(rootDb, root).then(() => undefined, (x: unknown) => x)) as Error & { code?: string };
  t.equal(e?.code, 'SPOKESYNC_E_PREFLIGHT');
  t.equal(e?.message.split('\n').length, 3, 'one line per error');
  t.match(e?.message, /binlog_row_metadata is MINIMAL.*; fix: /);

  // Fixed at runtime, the same server passes (the checks read live values).
  await s.query("SET GLOBAL binlog_row_metadata = 'FULL', sync_binlog = 1, binlog_expire_logs_seconds = 1209600");
  t.same(await check(configFor(s, 'user: root', '{ include: [person, patient, obs] }')), []);
  t.same(await assertPreflight(rootDb, configFor(s, 'user: root', '{ include: [person] }')), [], 'passes once fixed');

  // The server's own server_id as database.serverId.
  const same = await check(configFor(s, 'user: root', '{ include: [person] }', s.serverId));
  t.match(same, [{ check: 'server_id', message: /is the server's own server_id/ }]);

  // An account without grants: every missing privilege, and the schema it cannot see.
  await s.query("CREATE USER 'bare'@'127.0.0.1' IDENTIFIED BY 'bare-pw'");
  const bare = await check(configFor(s, 'user: bare, password: bare-pw', '{ include: [person] }'));
  t.same(bare.map((p) => p.check), ['grants.replication', 'grants.schema', 'grants.state', 'schema']);
  t.match(bare[0]?.fix, "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'bare'@'127.0.0.1';");
  t.match(bare[1]?.fix, "GRANT SELECT, INSERT, UPDATE, DELETE ON `openmrs`.* TO 'bare'@'127.0.0.1';");
  t.match(bare[2]?.message, /cannot create spokesync's state schema spokesync/);
  for (const p of bare) t.notMatch(p.message + p.fix, 'bare-pw', 'no password in problems');

  // Partly granted: only what is missing is reported, and the fix grants it.
  await s.query("GRANT SELECT ON openmrs.* TO 'bare'@'127.0.0.1'");
  await s.query("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'bare'@'127.0.0.1'");
  const partial = await check(configFor(s, 'user: bare, password: bare-pw', '{ include: [person, persn] }'));
  t.same(partial.map((p) => p.check), ['grants.schema', 'grants.state', 'tables.include']);
  t.match(partial[0]?.message, /lacks INSERT, UPDATE, DELETE on schema openmrs/);
  t.match(partial[2]?.message, /persn, which is not a table of schema openmrs \(did you mean person\?\)/);
});
