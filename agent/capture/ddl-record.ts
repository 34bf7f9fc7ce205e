// Records DDL on synced tables in schema_events, with the checkpoint past it,
// in one transaction; and which tables sync after DDL (a table created,
// renamed or dropped while capture runs).
import type { Db } from '../../apply/core/db.js';
import type { Logger } from '../../apply/core/log.js';
import type { Catalog } from '../../apply/core/catalog.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { Assembled } from './assembler.js';
import { ddlTables, tableFingerprint } from './ddl.js';
import { writeCheckpoint, type Checkpoint } from '../journal/writer.js';

const MAX_STATEMENT = 60_000;

/** The synced tables a logged statement changes by DDL ([] for anything else). */
export function syncedDdlTables(item: Extract<Assembled, { kind: 'statement' }>, schema: string, synced: ReadonlySet<string>): string[] {
  return ddlTables(item.sql, item.schema, schema).filter((t) => synced.has(t));
}

/** The tables a DDL statement names that sync now or may after it (`syncs`: the config's tables.include and exclude). */
export function ddlOfInterest(item: Extract<Assembled, { kind: 'statement' }>, schema: string, synced: ReadonlySet<string>, syncs: (t: string) => boolean): string[] {
  return ddlTables(item.sql, item.schema, schema).filter((t) => synced.has(t) || syncs(t));
}

/**
 * Brings `synced` up to date for the tables a DDL statement named, against the
 * catalogue read after it: a table that exists, matches `syncs` and has an
 * identity syncs; any other stops, with a log line saying why. True when the
 * set changed (the binlog stream must be read again with the new set).
 */
export function updateSynced(synced: Set<string>, named: readonly string[], catalog: Catalog, syncs: (t: string) => boolean, log: Logger): boolean {
  let changed = false;
  for (const t of named) {
    const info = catalog.tables.get(t);
    const keep = info !== undefined && syncs(t) && info.identity !== null;
    if (keep && !synced.has(t)) {
      synced.add(t);
      changed = true;
      log.info('a table matching tables.include appeared: it syncs from its first row', { table: t });
    } else if (!keep && synced.has(t)) {
      synced.delete(t);
      changed = true;
      const why = info === undefined ? 'it was dropped or renamed' : !syncs(t) ? 'tables.include no longer matches it' : info.identityProblem;
      log.warn('a synced table stopped syncing', { table: t, why });
    } else if (!keep && info !== undefined && syncs(t) && info.identity === null) {
      log.error('a table matching tables.include does not sync: it has no identity', { table: t, fix: info.identityProblem });
    }
  }
  return changed;
}

export async function recordDdl(
  db: Pick<Db, 'transaction'>, stateSchema: string, schema: string, tables: readonly string[], sql: string, cp: Checkpoint, log: Logger,
): Promise<void> {
  await db.transaction(async (tx) => {
    for (const t of tables) {
      const fingerprint = await tableFingerprint(tx, schema, t);
      await tx.exec(
        `INSERT INTO ${stateTable(stateSchema, 'schema_events')} (seen_at, tbl, statement, fingerprint, binlog_file, binlog_pos)
         VALUES (UTC_TIMESTAMP(6), ?, ?, ?, ?, ?)`,
        [t, sql.length > MAX_STATEMENT ? sql.slice(0, MAX_STATEMENT) : sql, fingerprint, cp.position.file, cp.position.pos],
      );
    }
    await writeCheckpoint(tx, stateSchema, cp);
  });
  log.warn('a synced table was changed by DDL: apply the same change on every node', {
    tables,
    statement: sql.split(/\s+/, 2).join(' ').toUpperCase(),
  });
}
