// A network of real spokesync nodes for end-to-end tests: one throwaway MariaDB
// server per node, the same small application schema on each (children start
// as clones), capture and apply running, servers on loopback.
import type { AdminConfig, ChildConfig, Config, ParentConfig } from '../../agent/config/types.js';
import { openDb, qid } from '../../apply/core/db.js';
import { silentLogger, type Logger } from '../../apply/core/log.js';
import { SpokesyncNode } from '../../agent/node.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dumpSchemas, freePort, loadSql, startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { dumpByIdentity, type Dump } from '../../deploy/sandbox/identity-dump.js';

export const APP = 'app';
export const SYNCED = ['person', 'visit', 'patient', 'setting'];

export const APP_SQL = `
CREATE TABLE person (
  person_id INT AUTO_INCREMENT PRIMARY KEY,
  uuid CHAR(38) NOT NULL UNIQUE,
  name VARCHAR(100) NOT NULL,
  gender CHAR(1) NULL,
  born DATETIME(6) NULL,
  photo BLOB NULL,
  changed_at DATETIME NULL
) ENGINE=InnoDB;
CREATE TABLE visit (
  visit_id INT AUTO_INCREMENT PRIMARY KEY,
  uuid CHAR(38) NOT NULL UNIQUE,
  person_id INT NOT NULL,
  note TEXT NULL,
  weight DECIMAL(6,2) NULL,
  FOREIGN KEY (person_id) REFERENCES person (person_id)
) ENGINE=InnoDB;
CREATE TABLE patient (
  patient_id INT NOT NULL PRIMARY KEY,
  allergy VARCHAR(100) NULL,
  FOREIGN KEY (patient_id) REFERENCES person (person_id)
) ENGINE=InnoDB;
CREATE TABLE setting (
  property VARCHAR(100) NOT NULL PRIMARY KEY,
  value TEXT NULL
) ENGINE=InnoDB;
CREATE TABLE scratch (
  id INT AUTO_INCREMENT PRIMARY KEY,
  uuid CHAR(38) NOT NULL UNIQUE,
  v VARCHAR(10)
) ENGINE=InnoDB;`;

export interface NetNode {
  readonly id: string;
  readonly server: TestServer;
  readonly config: Config;
  /** the node opened in this process (capture and server running); throws while paused */
  readonly node: SpokesyncNode;
  /** closes the in-process node, so a command (its own process or runCli) can take the node */
  pause(): Promise<void>;
  /** opens it again, capture and server started */
  resume(): Promise<void>;
  /** writes this node's config as a file the CLI loads; returns its path */
  writeConfig(dir: string): Promise<string>;
  /** SQL on this node's application schema */
  sql(statement: string, params?: unknown[]): Promise<unknown>;
  dump(): Promise<Dump>;
  /** change ids in this node's ledger */
  ledger(): Promise<string[]>;
  /** change ids this node originated (its own journal rows) */
  own(): Promise<string[]>;
  /** where its admin endpoints are served (admin.listen, else listen); null when neither */
  readonly adminUrl: string | null;
}

export interface NodeSpec {
  readonly id: string;
  /** serve children on a free loopback port */
  readonly listen?: boolean;
  readonly children?: readonly ChildConfig[];
  readonly parent?: Partial<ParentConfig> & { url: string; token: string };
  readonly direction?: Config['tables']['direction'];
  readonly log?: Logger;
  /** admin.token and admin.alerts.silentAfter (ms); listen: serve them on a free loopback port of their own (admin.listen) */
  readonly admin?: { readonly token?: string; readonly silentAfter?: number; readonly listen?: boolean };
  /** connect as an account with the grants of mysql-conf/grants.sql and no BINLOG ADMIN (capture's own writes are then binlogged) */
  readonly lowPrivilege?: boolean;
}

