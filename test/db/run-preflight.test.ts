// `spokesync run` refuses to start capturing from a server or tables that would
// give wrong change sets, naming every problem and its fix (exit 1).
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spokesync } from '../helpers/cli.js';
import { startServer, loadOpenmrs, type TestServer } from '../../deploy/sandbox/mariadb.js';

function run(config: string) {
  // A daemon that did start is a failure of this test: it is killed so the test ends.
  return spokesync(['run', '--config', config], {}, { killAfterMs: 30_000 });
}

function writeConfig(s: TestServer, tables: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'spokesync-run-preflight-')), 'node.yaml');
  writeFileSync(file, [
    'node: { id: preflight }',
    'database:',
    '  host: 127.0.0.1',
    `  port: ${s.port}`,
    '  user: root',
    '  schema: openmrs',
    '  serverId: 65002',
    `tables: { include: [${tables}] }`,
  ].join('\n') + '\n');
  return file;
}

void t.test('run refuses a synced table without identity, naming it and tables.keys', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  await loadOpenmrs(s);
  const res = await run(writeConfig(s, 'person, liquibasechangelog'));
  t.equal(res.code, 1, res.out + res.err);
  t.match(res.err, /liquibasechangelog/);
  t.match(res.err, /tables\.keys/);
  t.match(res.err, /SPOKESYNC_E_PREFLIGHT/);
  const journal = (await s.query(
    "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'spokesync' AND table_name = 'checkpoint'",
  )) as Array<{ n: number | string }>;
  const started = Number(journal[0]?.n) === 1
    ? Number(((await s.query('SELECT COUNT(*) AS n FROM spokesync.checkpoint')) as Array<{ n: number | string }>)[0]?.n)
    : 0;
  t.equal(started, 0, 'capture never started: no checkpoint written');
});

void t.test('run refuses a server without binlog row metadata', async (t) => {
  const s = await startServer({ extraArgs: ['--binlog-row-metadata=MINIMAL'] });
  t.teardown(() => s.stop());
  await loadOpenmrs(s);
  const res = await run(writeConfig(s, 'person, person_name'));
  t.equal(res.code, 1, res.out + res.err);
  t.match(res.err, /binlog_row_metadata/);
});
