// Shared set-up for the apply tests: a throwaway MariaDB with a small schema
// covering every identity rule, the state schema, and change-set builders.
import { randomUUID } from 'node:crypto';
import { openDb, type Db } from '../../apply/core/db.js';
import { silentLogger, type Logger } from '../../apply/core/log.js';
import { loadCatalog } from '../../apply/core/catalog.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';
import type { BatchEntry, ChangeSet, Op } from '../../apply/core/model.js';
import { Applier, type ApplierOptions } from '../../apply/replay/applier.js';
import { startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';

export const APP = 'app';
export const STATE = 'spokesync';

/** person (uuid), patient (shared key → person), person_name (uuid, FK → person), tag (natural key with FK), secret (not synced). */
export const APP_DDL = [
  `CREATE DATABASE ${APP}`,
  `CREATE TABLE ${APP}.person (
     person_id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, uuid CHAR(38) NOT NULL, name VARCHAR(100) NULL,
     gender VARCHAR(10) NULL, note VARCHAR(200) NULL, UNIQUE KEY person_uuid (uuid)) ENGINE=InnoDB`,
  `CREATE TABLE ${APP}.patient (
     patient_id INT NOT NULL PRIMARY KEY, allergy VARCHAR(100) NULL,
     CONSTRAINT patient_person FOREIGN KEY (patient_id) REFERENCES ${APP}.person (person_id)) ENGINE=InnoDB`,
  `CREATE TABLE ${APP}.person_name (
     person_name_id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, uuid CHAR(38) NOT NULL, person_id INT NOT NULL,
     given VARCHAR(100) NULL, family VARCHAR(100) NULL, UNIQUE KEY person_name_uuid (uuid),
     CONSTRAINT name_person FOREIGN KEY (person_id) REFERENCES ${APP}.person (person_id)) ENGINE=InnoDB`,
  `CREATE TABLE ${APP}.tag (
     label VARCHAR(50) NOT NULL, person_id INT NOT NULL, weight INT NULL, PRIMARY KEY (label, person_id),
     CONSTRAINT tag_person FOREIGN KEY (person_id) REFERENCES ${APP}.person (person_id)) ENGINE=InnoDB`,
  `CREATE TABLE ${APP}.item (
     id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, uuid CHAR(36) NOT NULL, marker VARCHAR(64) NOT NULL, k INT NOT NULL,
     note VARCHAR(200) NULL, UNIQUE KEY item_uuid (uuid), KEY item_marker (marker)) ENGINE=InnoDB`,
  `CREATE TABLE ${APP}.secret (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, uuid CHAR(38) NOT NULL, v VARCHAR(10)) ENGINE=InnoDB`,
  `CREATE TABLE ${APP}.x (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, uuid CHAR(38) NOT NULL) ENGINE=InnoDB`,
];

export const SYNCED = new Set(['person', 'patient', 'person_name', 'tag', 'item']);

export interface ApplyEnv {
  readonly server: TestServer;
  readonly db: Db;
  applier(opts?: Partial<ApplierOptions>): Promise<Applier>;
  rows<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  count(table: string, where?: string, params?: unknown[]): Promise<number>;
  close(): Promise<void>;
}

export async function applyEnv(ddl: readonly string[] = APP_DDL, server?: TestServer): Promise<ApplyEnv> {
  const s = server ?? (await startServer());
  const db = openDb({ host: s.host, port: s.port, user: 'root' }, { connectionLimit: 6 });
  for (const stmt of ddl) await db.exec(stmt);
  await ensureStateSchema(db, STATE);
  const rows = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => db.query<T>(sql, params);
  return {
    server: s,
    db,
    async applier(opts = {}) {
      const catalog = await loadCatalog(db, APP);
      // the stamps of these tests are set in January 2027: held by clock.maxDrift's default until then
      return new Applier({ db, catalog, schema: APP, stateSchema: STATE, node: 'here', tables: SYNCED, log: silentLogger, maxDriftMs: 366 * 86_400_000, ...opts });
    },
    rows,
    async count(table, where = '1', params = []) {
      const r = await db.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, params);
      return Number(r[0]!.n);
    },
    async close() {
      await db.close();
      if (!server) await s.stop();
    },
  };
}

export function uuid(): string {
  return randomUUID();
}

let clock = 1_700_000_000_000;
/** A change set from origin with a fresh, increasing hlc (or the one given). */
export function changeSet(origin: string, ops: readonly Op[], hlc?: bigint): ChangeSet {
  const h = (hlc ?? BigInt(++clock) << 16n).toString();
  return { id: `${origin}:${h}`, origin, hlc: h, time: '2026-01-02T03:04:05Z', ops };
}

export function entries(...css: ChangeSet[]): BatchEntry[] {
  return css.map((cs, i) => ({ seq: String(i + 1), cs }));
}

export const personInsert = (id: string, name: string, extra: Record<string, string | null> = {}): Op => ({
  kind: 'insert', table: 'person', id, row: { uuid: id, name, gender: null, note: null, ...extra },
});

export { silentLogger, type Logger };
