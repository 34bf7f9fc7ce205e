// A comparison of this node with its parent as the commands run it: the node
// opened beside or without the daemon, capture caught up so that every local
// commit is journaled (and so known to be in flight), this node's side and the
// parent's over HTTP, and the result with the bytes it moved.
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import got from 'got';
import type { BinlogPosition } from '../capture/position.js';
import { stat } from 'node:fs/promises';
import type { Catalog } from '../../apply/core/catalog.js';
import { childFilters } from '../rows/child.js';
import { childTables, syncedTables } from '../config/tables.js';
import type { Config } from '../config/types.js';
import { parentRequestOptions } from '../exchange/parent-http.js';
import { PEER_PATH } from '../exchange/protocol.js';
import { CATCH_UP_MS, SpokesyncNode } from '../node.js';
import { viaCheckpoint } from '../provision/cursor.js';
import { compareSides, type Comparison } from './compare.js';
import { FileSide, filePeer, writeVerifyFile } from './file.js';
import { RemoteSide, type Traffic } from './verify-http.js';
import { LocalSide } from './side.js';

export interface Session {
  readonly node: SpokesyncNode;
  /** this node runs capture itself (no daemon was running) */
  readonly ownCapture: boolean;
  /** resolves once every commit made so far is journaled */
  caughtUp(): Promise<void>;
}

/**
 * Opens the node for a one-shot command that runs beside the daemon when there is one:
 * with the node lock and capture of its own when no daemon runs, without them otherwise.
 */
export async function openSession(config: Config, log: Logger): Promise<Session> {
  let node: SpokesyncNode;
  try {
    node = await SpokesyncNode.open(config, log);
  } catch (e) {
    if (!isSpokesyncError(e, 'SPOKESYNC_E_BUSY')) throw e;
    node = await SpokesyncNode.open(config, log, { lock: false });
    log.info('the daemon is running on this node: its capture journals what this command writes');
    const wait = viaCheckpoint(node.db, config.database.stateSchema, { pollMs: 200 });
    return {
      node, ownCapture: false,
      caughtUp: async () => wait(await binlogEnd(node), async () => undefined),
    };
  }
  try {
    await node.startCapture();
  } catch (e) {
    await node.close();
    throw e;
  }
  return { node, ownCapture: true, caughtUp: () => node.capture.caughtUp(CATCH_UP_MS) };
}

async function binlogEnd(node: SpokesyncNode): Promise<BinlogPosition> {
  const [st] = await node.db.query<{ File: string; Position: string | number }>('SHOW MASTER STATUS');
  if (!st) throw new SpokesyncError('SPOKESYNC_E_PREFLIGHT', 'the server reports no binlog position: is log_bin on?');
  return { file: st.File, pos: Number(st.Position) };
}

/** The parent's node id: as learned at the first exchange, else asked now. */
export async function parentIdOf(node: SpokesyncNode): Promise<string> {
  const parent = node.config.parent;
  if (!parent) throw new SpokesyncError('SPOKESYNC_E_USAGE', 'this node has no parent in its config: a parent compares itself with a child only by file (--in)');
  const known = await node.parentId();
  if (known) return known;
  const res = await got(`${parent.url.replace(/\/+$/, '')}${PEER_PATH}`, {
    ...parentRequestOptions(parent), timeout: { request: parent.timeout }, responseType: 'text',
  }).catch((e: unknown) => {
    throw new SpokesyncError('SPOKESYNC_E_HTTP', `cannot reach the parent (${(e as { code?: string }).code ?? (e as Error).message})`, { cause: e });
  });
  const id = res.statusCode === 200 ? (JSON.parse(res.body) as { node?: unknown }).node : undefined;
  if (typeof id !== 'string') throw new SpokesyncError('SPOKESYNC_E_HTTP', `the parent answered ${res.statusCode} when asked its name`);
  return id;
}

export interface Compared {
  readonly peer: string;
  readonly comparison: Comparison;
  readonly traffic: Traffic;
  readonly seconds: number;
  readonly local: LocalSide;
}

export interface ParentComparison extends Compared {
  readonly remote: RemoteSide;
}

