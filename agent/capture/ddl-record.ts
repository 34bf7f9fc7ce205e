// Records DDL on synced tables in schema_events, with the checkpoint past it,
// in one transaction.
import type { Db } from '../../apply/core/db.js';
import type { Logger } from '../../apply/core/log.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { Assembled } from './assembler.js';
import { ddlTables, tableFingerprint } from './ddl.js';
import { writeCheckpoint, type Checkpoint } from '../journal/writer.js';

const MAX_STATEMENT = 60_000;

/** The synced tables a logged statement changes by DDL ([] for anything else). */
export function syncedDdlTables(item: Extract<Assembled, { kind: 'statement' }>, schema: string, synced: ReadonlySet<string>): string[] {
  return ddlTables(item.sql, item.schema, schema).filter((t) => synced.has(t));
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
