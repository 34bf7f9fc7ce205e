// The database of a command that works on the state schema alone (no capture,
// no node lock): a small pool, the state schema made or upgraded first.
import type { CommandContext } from '../cli/command.js';
import { connectDb, type Db } from '../../apply/core/db.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';

export async function withStateDb(ctx: CommandContext, fn: (db: Db) => Promise<number>): Promise<number> {
  const { host, port, user, password, stateSchema } = ctx.config.database;
  const db = await connectDb({ host, port, user, ...(password === undefined ? {} : { password }) }, { connectionLimit: 2 });
  try {
    await ensureStateSchema(db, stateSchema);
    return await fn(db);
  } finally {
    await db.close();
  }
}