/** Compares this node's synced tables with the parent's, over the exchange endpoint. */
export async function compareWithParent(s: Session, opts: { peer?: string; signal?: AbortSignal }): Promise<ParentComparison> {
  const { node } = s;
  const config = node.config;
  const started = Date.now();
  const peer = await parentIdOf(node);
  if (opts.peer !== undefined && opts.peer !== peer) {
    throw new SpokesyncError('SPOKESYNC_E_USAGE', `--peer ${opts.peer}: over the network this node compares itself with its parent, ${peer}; ` +
      'compare with a child by file (`spokesync verify --out` at the child, `--in` here)');
  }
  const catalog = node.applier.currentCatalog();
  const local = new LocalSide({
    db: node.db, stateSchema: config.database.stateSchema, peer,
    catalog: async () => node.applier.currentCatalog(),
    tables: (c) => new Set(tablesWith(config, c, peer)),
    caughtUp: () => s.caughtUp(),
  });
  const remote = new RemoteSide(config.parent!, node.log, opts.signal);
  const tables = tablesWith(config, catalog, peer);
  const comparison = await compareSides(local, remote, tables, catalog);
  return { peer, comparison, traffic: remote.traffic, seconds: (Date.now() - started) / 1000, local, remote };
}

/** The tables this node compares with `peer`: synced here (toward a child, through its filter), with an identity. */
export function tablesWith(config: Config, catalog: Catalog, peer: string): string[] {
  const child = config.children.some((c) => c.id === peer);
  return (child ? childTables(config, peer, catalog) : syncedTables(config, catalog)).filter((t) => catalog.table(t).identity !== null);
}

/** Writes this node's checksums for `peer` (a child, or the parent by default) to a sealed file. */
export async function writeChecksums(s: Session, path: string, peerId?: string): Promise<{ peer: string; tables: number; rows: number; bytes: number }> {
  const { node } = s;
  const config = node.config;
  const peer = filePeer(config, await node.parentId(), peerId);
  await s.caughtUp();
  const catalog = node.applier.currentCatalog();
  const { host, port, user, password } = config.database;
  const child = config.children.find((c) => c.id === peer.id);
  const r = await writeVerifyFile({
    settings: { host, port, user, ...(password === undefined ? {} : { password }) }, db: node.db, catalog,
    tables: tablesWith(config, catalog, peer.id), stateSchema: config.database.stateSchema, node: node.id, peer,
    subset: child ? childFilters(config, child, catalog) : null,
  }, path);
  return { peer: peer.id, ...r };
}

/** Compares this node with the checksums a peer wrote for it; the bytes moved are the file's. */
export async function compareWithFile(s: Session, path: string, peerId?: string): Promise<Compared & { createdAt: string }> {
  const { node } = s;
  const config = node.config;
  const started = Date.now();
  const catalog = node.applier.currentCatalog();
  const knownParent = await node.parentId();
  const there = await FileSide.load(node.db, config.database.stateSchema, path, node.id, catalog, (sender) => filePeer(config, knownParent, sender));
  try {
    if (peerId !== undefined && peerId !== there.sender) {
      throw new SpokesyncError('SPOKESYNC_E_USAGE', `--peer ${peerId}: the file was written by ${there.sender}`);
    }
    // a filtered child is compared on its subset (through sessions in the application schema: its rules name tables so)
    const child = config.children.find((c) => c.id === there.sender && c.rows !== undefined);
    const local = new LocalSide({
      db: child ? node.rows.appDb() : node.db, stateSchema: config.database.stateSchema, peer: there.sender,
      catalog: async () => node.applier.currentCatalog(),
      tables: (c) => new Set(tablesWith(config, c, there.sender)),
      caughtUp: () => s.caughtUp(),
      ...(child ? { subset: (c: Catalog) => childFilters(config, child, c) } : {}),
    });
    const comparison = await compareSides(local, there, tablesWith(config, catalog, there.sender), catalog);
    const bytes = (await stat(path)).size;
    return { peer: there.sender, comparison, traffic: { sent: 0, received: bytes }, seconds: (Date.now() - started) / 1000, local, createdAt: there.createdAt };
  } finally {
    await there.close();
  }
}