/** The account of mysql-conf/grants.sql, without BINLOG ADMIN, on a test server. */
async function lowPrivilegeUser(server: TestServer): Promise<{ user: string; password: string }> {
  await server.query(`CREATE USER spokesync@'%' IDENTIFIED BY 'low-privilege-pw';
    GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO spokesync@'%';
    GRANT SELECT, INSERT, UPDATE, DELETE ON ${APP}.* TO spokesync@'%';
    GRANT ALL PRIVILEGES ON spokesync.* TO spokesync@'%';`);
  return { user: 'spokesync', password: 'low-privilege-pw' };
}

export async function startNode(spec: NodeSpec): Promise<NetNode> {
  const server = await startServer();
  try {
    await server.query(`CREATE DATABASE ${APP}; USE ${APP}; ${APP_SQL}`);
    const parent: ParentConfig | undefined = spec.parent && {
      interval: 1000, timeout: 10_000, maxTries: 8, compression: 'gzip', batch: { records: 50, bytes: 64 * 1024 },
      ...spec.parent,
    };
    const account = spec.lowPrivilege ? await lowPrivilegeUser(server) : { user: 'root' };
    const admin: AdminConfig | undefined = spec.admin && {
      ...(spec.admin.listen ? { listen: { host: '127.0.0.1', port: await freePort() } } : {}),
      ...(spec.admin.token === undefined ? {} : { token: spec.admin.token }),
      alerts: { silentAfter: spec.admin.silentAfter ?? 86_400_000 },
    };
    const config: Config = {
      file: '/dev/null',
      node: { id: spec.id },
      database: { host: server.host, port: server.port, ...account, schema: APP, stateSchema: 'spokesync', serverId: server.serverId + 1 },
      tables: { include: SYNCED, exclude: [], keys: {}, direction: spec.direction ?? {} },
      children: spec.children ?? [],
      ...(spec.listen
        ? { listen: { host: '127.0.0.1', port: await freePort(), maxBodyBytes: 8 << 20, maxInflatedBytes: 64 << 20 } }
        : {}),
      ...(parent ? { parent } : {}),
      capture: { memoryBytes: 32 << 20 },
      ...(admin ? { admin } : {}),
      log: { level: 'info' },
    };
    return await netNode(spec, server, config);
  } catch (e) {
    await server.stop();
    throw e;
  }
}

/** A node of the network on `server` with `config`, opened (capture and server started). */
export async function netNode(spec: NodeSpec, server: TestServer, config: Config): Promise<NetNode> {
  const open = async (): Promise<SpokesyncNode> => {
    const n = await SpokesyncNode.open(config, spec.log ?? silentLogger, {
      backoffBaseMs: 20,
      backoffMaxMs: 50,
    });
    await n.startCapture();
    await n.startServer();
    return n;
  };
  const ss = config.database.stateSchema;
  const adminAt = config.admin?.listen ?? config.listen;
  let current: SpokesyncNode | null = await open();
  const live = (): SpokesyncNode => {
    if (!current) throw new Error(`node ${spec.id} is paused`);
    return current;
  };
  return {
    id: spec.id,
    server,
    config,
    get node() { return live(); },
    pause: async () => { await current?.close(); current = null; },
    resume: async () => { current ??= await open(); },
    writeConfig: async (dir) => {
      const file = join(dir, `${spec.id}.yaml`);
      await writeFile(file, configText(config));
      return file;
    },
    adminUrl: adminAt ? `http://127.0.0.1:${adminAt.port}` : null,
    sql: async (statement, params) => server.query(`USE ${APP}; ${statement}`, params),
    dump: () => dumpByIdentity(live().db, APP, SYNCED),
    ledger: async () => (await live().db.query<{ change_id: string }>(`SELECT change_id FROM ${stateTable(ss, 'ledger')} ORDER BY change_id`)).map((r) => r.change_id),
    own: async () => (await live().db.query<{ change_id: string }>(
      `SELECT change_id FROM ${stateTable(ss, 'journal')} WHERE from_peer IS NULL ORDER BY change_id`,
    )).map((r) => r.change_id),
  };
}

export async function stopNode(n: NetNode): Promise<void> {
  await n.pause().catch(() => undefined);
  await n.server.stop();
}

