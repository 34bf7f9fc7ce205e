// What capture asks the server about its binlog: where it ends now, which
// files it still has, and whether a position can still be read.
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { formatPosition, type BinlogPosition } from './position.js';

/** The end of the binlog now (SHOW MASTER STATUS) and the server's GTID position. */
export async function binlogEnd(db: Queryable): Promise<{ position: BinlogPosition; gtid: string }> {
  const rows = await db.query<{ File: string; Position: number | string }>('SHOW MASTER STATUS');
  const r = rows[0];
  if (!r) {
    throw new SpokesyncError('SPOKESYNC_E_PREFLIGHT', 'the server has no binary log (log_bin is off), so there is nothing to capture');
  }
  const gtid = await db.query<{ pos: string | null }>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
  return { position: { file: r.File, pos: Number(r.Position) }, gtid: gtid[0]?.pos ?? '' };
}

/** The binlog files the server still has, oldest first. */
export async function binlogFiles(db: Queryable): Promise<string[]> {
  const rows = await db.query<{ Log_name: string }>('SHOW BINARY LOGS');
  return rows.map((r) => r.Log_name);
}

export function purgedError(p: BinlogPosition, oldest: string | undefined, cause?: unknown): SpokesyncError {
  return new SpokesyncError(
    'SPOKESYNC_E_BINLOG_PURGED',
    `capture must resume at ${formatPosition(p)}, but that binlog file is no longer on the server` +
      (oldest ? ` (the oldest left is ${oldest})` : ''),
    cause === undefined ? undefined : { cause },
  );
}

/** SPOKESYNC_E_BINLOG_PURGED when the file of `p` is gone now (null when it is there, or the server cannot say). */
export async function purgedNow(db: Queryable, p: BinlogPosition, cause: unknown): Promise<SpokesyncError | null> {
  const files = await binlogFiles(db).catch(() => null);
  return files && !files.includes(p.file) ? purgedError(p, files[0], cause) : null;
}

/** Throws SPOKESYNC_E_BINLOG_PURGED when the file of `p` is gone. */
export async function assertReadable(db: Queryable, p: BinlogPosition): Promise<void> {
  const files = await binlogFiles(db);
  if (!files.includes(p.file)) throw purgedError(p, files[0]);
}

/** The server's error for a dump from a position it no longer has (ER_MASTER_FATAL_ERROR_READING_BINLOG). */
export function isPurgedError(e: unknown): boolean {
  const err = e as { errno?: number; code?: string; message?: string };
  return err.errno === 1236 || err.code === 'ER_MASTER_FATAL_ERROR_READING_BINLOG';
}
