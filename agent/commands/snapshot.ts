// `spokesync snapshot`: a consistent snapshot of the application schema for a
// new child, written to a file (for a USB stick or a large database) sealed for
// that child (provision/sealed.ts), with the child's cursor on this node
// started at the snapshot. A child that has exchanged before, or has change
// sets pending, would miss them: refused unless --force (provision/rails.ts).
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { CommandContext, CommandSpec } from '../cli/command.js';
import { createCheckpoint, readCheckpoint } from '../journal/writer.js';
import { formatPosition } from '../capture/position.js';
import type { Config } from '../config/types.js';
import { connectDb } from '../../apply/core/db.js';
import type { ChildConfig } from '../config/types.js';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import { SpokesyncNode } from '../node.js';
import { viaCapture, viaCheckpoint, type WaitForCapture } from '../provision/cursor.js';
import { writeSnapshot, type SnapshotResult } from '../provision/snapshot-writer.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';
import { checkSnapshot, operatorName, type SnapshotRails } from '../provision/rails.js';
import { childFilters } from '../rows/child.js';
import { routeTo } from '../routing/filters.js';

/** The child named by --peer: the file is sealed with its token, so it is never guessed. */
function childOf(config: Config, peer: string): ChildConfig {
  const child = config.children.find((c) => c.id === peer);
  if (!child) {
    const ids = config.children.map((c) => c.id);
    throw new SpokesyncError('SPOKESYNC_E_USAGE', ids.length === 0
      ? `--peer ${peer}: this node has no children in its config: add the new child (id and token) under \`children\` first`
      : `--peer ${peer} is not one of this node's children (${ids.join(', ')})`);
  }
  return child;
}

async function writeFileSnapshot(ctx: CommandContext, peer: ChildConfig, file: string, wait: WaitForCapture, db: Parameters<typeof writeSnapshot>[0]['db']): Promise<SnapshotResult> {
  const { config, log } = ctx;
  const rails: SnapshotRails = { route: routeTo(config, peer.id, 'child'), force: ctx.options.force === true, via: 'file', by: operatorName() };
  // refused before minutes of reading; checked again when the cursor moves
  await checkSnapshot(db, config.database.stateSchema, config.node.id, rails);
  const { host, port, user, password, schema, stateSchema } = config.database;
  const partial = `${file}.partial`;
  // patient data: readable by the owner only, even sealed
  const out = createWriteStream(partial, { mode: 0o600 });
  const stop = (): void => {
    out.destroy(new SpokesyncError('SPOKESYNC_E_SNAPSHOT', 'stopped by a signal'));
  };
  ctx.signal.addEventListener('abort', stop, { once: true });
  try {
    const r = await writeSnapshot({
      settings: { host, port, user, ...(password === undefined ? {} : { password }) },
      db, schema, stateSchema, node: config.node.id, log, waitForCapture: wait, sealWith: peer.token, rails,
      subset: (cat) => childFilters(config, peer, cat, true),
    }, peer.id, out);
    const fh = await open(partial, 'r');
    await fh.sync();
    await fh.close();
    await rename(partial, file);
    return r;
  } catch (e) {
    await rm(partial, { force: true });
    throw e;
  } finally {
    ctx.signal.removeEventListener('abort', stop);
  }
}

export const command: CommandSpec = {
  name: 'snapshot',
  summary: 'Write a consistent snapshot of the application schema for a new child (provisioning)',
  description:
    'Reads every table of database.schema (structure and data; the state schema is left out) in one ' +
    'consistent transaction without locking tables, together with the binlog position it corresponds ' +
    'to, and writes it to FILE (gzip, then encrypted and authenticated like USB files with the token of ' +
    'the child named by --peer, so only that child can read it and a changed or cut file is refused; ' +
    'FILE.partial until complete, then renamed). When capture has ' +
    'journaled up to that position, the cursor of the child on this node is set there: that child ' +
    'receives exactly the changes made after the snapshot. If the daemon is running, capture is its; ' +
    'otherwise this command runs capture itself until it has passed the snapshot. ' +
    'Load the file on that child with `spokesync clone --from FILE` (it opens it with its parent.token). ' +
    'A child with a network link can ' +
    'instead run `spokesync clone` alone, which fetches the snapshot from the daemon over HTTP.\n\n' +
    'Re-provisioning: moving the cursor of a child that has exchanged with this node before, or that has change sets ' +
    'pending here, makes that child miss them unless it loads this snapshot. Such a snapshot is refused with ' +
    'SPOKESYNC_E_WOULD_LOSE (exit 1), saying how many change sets the child would miss, unless --force; a forced ' +
    'snapshot is recorded with the count (shown by `spokesync status`), and the child must then be re-cloned from ' +
    'it (`spokesync clone --from FILE --force`). Let the child send its own changes first.',
  options: {
    peer: {
      type: 'string', arg: 'ID', required: true,
      help: 'the child the snapshot is for, as listed under children: the file is sealed with its token',
    },
    out: { type: 'string', arg: 'FILE', required: true, help: 'the snapshot file to write' },
    force: {
      type: 'boolean',
      help: 'also for a child that has exchanged before or has change sets pending: it misses them unless re-cloned from this file (the loss is recorded)',
    },
  },
  needsConfig: true,
  async run(ctx) {
    const { config, log } = ctx;
    const peer = childOf(config, String(ctx.options.peer));
    const file = String(ctx.options.out);
    let result: SnapshotResult;
    let node: SpokesyncNode | undefined;
    try {
      node = await SpokesyncNode.open(config, log);
    } catch (e) {
      if (!isSpokesyncError(e, 'SPOKESYNC_E_BUSY')) throw e;
    }
    if (node) {
      // No daemon: capture runs here until it has passed the snapshot. A node that
      // has never captured starts at the snapshot position itself.
      const n = node;
      try {
        const { stateSchema } = config.database;
        if (await readCheckpoint(n.db, stateSchema)) await n.capture.start();
        const wait: WaitForCapture = async (pos, keepAlive) => {
          if (await createCheckpoint(n.db, stateSchema, { position: pos, gtid: '', hlc: '0' })) {
            log.info('capture starts at the snapshot position', { position: formatPosition(pos) });
          }
          await n.capture.start();
          await viaCapture(n.capture)(pos, keepAlive);
        };
        result = await writeFileSnapshot(ctx, peer, file, wait, n.db);
      } finally {
        await n.close();
      }
    } else {
      log.info('the daemon is running on this node: waiting for its capture');
      const { host, port, user, password, stateSchema } = config.database;
      const db = await connectDb({ host, port, user, ...(password === undefined ? {} : { password }) });
      try {
        await ensureStateSchema(db, stateSchema);
        result = await writeFileSnapshot(ctx, peer, file, viaCheckpoint(db, stateSchema), db);
      } finally {
        await db.close();
      }
    }
    ctx.out(`wrote a snapshot for ${peer.id} to ${file} (sealed with its token): ${result.tables} tables, ${result.rows} rows, ` +
      `${(result.bytes / 1e6).toFixed(1)} MB uncompressed in ${result.seconds.toFixed(1)} s ` +
      `(binlog ${formatPosition(result.position)}, journal seq ${result.journalSeq})`);
    return 0;
  },
};
