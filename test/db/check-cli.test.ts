// `spokesync check` as users run it: the built binary against a real server.
import { spokesync } from '../helpers/cli.js';
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, loadOpenmrs, freePort } from '../../deploy/sandbox/mariadb.js';

void t.test('spokesync check exits 0 on a good server, 1 on a bad one, listing each problem with its fix', async (t) => {
  const s = await startServer({ extraArgs: ['--binlog-expire-logs-seconds=1209600'] });
  t.teardown(() => s.stop());
  await loadOpenmrs(s);
  await s.query("CREATE USER 'spokesync'@'127.0.0.1' IDENTIFIED BY 'cli-secret-pw'");
  await s.query("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'spokesync'@'127.0.0.1'");
  await s.query("GRANT SELECT, INSERT, UPDATE, DELETE ON openmrs.* TO 'spokesync'@'127.0.0.1'");
  await s.query("GRANT ALL PRIVILEGES ON spokesync.* TO 'spokesync'@'127.0.0.1'");

  const dir = mkdtempSync(join(tmpdir(), 'spokesync-check-cli-'));
  const write = (name: string, tables: string, port = s.port): string => {
    const file = join(dir, name);
    writeFileSync(file, `
node: { id: cli-check }
database:
  host: 127.0.0.1
  port: ${port}
  user: spokesync
  password: \${SPOKESYNC_DB_PASSWORD}
  schema: openmrs
  serverId: 65001
tables: ${tables}
`);
    return file;
  };
  const env = { SPOKESYNC_DB_PASSWORD: 'cli-secret-pw' };

  const good = await spokesync(['check', '--config', write('good.yaml', '{ include: [person, person_name, patient, encounter, obs] }')], env);
  t.equal(good.code, 0, good.out + good.err);
  t.match(good.out, /^spokesync check: MariaDB 10\.\d+\.\d+ at 127\.0\.0\.1:\d+ as spokesync@127\.0\.0\.1, schema openmrs\n/);
  t.match(good.out, /no problems: this server is ready for spokesync\n$/);
  t.equal(good.err, '', 'nothing on stderr at log level info');

  const badTables = write('bad.yaml', '{ include: [person, liquibasechangelog, obss] }');
  const bad = await spokesync(['check', '--config', badTables], env);
  t.equal(bad.code, 1);
  t.match(bad.out, /error: table liquibasechangelog has no primary key, no unique key and no uuid column.*tables\.keys\.liquibasechangelog\n {2}fix: /);
  t.match(bad.out, /error: tables\.include names obss, which is not a table of schema openmrs \(did you mean obs\?\)\n {2}fix: correct the name/);
  t.match(bad.out, /\n2 errors, 0 warnings\n$/);
  t.notMatch(bad.out + bad.err, 'cli-secret-pw');

  // A server setting broken at runtime: also exit 1, and --json says why.
  await s.query('SET GLOBAL sync_binlog = 0');
  const json = await spokesync(['check', '--config', write('good2.yaml', '{ include: [person] }'), '--json'], env);
  t.equal(json.code, 1);
  const report = JSON.parse(json.out) as { ok: boolean; errors: number; problems: Array<{ check: string; severity: string; fix: string }> };
  t.equal(report.ok, false);
  t.same(report.problems.map((p) => [p.check, p.severity]), [['sync_binlog', 'error']]);
  t.match(report.problems[0]?.fix, /sync_binlog = 1/);

  // Nothing listening: the connection is the one problem.
  const down = await spokesync(['check', '--config', write('down.yaml', '{ include: [person] }', await freePort())], env);
  t.equal(down.code, 1);
  t.match(down.out, /error: cannot connect to 127\.0\.0\.1:\d+ as spokesync \(ECONNREFUSED\)\n {2}fix: Check database\.host/);

  // A wrong password: the same, and the password is not printed.
  const denied = await spokesync(['check', '--config', badTables], { SPOKESYNC_DB_PASSWORD: 'wrong-pw-123' });
  t.equal(denied.code, 1);
  t.match(denied.out, /cannot connect .*ER_ACCESS_DENIED_ERROR/);
  t.notMatch(denied.out + denied.err, 'wrong-pw-123');
});
