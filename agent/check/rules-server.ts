// Checks of the server's settings against what capture needs. Pure: facts in,
// problems out. mysql-conf/spokesync.cnf is the source of truth for the values;
// keep the two in step (test/db/check-conf.test.ts proves they agree).
//
// The MySQL 8 paths (binlog_transaction_compression, binlog_row_value_options,
// MySQL version numbers) are written from the MySQL manual and are untested
// here: the test servers are MariaDB.
import type { Config } from '../config/types.js';
import { formatBytes } from '../../apply/core/units.js';
import { atLeast, parseVersion, type Facts } from './facts.js';
import { error, warning, type Problem } from './problem.js';

export const MIN_PACKET = 16 * 1024 * 1024;
/** Shorter binlog retention than this is a warning: a long outage could purge uncaptured changes. */
export const MIN_RETENTION_SECONDS = 7 * 86400;
export const RECOMMENDED_RETENTION_SECONDS = 14 * 86400;

const CNF = 'mysql-conf/spokesync.cnf';

/** "set X in the server config and restart" (and SET GLOBAL when the variable is dynamic). */
function setIt(setting: string, dynamic: string | null): string {
  const now = dynamic ? `; to apply it without a restart: SET GLOBAL ${dynamic}` : ' and restart the server';
  return `put \`${setting}\` in the server's config ([mysqld] section; ${CNF} has every setting spokesync needs)${now}`;
}

export function serverProblems(facts: Facts, config: Config): Problem[] {
  const v = facts.variables;
  const flavor = parseVersion(facts.version);
  const out: Problem[] = [];
  const is = (name: string, want: string): boolean => (v[name] ?? '').toUpperCase() === want;

  if (!is('log_bin', 'ON') && v.log_bin !== '1') {
    out.push(error('log_bin', `binary logging is off (log_bin=${v.log_bin ?? 'absent'}): spokesync reads every change from the binlog`,
      setIt('log_bin = mysql-bin', null), 'log_bin'));
  }
  if (!is('binlog_format', 'ROW')) {
    out.push(error('binlog_format', `binlog_format is ${v.binlog_format ?? 'absent'}, must be ROW: statement events do not say which rows changed`,
      setIt('binlog_format = ROW', "binlog_format = 'ROW' (new sessions only)"), 'binlog_format'));
  }
  if (!is('binlog_row_image', 'FULL')) {
    out.push(error('binlog_row_image', `binlog_row_image is ${v.binlog_row_image ?? 'absent'}, must be FULL: updates and deletes must carry whole rows for identities and conflict detection`,
      setIt('binlog_row_image = FULL', "binlog_row_image = 'FULL'"), 'binlog_row_image'));
  }
  const metaSupported = flavor.kind === 'mariadb' ? atLeast(flavor, 10, 5) : atLeast(flavor, 8, 0, 1);
  if (v.binlog_row_metadata === undefined || !metaSupported) {
    out.push(error('binlog_row_metadata', `${flavor.label} has no binlog_row_metadata: spokesync needs MariaDB 10.5+ or MySQL 8.0.1+, whose binlog names the columns of each row`,
      'upgrade the server to MariaDB 10.5 or later (10.11 LTS recommended) or MySQL 8.0.1 or later', 'binlog_row_metadata'));
  } else if (!is('binlog_row_metadata', 'FULL')) {
    out.push(error('binlog_row_metadata', `binlog_row_metadata is ${v.binlog_row_metadata}, must be FULL: capture needs column names and key metadata in the binlog, not only positions`,
      setIt('binlog_row_metadata = FULL', "binlog_row_metadata = 'FULL'"), 'binlog_row_metadata'));
  }

  const serverId = Number(v.server_id ?? 0);
  if (serverId === 0) {
    out.push(error('server_id', 'server_id is 0: the server refuses binlog clients',
      setIt('server_id = 1', null) + ' (any number but 0, unique among servers that replicate with each other)', 'server_id'));
  } else if (serverId === config.database.serverId) {
    out.push(error('server_id', `database.serverId (${config.database.serverId}) is the server's own server_id: spokesync's binlog connection needs an id of its own`,
      `choose another database.serverId in ${config.file}, unique among this server's replicas and binlog readers`, 'server_id'));
  }

  if (v.sync_binlog !== '1') {
    out.push(error('sync_binlog', `sync_binlog is ${v.sync_binlog ?? 'absent'}, must be 1: after a power cut the binlog could lack transactions that InnoDB kept, and capture would never see them`,
      setIt('sync_binlog = 1', 'sync_binlog = 1'), 'sync_binlog'));
  }
  if (v.innodb_flush_log_at_trx_commit !== '1') {
    out.push(error('innodb_flush_log_at_trx_commit', `innodb_flush_log_at_trx_commit is ${v.innodb_flush_log_at_trx_commit ?? 'absent'}, must be 1: a power cut could undo transactions that were already captured and sent to peers`,
      setIt('innodb_flush_log_at_trx_commit = 1', 'innodb_flush_log_at_trx_commit = 1'), 'innodb_flush_log_at_trx_commit'));
  }

  out.push(...retentionProblems(v));

  const packet = Number(v.max_allowed_packet ?? 0);
  if (packet < MIN_PACKET) {
    out.push(error('max_allowed_packet', `max_allowed_packet is ${formatBytes(packet)}, must be at least 16MiB: a row event or an applied statement larger than that (BLOBs, wide rows) stops capture or apply`,
      setIt('max_allowed_packet = 64M', 'max_allowed_packet = 67108864'), 'max_allowed_packet'));
  }

  // MySQL 8 only; MariaDB has neither variable.
  if (v.binlog_transaction_compression !== undefined && is('binlog_transaction_compression', 'ON')) {
    out.push(error('binlog_transaction_compression', 'binlog_transaction_compression is ON: spokesync cannot read compressed transaction payloads in the binlog',
      setIt('binlog_transaction_compression = OFF', 'binlog_transaction_compression = OFF'), 'binlog_transaction_compression'));
  }
  if (v.binlog_row_value_options !== undefined && /PARTIAL_JSON/i.test(v.binlog_row_value_options)) {
    out.push(error('binlog_row_value_options', 'binlog_row_value_options is PARTIAL_JSON: JSON updates would be logged as patches, not values, which spokesync cannot replay',
      setIt("binlog_row_value_options = ''", "binlog_row_value_options = ''"), 'binlog_row_value_options'));
  }
  return out;
}