/** A backup of the node's two schemas (application and state), as an operator takes one with mariadb-dump. */
export async function backupNode(n: NetNode): Promise<Buffer> {
  return dumpSchemas(n.server, [APP, n.config.database.stateSchema]);
}

/**
 * The node's disk dies: its server is gone. A new server (the same server_id,
 * as the same my.cnf gives it) gets the backup loaded with the mariadb client,
 * and the node is opened on it, capture started. `sameServer`: the backup is
 * loaded into the node's own server instead, its binlog kept.
 */
export async function restoreNode(n: NetNode, spec: NodeSpec, backup: Buffer, opts: { sameServer?: boolean } = {}): Promise<NetNode> {
  if (opts.sameServer) {
    await n.pause();
    await loadSql(n.server, backup);
    return netNode(spec, n.server, n.config);
  }
  await stopNode(n);
  const server = await startServer({ serverId: n.server.serverId });
  try {
    await loadSql(server, backup);
    return await netNode(spec, server, { ...n.config, database: { ...n.config.database, host: server.host, port: server.port } });
  } catch (e) {
    await server.stop();
    throw e;
  }
}

/** Every node's capture has journaled every commit so far. */
export async function allCaughtUp(nodes: readonly NetNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.node.capture.caughtUp(60_000)));
}

/**
 * Syncs the children (in the order given, deepest first) until a whole pass
 * moves nothing. Returns the number of passes.
 */
export async function settle(all: readonly NetNode[], children: readonly NetNode[], maxPasses = 12): Promise<number> {
  for (let pass = 1; pass <= maxPasses; pass++) {
    let moved = 0;
    for (const c of children) {
      await allCaughtUp(all);
      const r = await c.node.syncWithParent();
      moved += r.sent + r.received;
    }
    if (moved === 0) return pass;
  }
  throw new Error(`the network did not settle in ${maxPasses} passes`);
}

/** The synced tables of a node's server by identity, over a connection of its own (for nodes whose daemon runs as a process). */
export async function dumpServer(server: TestServer): Promise<Dump> {
  const db = openDb({ host: server.host, port: server.port, user: 'root' });
  try {
    return await dumpByIdentity(db, APP, SYNCED);
  } finally {
    await db.close();
  }
}

export const uuid = (prefix: string, n: number): string =>
  `${prefix}-${String(n).padStart(4, '0')}-0000-0000-000000000000`.slice(0, 36);

export { qid };

/** The config as a file the loader reads (JSON is YAML; durations need their unit). */
export function configText(c: Config): string {
  const doc = {
    node: c.node,
    database: c.database,
    tables: { include: c.tables.include, exclude: c.tables.exclude, direction: c.tables.direction },
    ...(c.listen ? { listen: { host: c.listen.host, port: c.listen.port } } : {}),
    children: c.children,
    ...(c.parent
      ? {
          parent: {
            ...c.parent,
            interval: `${c.parent.interval}ms`,
            timeout: `${c.parent.timeout}ms`,
          },
        }
      : {}),
    ...(c.admin
      ? {
          admin: {
            ...(c.admin.listen ? { listen: `${c.admin.listen.host}:${c.admin.listen.port}` } : {}),
            ...(c.admin.token === undefined ? {} : { token: c.admin.token }),
            alerts: { silentAfter: `${c.admin.alerts.silentAfter}ms` },
          },
        }
      : {}),
    log: { level: 'info' },
  };
  return JSON.stringify(doc, null, 2);
}

/** One patient per transaction, numbered from..from+count-1: person, patient and first visit (three ops in one change set). */
export async function registerPatients(n: NetNode, tag: string, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    await n.sql(
      `START TRANSACTION;
       INSERT INTO person (uuid, name, gender) VALUES (?, ?, 'F');
       INSERT INTO patient (patient_id, allergy) VALUES (LAST_INSERT_ID(), ?);
       INSERT INTO visit (uuid, person_id, note) VALUES (?, LAST_INSERT_ID(), 'first visit');
       COMMIT;`,
      [uuid(tag, i), `${tag}-${i}`, i % 3 ? null : 'penicillin', uuid(`v${tag}`, i)],
    );
  }
}
