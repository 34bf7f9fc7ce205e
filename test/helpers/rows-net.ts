// A parent and filtered children on the real OpenMRS schema for row filter
// tests: every node starts from the same base (OpenMRS, the two clinics), the
// parent's daemon then journals what is written there, and each child is
// opened with capture and its client.
import type { ChildConfig, Config } from '../../agent/config/types.js';
import { SpokesyncNode } from '../../agent/node.js';
import { openDb, type Db } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { dumpByIdentity, type Dump } from '../../deploy/sandbox/identity-dump.js';
import { freePort, loadOpenmrs, startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { SITE_TABLES, setupSites } from './openmrs-sites.js';

export interface RowsNode {
  readonly id: string;
  readonly server: TestServer;
  readonly config: Config;
  readonly node: SpokesyncNode;
  /** the application schema, over a pool of its own */
  readonly app: Db;
  dump(): Promise<Dump>;
  close(): Promise<void>;
}

export function rowsConfig(s: TestServer, id: string, over: Partial<Config>): Config {
  return {
    file: '/dev/null',
    node: { id },
    database: { host: s.host, port: s.port, user: 'root', schema: 'openmrs', stateSchema: 'spokesync', serverId: s.serverId + 1 },
    tables: { include: SITE_TABLES, exclude: [], keys: {}, direction: {} },
    children: [],
    capture: { memoryBytes: 32 << 20 },
    log: { level: 'info' },
    ...over,
  };
}

/** A server with OpenMRS and the clinics, no daemon yet. */
export async function openmrsServer(): Promise<TestServer> {
  const s = await startServer();
  try {
    await loadOpenmrs(s);
    await setupSites(s);
    return s;
  } catch (e) {
    await s.stop();
    throw e;
  }
}

/** Opens the node (capture caught up, server started when it listens). */
export async function openRowsNode(s: TestServer, config: Config): Promise<RowsNode> {
  // membership is scanned whenever a child's route reaches the end of the journal
  const node = await SpokesyncNode.open(config, silentLogger, { backoffBaseMs: 20, backoffMaxMs: 50, rowScanMs: 0 });
  await node.startCapture();
  await node.startServer();
  const app = openDb({ host: s.host, port: s.port, user: 'root', schema: 'openmrs' });
  return {
    id: config.node.id, server: s, config, node, app,
    dump: () => dumpByIdentity(node.db, 'openmrs', SITE_TABLES),
    close: async () => { await node.close(); await app.close(); },
  };
}

export async function rowsParent(s: TestServer, children: ChildConfig[]): Promise<RowsNode> {
  return openRowsNode(s, rowsConfig(s, 'kigali', {
    listen: { host: '127.0.0.1', port: await freePort(), maxBodyBytes: 8 << 20, maxInflatedBytes: 64 << 20 },
    children,
  }));
}

export function childConfig(s: TestServer, id: string, parent: RowsNode, token: string, url?: string): Config {
  return rowsConfig(s, id, {
    parent: {
      url: url ?? `http://127.0.0.1:${parent.config.listen!.port}`, token, interval: 1000, timeout: 20_000, maxTries: 3,
      compression: 'gzip', batch: { records: 20, bytes: 64 * 1024 },
    },
  });
}

/** Every identity of every synced table in a dump. */
export function identities(d: Dump): Set<string> {
  return new Set(Object.values(d).flatMap((rows) => Object.keys(rows)));
}
