// The node as `export` and `import` open it. With no daemon, they take the node
// lock and run capture themselves, as every one-shot command does. While the
// daemon (or another command) holds the node, they work beside it instead: its
// capture journals, and this process reads the journal, applies under the
// apply lock (one applier at a time for the node, apply/replay/applier.ts)
// and decides conflicts only once the daemon's capture has journaled every
// write before (daemon-capture.ts). The daemon serves its other peers meanwhile.
// Should the daemon stop while the command waits for it, the command takes the
// node and runs capture itself from there.
import { CATCH_UP_MS, SpokesyncNode } from '../node.js';
import type { Config } from '../config/types.js';
import { filterTables, syncedTables } from '../config/tables.js';
import { isSpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { loadCatalog } from '../../apply/core/catalog.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { NodeLock, nodeLockName } from '../node-lock.js';
import { DaemonGone, daemonCaughtUp } from './daemon-capture.js';
import type { UsbDeps } from './transfer.js';

/** change sets per take beside the daemon: its own applies wait at most this long for the apply lock */
const BESIDE_GROUP = 100;

export interface UsbNode {
  readonly node: SpokesyncNode;
  /** another process held the node and captured for it when the command started; this one applies and writes files beside it */
  readonly beside: boolean;
  readonly deps: UsbDeps;
  close(): Promise<void>;
}

/** Opens the node for a USB command (taking it, or beside the process that holds it), runs fn, closes it. */
export async function withUsbNode<T>(config: Config, log: Logger, fn: (u: UsbNode) => Promise<T>): Promise<T> {
  const u = await openUsbNode(config, log);
  try {
    return await fn(u);
  } finally {
    await u.close();
  }
}

async function openUsbNode(config: Config, log: Logger): Promise<UsbNode> {
  let own: SpokesyncNode | null = null;
  try {
    own = await SpokesyncNode.open(config, log);
  } catch (e) {
    if (!isSpokesyncError(e, 'SPOKESYNC_E_BUSY')) throw e;
  }
  if (own) {
    const node = own;
    try {
      await node.startCapture();
    } catch (e) {
      await node.close();
      throw e;
    }
    return { node, beside: false, deps: { ...node.usb(), caughtUp: () => node.capture.caughtUp(CATCH_UP_MS) }, close: () => node.close() };
  }
  log.info('another spokesync process (the daemon) holds this node: working beside it, with its capture');
  const { schema, stateSchema } = config.database;
  let daemonWait: (() => Promise<void>) | undefined;
  let taken: Promise<{ release(): Promise<void> } | null> | null = null;
  const waitFor = async (n: SpokesyncNode): Promise<void> => {
    daemonWait ??= daemonCaughtUp({
      db: n.db, schema, stateSchema, nodeLock: nodeLockName(stateSchema),
      // the tables capture journals now, and any that DDL may make sync meanwhile
      journals: (t) => n.tables.has(t) || filterTables([t], config.tables).length > 0,
    });
    for (;;) {
      if (taken && (await taken)) return n.capture.caughtUp(CATCH_UP_MS);
      try {
        return await daemonWait();
      } catch (e) {
        if (!(e instanceof DaemonGone)) throw e;
        // the daemon stopped: this command takes the node and runs capture itself from here, as with no daemon
        taken = takeOver(n);
      }
    }
  };
  /** The node lock, capture started; null when another process took the node first (its capture is waited for). */
  const takeOver = async (n: SpokesyncNode): Promise<{ release(): Promise<void> } | null> => {
    const lock = await NodeLock.take(n.db, stateSchema, config.node.id).catch((e: unknown) => {
      if (isSpokesyncError(e, 'SPOKESYNC_E_BUSY')) return null;
      throw e;
    });
    if (!lock) return null;
    log.warn('the daemon stopped: this command took the node and runs capture itself until it ends');
    await n.beginCapture();
    return lock;
  };
  const node = await SpokesyncNode.open(config, log, { lock: false, waitForCapture: waitFor });
  let ddlSeen: string | null = null;
  const refresh = async (): Promise<void> => {
    const [row] = await node.db.query<{ id: string | number | null }>(`SELECT MAX(id) AS id FROM ${stateTable(stateSchema, 'schema_events')}`);
    const mark = String(row?.id ?? 0);
    if (mark === ddlSeen) return;
    // first take, or DDL the daemon's capture recorded since: read the catalogue (again), as the daemon did
    const fresh = await loadCatalog(node.db, schema, { keys: config.tables.keys });
    node.applier.updateCatalog(fresh);
    node.tables.clear();
    for (const t of syncedTables(config, fresh)) node.tables.add(t);
    ddlSeen = mark;
  };
  return {
    node, beside: true,
    deps: { ...node.usb(), caughtUp: () => waitFor(node), groupRecords: BESIDE_GROUP, refresh },
    close: async () => {
      // capture stops before the node is free for a daemon again
      await node.capture.stop();
      await (await taken?.catch(() => null))?.release();
      await node.close();
    },
  };
}
