// `spokesync clone`: provisions this node from its parent's snapshot, over
// HTTP or from a file, and sets capture and the cursors so sync starts exactly
// where the snapshot ends. Over data whose changes the parent has not all
// acknowledged it is refused unless --discard-local (provision/rails.ts).
import { access } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { CommandContext, CommandSpec } from '../cli/command.js';
import { formatPosition } from '../capture/position.js';
import { connectDb, type Db } from '../../apply/core/db.js';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';
import { readCheckpoint } from '../journal/writer.js';
import { withNode } from '../node.js';
import { fetchSnapshot } from '../provision/http.js';
import { cloneSnapshot, cloneUnfinished } from '../provision/load.js';
import { openSnapshotFile } from '../provision/sealed.js';
import { routeTo } from '../routing/filters.js';

/**
 * Before a clone replaces data this node has captured from, capture catches up,
 * so that changes committed while the daemon was stopped are journaled and
 * counted among those the parent has not acknowledged. The node lock is taken
 * for it: a running daemon makes the clone fail with SPOKESYNC_E_BUSY.
 */
async function journalBacklog(ctx: CommandContext, db: Db): Promise<void> {
  const { config, log } = ctx;
  const { schema, stateSchema } = config.database;
  await ensureStateSchema(db, stateSchema);
  const [row] = await db.query<{ n: string | number }>('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [schema]);
  // never captured, nothing to replace, or a half-loaded schema (nothing of it was ever captured)
  if (!(await readCheckpoint(db, stateSchema)) || Number(row?.n ?? 0) === 0 || (await cloneUnfinished(db, stateSchema))) return;
  try {
    await withNode(config, log, (node) => node.startCapture());
  } catch (e) {
    if (isSpokesyncError(e, 'SPOKESYNC_E_BUSY') || ctx.options['discard-local'] !== true) throw e;
    log.warn('capture could not catch up before the clone: changes committed since it last ran are not counted among those thrown away', {
      code: isSpokesyncError(e) ? e.code : undefined, error: (e as Error).message,
    });
  }
}

export const command: CommandSpec = {
  name: 'clone',
  summary: "Load the parent's snapshot into this node's empty application schema (provisioning)",
  description:
    'Without --from, asks the parent (parent.url, parent.token) for a snapshot over HTTP and loads it ' +
    'as it arrives; with --from, loads a file made on the parent with `spokesync snapshot --peer <this ' +
    'node> --out FILE`, which is sealed for this node: it opens only with parent.token, and all of it is ' +
    'authenticated before anything is dropped or loaded (a changed, cut, or foreign file is refused with ' +
    'SPOKESYNC_E_SNAPSHOT and the schema is left as it was). ' +
    'The load is not written to the binlog (SET sql_log_bin = 0: the spokesync user needs BINLOG ADMIN, or SUPER before MariaDB 10.5.2), so it is never sent back as changes; capture ' +
    'starts after it. An application schema that already has tables is refused unless --force, which ' +
    'drops it first. An interrupted clone is started over by running clone again (no --force needed); ' +
    'the clone counts as done only once the whole snapshot has loaded and its checksum matched. A clone ' +
    'that fails once loading has begun empties the application schema again. ' +
    'Stop the daemon of this node first, and the application using the database.\n\n' +
    'Re-provisioning: with --force, capture first catches up (changes committed while the daemon was stopped are ' +
    'journaled), and a clone over change sets the parent has not acknowledged yet is refused with ' +
    'SPOKESYNC_E_WOULD_LOSE (exit 1), saying how many: send them first with `spokesync sync` (or `spokesync export`), ' +
    'or pass --discard-local to throw them away (recorded with the count, shown by `spokesync status`). Over HTTP, ' +
    '--force also tells the parent to re-provision this node although it has exchanged with it before (the parent ' +
    'refuses that otherwise, and records it).',
  options: {
    from: { type: 'string', arg: 'FILE', help: 'load this snapshot file (made for this node, opened with parent.token) instead of asking the parent' },
    force: { type: 'boolean', help: 'drop a non-empty application schema and replace it (re-provisioning)' },
    'discard-local': { type: 'boolean', help: 'with --force: throw away change sets the parent has not acknowledged yet (recorded as a loss)' },
  },
  needsConfig: true,
  async run(ctx) {
    const { config, log, signal } = ctx;
    const from = typeof ctx.options.from === 'string' ? ctx.options.from : undefined;
    const parent = config.parent;
    if (!parent) {
      throw new SpokesyncError('SPOKESYNC_E_USAGE', 'this node has no parent section in its config: clone needs parent.token ' +
        '(the token the parent lists for this node) to fetch a snapshot or to open a snapshot file');
    }
    if (from !== undefined) {
      await access(from).catch((e: unknown) => {
        throw new SpokesyncError('SPOKESYNC_E_USAGE', `cannot read the snapshot file ${from}`, { cause: e });
      });
    }
    const force = ctx.options.force === true;
    const { host, port, user, password, schema, stateSchema } = config.database;
    const db = await connectDb({ host, port, user, ...(password === undefined ? {} : { password }) }, { connectionLimit: 3 });
    let input: Readable | undefined;
    const stop = (): void => {
      input?.destroy(new SpokesyncError('SPOKESYNC_E_SNAPSHOT', 'stopped by a signal'));
    };
    signal.addEventListener('abort', stop, { once: true });
    try {
      if (force) await journalBacklog(ctx, db);
      const r = await cloneSnapshot(
        {
          db, schema, stateSchema, node: config.node.id, log, force,
          discardLocal: ctx.options['discard-local'] === true, toParent: (p) => routeTo(config, p, 'parent'),
        },
        async () => {
          input = from !== undefined
            ? await openSnapshotFile(from, { node: config.node.id, token: parent.token }, { log, signal })
            : await fetchSnapshot(parent, signal, { force });
          return input;
        },
      );
      ctx.out(`cloned ${r.tables} tables, ${r.rows} rows (${(r.bytes / 1e6).toFixed(1)} MB) from ${r.parent} ` +
        `in ${r.seconds.toFixed(1)} s; the snapshot is at ${formatPosition(r.position)}, journal seq ${r.journalSeq}`);
      return 0;
    } finally {
      signal.removeEventListener('abort', stop);
      await db.close();
    }
  },
};
