// The five-node, three-level tree of the fault test: root p; m under p with
// leaves l1 and l2; leaf l3 directly under p. Each node has its own throwaway
// MariaDB server (same schema, same seed rows) and its own daemon process; every
// child reaches its parent through a net-proxy link that faults can cut or stall.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import type { Cleanup } from '../../deploy/demo-support.js';
import { freePort, startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { startProxy, type NetProxy } from '../helpers/net-proxy.js';
import { Daemon } from './daemons.js';
import { sleep } from './rng.js';
import { SCHEMA, SCHEMA_SQL, TABLES, seedSql } from './schema.js';

export const SHAPE: ReadonlyArray<{ id: string; parent?: string }> = [
  { id: 'p' }, { id: 'm', parent: 'p' }, { id: 'l1', parent: 'm' }, { id: 'l2', parent: 'm' }, { id: 'l3', parent: 'p' },
];

export interface Site {
  readonly id: string;
  readonly index: number;
  readonly parent: string | undefined;
  readonly server: TestServer;
  /** the link to the parent (children only) */
  readonly link: NetProxy | undefined;
  readonly daemon: Daemon;
}

export interface TreeOptions {
  readonly dir: string;
  readonly cleanup: Cleanup;
  readonly say: (line: string) => void;
  /** how long the supervisor waits before restarting a daemon that exited on its own */
  readonly restartDelayMs: number;
}

function configText(o: {
  id: string; server: TestServer; listen?: number; children: Array<{ id: string; token: string }>;
  parent?: { url: string; token: string };
}): string {
  const lines = [
    `node: { id: ${o.id} }`,
    `database: { host: 127.0.0.1, port: ${o.server.port}, user: root, schema: ${SCHEMA}, serverId: ${o.server.serverId + 1} }`,
    `tables: { include: [${TABLES.join(', ')}] }`,
  ];
  if (o.listen !== undefined) lines.push(`listen: { host: 127.0.0.1, port: ${o.listen} }`);
  if (o.children.length > 0) lines.push('children:', ...o.children.map((c) => `  - { id: ${c.id}, token: "${c.token}" }`));
  if (o.parent) {
    lines.push(
      'parent:', `  url: ${o.parent.url}`, `  token: "${o.parent.token}"`, '  interval: 1s', '  timeout: 10s', '  maxTries: 3',
      '  compression: gzip', '  batch: { records: 50, bytes: 64KiB }',
    );
  }
  lines.push('capture: { memoryBytes: 16MiB }', 'log: { level: info }');
  return lines.join('\n') + '\n';
}

/** Resolves once the node's capture has its checkpoint: commits from then on are journaled. */
async function captureStarted(site: Site, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: site.server.port, user: 'root' }).catch(() => null);
    if (c) {
      try {
        const [rows] = await c.query('SELECT COUNT(*) AS n FROM spokesync.checkpoint WHERE id = 1');
        if (Number((rows as Array<{ n: number }>)[0]?.n) === 1) return;
      } catch { /* state schema not made yet */ } finally {
        c.destroy();
      }
    }
    if (!site.daemon.up && site.daemon.exits.length > 0) throw new Error(`${site.id}: the daemon exited at start (log: ${site.daemon.logFile})`);
    await sleep(200);
  }
  throw new Error(`${site.id}: capture did not start within ${timeoutMs / 1000} s (log: ${site.daemon.logFile})`);
}

export async function startTree(o: TreeOptions): Promise<Site[]> {
  o.say('starting five MariaDB servers (throwaway datadirs, binlog on) ...');
  const servers = await Promise.all(SHAPE.map(async (s) => {
    const server = await startServer();
    o.cleanup.add(`stop the ${s.id} server`, () => server.stop());
    await server.query(`CREATE DATABASE ${SCHEMA}; USE ${SCHEMA}; ${SCHEMA_SQL} ${seedSql()}`);
    return server;
  }));
  const listen = new Map<string, number>();
  for (const s of SHAPE) if (SHAPE.some((c) => c.parent === s.id)) listen.set(s.id, await freePort());
  const tokens = new Map(SHAPE.map((s) => [s.id, randomBytes(18).toString('base64url')]));
  const sites: Site[] = [];
  for (const [i, s] of SHAPE.entries()) {
    const server = servers[i]!;
    let link: NetProxy | undefined;
    if (s.parent) {
      const proxy = await startProxy({ target: { host: '127.0.0.1', port: listen.get(s.parent)! }, maxConnections: 32 });
      o.cleanup.add(`close the link ${s.id} → ${s.parent}`, () => proxy.close());
      link = proxy;
    }
    const children = SHAPE.filter((c) => c.parent === s.id).map((c) => ({ id: c.id, token: tokens.get(c.id)! }));
    const configFile = join(o.dir, `${s.id}.yaml`);
    await writeFile(configFile, configText({
      id: s.id, server, children,
      ...(listen.has(s.id) ? { listen: listen.get(s.id)! } : {}),
      ...(link ? { parent: { url: link.url, token: tokens.get(s.id)! } } : {}),
    }));
    const daemon = new Daemon(s.id, configFile, join(o.dir, `${s.id}.log`), o.restartDelayMs);
    o.cleanup.add(`stop the ${s.id} daemon`, () => daemon.stop());
    sites.push({ id: s.id, index: i + 1, parent: s.parent, server, link, daemon });
  }
  o.say('starting the five daemons (spokesync run, one process each) ...');
  for (const site of sites) site.daemon.start();
  await Promise.all(sites.map((s) => captureStarted(s)));
  return sites;
}
