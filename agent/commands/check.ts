// `spokesync check`: preflight of the server, grants and tables. Lists every
// problem with its fix; exit 0 when there is no error (warnings allowed), 1 otherwise.
import type { CommandSpec } from '../cli/command.js';
import { formatReport, report, runChecks, type Problem } from '../check/checks.js';
import { gatherFacts, type Facts } from '../check/facts.js';
import { connectDb } from '../../apply/core/db.js';
import { isSpokesyncError } from '../../apply/core/errors.js';

export const command: CommandSpec = {
  name: 'check',
  summary: 'Preflight of the server, grants and tables; lists every problem with its fix',
  description:
    'Connects to the database of the config and checks everything spokesync needs: binlog settings ' +
    '(log_bin, binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL), durability ' +
    '(sync_binlog=1, innodb_flush_log_at_trx_commit=1), binlog retention, max_allowed_packet, the ' +
    "server's and the config's server ids, the grants of the configured user, the application and " +
    'state schemas, and that every synced table exists, is InnoDB and has an identity (a uuid ' +
    'column, a shared or natural key, or tables.keys). mysql-conf/ has the server settings and ' +
    'grants that pass.\n\n' +
    'Exit status: 0 when there is no error (warnings are printed but allowed), 1 when there is one, ' +
    '2 when the config is invalid.',
  options: {
    json: { type: 'boolean', help: 'print the report as JSON: {ok, server, address, user, schema, errors, warnings, problems: [{check, severity, message, fix, subject}]}' },
  },
  needsConfig: true,
  async run(ctx) {
    const { config } = ctx;
    let facts: Facts | null = null;
    let problems: Problem[];
    try {
      // No default schema: the application schema may be missing or not granted, which the checks report.
      const { host, port, user, password } = config.database;
      const db = await connectDb({ host, port, user, ...(password === undefined ? {} : { password }) }, { connectionLimit: 1 });
      try {
        facts = await gatherFacts(db, config);
      } finally {
        await db.close();
      }
      problems = runChecks(facts, config);
    } catch (e) {
      if (!isSpokesyncError(e, 'SPOKESYNC_E_DB_CONNECT')) throw e;
      problems = [{ check: 'connect', severity: 'error', message: e.message, fix: e.fix }];
    }
    const r = report(config, problems, facts);
    ctx.log.debug('check done', { errors: r.errors, warnings: r.warnings });
    ctx.out(ctx.options.json === true ? JSON.stringify(r, null, 2) : formatReport(r));
    return r.ok ? 0 : 1;
  },
};
