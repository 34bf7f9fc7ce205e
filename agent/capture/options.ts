// What a Capture is built from, and what status() reports.
import type { SpokesyncError } from '../../apply/core/errors.js';
import type { Db, DbSettings } from '../../apply/core/db.js';
import type { Logger } from '../../apply/core/log.js';
import type { Catalog } from '../../apply/core/catalog.js';
import type { BinlogPosition } from './position.js';

export interface CaptureOptions {
  readonly db: Db;
  /** for the binlog connection (host, port, user, password) */
  readonly settings: DbSettings;
  readonly catalog: Catalog;
  readonly schema: string;
  readonly stateSchema: string;
  /** synced application tables (at start: tables created or renamed later are added by `syncs`) */
  readonly tables: ReadonlySet<string>;
  /** whether a table of the schema syncs by the config (tables.include and exclude); default: one of `tables` */
  readonly syncs?: (table: string) => boolean;
  /** called with the synced tables when DDL changed them */
  readonly onTables?: (tables: ReadonlySet<string>) => void;
  readonly node: string;
  /** binlog client id, unique per server */
  readonly serverId: number;
  readonly log: Logger;
  /** budget for buffered binlog events, as estimated memory in bytes (default 16 MiB) */
  readonly memoryBytes?: number;
  /** wall clock for lag and checkpoint timing; change-set stamps use the binlog commit time instead */
  readonly now?: () => number;
  /** where the first start begins when there is no checkpoint yet (default: the end of the binlog now) */
  readonly startAt?: BinlogPosition;
  /** reloads the catalogue after DDL on a synced table (default: loadCatalog without key overrides) */
  readonly reloadCatalog?: () => Promise<Catalog>;
  /** called once when capture gives up (a purged binlog) */
  readonly onFatal?: (e: SpokesyncError) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  /** transactions with nothing to journal are checkpointed this long after the last write (default 5 s) */
  readonly skipCheckpointMs?: number;
  /** rows of tables of simple column types decoded straight into canonical values (row-decoder.ts); default true */
  readonly rowDecoder?: boolean;
  /** how far ahead of a transaction's commit time an applied stamp may move the clock (default clock.maxDrift's default plus a minute) */
  readonly maxClockAheadMs?: number;
  /** before the stream is opened (or reopened): throws when this process may not capture now (the node lock is lost) */
  readonly beforeOpen?: () => Promise<void>;
}

export interface CaptureStatus {
  readonly file: string;
  readonly pos: number;
  readonly gtid: string;
  /** change sets journaled since start */
  readonly journaled: number;
  readonly lagSeconds: number | null;
  readonly running: boolean;
  /** whether capture's own state writes go to the binlog (unknown before its first write) */
  readonly stateBinlogged?: boolean;
  readonly error?: string;
  /** the last error's code (SPOKESYNC_E_… or the driver's), while it stands */
  readonly errorCode?: string;
}