/**
 * Binlog retention. Capture copies changes into the journal within seconds, so
 * the binlog only has to outlast spokesync being down while the database is in
 * use. Purged before capture = changes lost and the node re-provisioned, so a
 * retention under 7 days is a warning; never purging (0) is a warning too, as
 * the disk of a clinic laptop fills over months. 14 days is the recommendation.
 */
export function retentionProblems(v: Readonly<Record<string, string>>): Problem[] {
  const out: Problem[] = [];
  const seconds = Number(v.binlog_expire_logs_seconds ?? 0);
  const days = Number(v.expire_logs_days ?? 0);
  const retention = seconds > 0 ? seconds : days * 86400;
  const setting = `binlog_expire_logs_seconds = ${RECOMMENDED_RETENTION_SECONDS}`;
  if (retention === 0) {
    out.push(warning('binlog_retention', 'binlogs are never purged (binlog_expire_logs_seconds and expire_logs_days are 0): the disk will fill over the months',
      setIt(setting, setting) + ' (14 days: spokesync journals changes within seconds, the rest covers outages)', 'binlog_expire_logs_seconds'));
  } else if (retention < MIN_RETENTION_SECONDS) {
    out.push(warning('binlog_retention', `binlogs are purged after ${+(retention / 86400).toFixed(2)} days: if spokesync is stopped longer while the database is in use, uncaptured changes are lost and the node must be cloned again`,
      setIt(setting, setting) + ' (at least 7 days)', 'binlog_expire_logs_seconds'));
  }
  for (const name of ['max_binlog_total_size', 'binlog_space_limit']) {
    if (Number(v[name] ?? 0) > 0) {
      out.push(warning('binlog_retention', `${name} is ${formatBytes(Number(v[name]))}: the server purges binlogs by size, even ones spokesync has not captured yet`,
        setIt(`${name} = 0`, `${name} = 0`) + ' and rely on binlog_expire_logs_seconds', name));
      break; // the two names are aliases
    }
  }
  return out;
}
