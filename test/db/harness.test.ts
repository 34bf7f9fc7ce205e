import t from 'tap';
import { startServer, loadOpenmrs } from '../../deploy/sandbox/mariadb.js';

void t.test('a throwaway server has the binlog settings spokesync needs and loads OpenMRS', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const rows = (await s.query(
    "SELECT @@log_bin AS log_bin, @@binlog_format AS fmt, @@binlog_row_metadata AS meta, @@server_id AS id",
  )) as Array<Record<string, unknown>>;
  t.same(rows[0], { log_bin: 1, fmt: 'ROW', meta: 'FULL', id: s.serverId });
  await loadOpenmrs(s);
  const n = (await s.query(
    "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema='openmrs'",
  )) as Array<{ n: number }>;
  t.equal(Number(n[0]?.n), 116);
});
