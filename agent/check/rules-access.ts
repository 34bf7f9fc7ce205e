// Checks of the configured user's grants and of the state schema (its grants, its version). Pure.
// What spokesync needs, and why:
//   *.*              REPLICATION SLAVE (read the binlog), REPLICATION CLIENT
//                    (= BINLOG MONITOR on MariaDB 10.5+: list binlogs, positions)
//   application      SELECT, INSERT, UPDATE, DELETE (snapshot, apply)
//   state schema     ALL (spokesync creates and migrates its own tables)
// mysql-conf/grants.sql grants exactly these.
import type { Config } from '../config/types.js';
import { parseVersion, atLeast, type Facts } from './facts.js';
import { accountOf, missing, parseGrants } from './grants.js';
import { error, type Problem } from './problem.js';
import { stateVersionError } from '../../apply/core/state-schema.js';

export const GLOBAL_PRIVILEGES = ['REPLICATION SLAVE', 'REPLICATION CLIENT'] as const;
export const APP_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;

/** `schema` quoted for a GRANT ... ON `schema`.*, its _ and % escaped so they are not wildcards. */
export function grantTarget(schema: string): string {
  return '`' + schema.replace(/`/g, '``').replace(/([_%])/g, '\\$1') + '`.*';
}

export function accessProblems(facts: Facts, config: Config): Problem[] {
  const { grants, roles } = parseGrants(facts.grants);
  const account = accountOf(facts.currentUser);
  const flavor = parseVersion(facts.version);
  const viaRoles = roles.length > 0 ? ` (privileges held through roles ${roles.join(', ')} are not counted: grant them to the user)` : '';
  const { schema, stateSchema } = config.database;
  const out: Problem[] = [];

  const global = missing(grants, GLOBAL_PRIVILEGES, '*');
  if (global.length > 0) {
    const names = global.map((p) => (p === 'REPLICATION CLIENT' && flavor.kind === 'mariadb' && atLeast(flavor, 10, 5) ? 'REPLICATION CLIENT (BINLOG MONITOR)' : p));
    out.push(error('grants.replication', `${facts.currentUser} lacks ${names.join(' and ')} on *.*: needed to read the binlog and its positions${viaRoles}`,
      `GRANT ${global.join(', ')} ON *.* TO ${account};`));
  }
  const app = missing(grants, APP_PRIVILEGES, schema);
  if (app.length > 0) {
    out.push(error('grants.schema', `${facts.currentUser} lacks ${app.join(', ')} on schema ${schema}: needed to read snapshots and apply changes${viaRoles}`,
      `GRANT ${APP_PRIVILEGES.join(', ')} ON ${grantTarget(schema)} TO ${account};`, schema));
  }
  if (missing(grants, ['ALL'], stateSchema).length > 0) {
    const what = facts.stateSchemaExists
      ? `lacks ALL PRIVILEGES on spokesync's state schema ${stateSchema}: needed to keep the journal, ledger and peers there`
      : `cannot create spokesync's state schema ${stateSchema} (it does not exist yet and the user lacks ALL PRIVILEGES on it)`;
    out.push(error('grants.state', `${facts.currentUser} ${what}${viaRoles}`, `GRANT ALL PRIVILEGES ON ${grantTarget(stateSchema)} TO ${account};`, stateSchema));
  }
  const newer = stateVersionError(stateSchema, facts.stateVersion);
  if (newer) out.push(error('state.version', newer.message, newer.fix, stateSchema));
  return out;
}

/** Files named in the config that this process cannot read. */
export function fileProblems(facts: Facts, files: Readonly<Record<string, string>>): Problem[] {
  const out: Problem[] = [];
  for (const [key, path] of Object.entries(files)) {
    const err = facts.files[path];
    if (err) out.push(error('file', `${key}: cannot read ${path} (${err})`, `correct ${key} in the config, or let the spokesync user read the file`, path));
  }
  return out;
}
