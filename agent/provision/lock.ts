// The node lock: one process at a time runs capture or apply for a node. It is
// the same named lock SpokesyncNode takes (agent/node.ts), so a clone refuses
// to run under a live daemon and a daemon refuses to start during a clone.
import type { Db } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';

export const nodeLockName = (stateSchema: string): string => `spokesync:${stateSchema}`;

/** Takes the node lock on a dedicated connection; SPOKESYNC_E_BUSY when another process holds it. */
export async function takeNodeLock(db: Db, stateSchema: string, node: string): Promise<{ release(): Promise<void> }> {
  const conn = await db.connection();
  try {
    const [got] = await conn.query<{ ok: number | string | null }>('SELECT GET_LOCK(?, 0) AS ok', [nodeLockName(stateSchema)]);
    if (Number(got?.ok) !== 1) {
      throw new SpokesyncError('SPOKESYNC_E_BUSY', `node ${node} (state schema ${stateSchema}) is in use by another spokesync process`);
    }
  } catch (e) {
    conn.release();
    throw e;
  }
  return {
    async release() {
      await conn.query('SELECT RELEASE_LOCK(?)', [nodeLockName(stateSchema)]).catch(() => undefined);
      conn.release();
    },
  };
}
