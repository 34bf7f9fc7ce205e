// The state schema (default `spokesync`) in the same server as the application
// schema, so journal rows and the capture checkpoint commit in one InnoDB
// transaction. Only `ledger` is captured from it.
import type { Queryable } from './db.js';
import { qid } from './db.js';
import { SpokesyncError } from './errors.js';

export const STATE_VERSION = 11;

/** Columns of `peers` about a peer restored from a backup (version 9). */
const PEER_RESTORE_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['incarnation', "VARCHAR(64) NULL COMMENT 'the peer''s incarnation last seen in its batches'"],
  ['restored_at', "DATETIME(6) NULL COMMENT 'when the peer was last seen restored from a backup (a new incarnation)'"],
  ['rewound_from', "BIGINT UNSIGNED NULL COMMENT 'acked_seq before it was rewound to what the restored peer had'"],
  ['resend_from', "BIGINT UNSIGNED NULL COMMENT 'the restored peer''s own change sets after this seq of ours go back to it'"],
  ['resend_hlc', "BIGINT UNSIGNED NULL COMMENT '... those stamped up to this (the highest of its stamps applied here then)'"],
];

/** Columns of `peers` about a child with row filters (version 11). */
const PEER_ROWS_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['rows_filtered', "BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'ops its row filters kept from the child'"],
  ['rows_filtered_seq', "BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'our journal seq up to which rows_filtered counts'"],
];

/** Columns added since version 1, created on tables that predate them (then `fill` runs once). */
const ADDED_COLUMNS: ReadonlyArray<{ table: string; column: string; ddl: string; fill?: (s: string) => string }> = [
  { table: 'idmap', column: 'hlc', ddl: 'BIGINT UNSIGNED NULL' },
  { table: 'idmap', column: 'node', ddl: 'VARCHAR(64) NULL' },
  // version 5: rows applied before it have no digest, and are taken as duplicates unchecked
  { table: 'ledger', column: 'digest', ddl: 'BINARY(32) NULL' },
  {
    table: 'peers', column: 'sent_seq', ddl: 'BIGINT UNSIGNED NOT NULL DEFAULT 0',
    // what was sent before version 5 is unknown: everything journaled so far may have been
    fill: (st) => `UPDATE ${st}.peers SET sent_seq = (SELECT COALESCE(MAX(seq), 0) FROM ${st}.journal)`,
  },
  // version 6: change sets quarantined before it are due at once (and the new tables discards and held)
  { table: 'quarantine', column: 'next_try', ddl: 'DATETIME(6) NULL' },
  // version 8: conflicts recorded before it are unreviewed and unresolved
  { table: 'conflicts', column: 'reviewed_at', ddl: 'DATETIME(6) NULL' },
  { table: 'conflicts', column: 'reviewed_by', ddl: 'VARCHAR(255) NULL' },
  { table: 'conflicts', column: 'resolved_at', ddl: 'DATETIME(6) NULL' },
  { table: 'conflicts', column: 'resolved_by', ddl: 'VARCHAR(255) NULL' },
  { table: 'conflicts', column: 'resolution', ddl: 'VARCHAR(1000) NULL' },
  // version 9: restored peers (agent/exchange/recovery.ts)
  ...PEER_RESTORE_COLUMNS.map(([column, ddl]) => ({ table: 'peers', column, ddl })),
  {
    // version 10 (and the tables exchanges, node_reports): the last contact that ended well was the last success
    table: 'peers', column: 'last_success', ddl: 'DATETIME(6) NULL',
    fill: (st) => `UPDATE ${st}.peers SET last_success = last_contact WHERE last_result = 'ok'`,
  },
  // version 11: row filters (agent/rows/); deletes journaled before it name no references
  { table: 'journal', column: 'deleted', ddl: "LONGTEXT NULL COMMENT 'JSON: the references of the rows its deletes removed (row filters route deletes by them)'" },
  ...PEER_ROWS_COLUMNS.map(([column, ddl]) => ({ table: 'peers', column, ddl })),
];

/** Tables added since version 1: `fill` runs once when the table is created on an existing state schema. */
const ADDED_TABLES: ReadonlyArray<{ table: string; fill: (s: string) => string }> = [
  {
    // version 5: origins already applied here belong to the peer that brought them first
    table: 'origins',
    fill: (st) => `INSERT IGNORE INTO ${st}.origins (origin, peer, since)
      SELECT origin, from_peer, MIN(applied_at) FROM ${st}.ledger GROUP BY origin, from_peer ORDER BY MIN(applied_at), origin, from_peer`,
  },
];

/** Table definitions, in creation order. Names are relative to the state schema. */
export const stateTables: ReadonlyArray<{ name: string; ddl: string }> = [
  {
    // One row per change set this node knows: captured locally, or applied here
    // from a peer and re-captured. `seq` is the local order; cursors point into it.
    name: 'journal',
    ddl: `(
      seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
      change_id VARCHAR(120) NOT NULL,
      origin VARCHAR(64) NOT NULL,
      from_peer VARCHAR(64) NULL COMMENT 'peer it was applied from; NULL when committed on this node',
      hlc BIGINT UNSIGNED NOT NULL,
      commit_time DATETIME NOT NULL,
      tables VARCHAR(4000) NOT NULL COMMENT 'comma-separated tables touched, for per-peer filters',
      op_count INT UNSIGNED NOT NULL,
      body LONGBLOB NOT NULL COMMENT 'the <cs> element as it goes on the wire; from 2 KiB brotli-compressed (state/journal-body.ts)',
      binlog_file VARCHAR(255) NOT NULL,
      binlog_pos BIGINT UNSIGNED NOT NULL,
      deleted LONGTEXT NULL COMMENT 'JSON: the references of the rows its deletes removed (row filters route deletes by them)',
      UNIQUE KEY journal_change (change_id)
    ) ENGINE=InnoDB`,
  },
  {
    // Where capture resumes: written in the same transaction as the journal rows it covers.
    name: 'checkpoint',
    ddl: `(
      id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
      binlog_file VARCHAR(255) NOT NULL,
      binlog_pos BIGINT UNSIGNED NOT NULL,
      gtid VARCHAR(4000) NOT NULL DEFAULT '',
      hlc BIGINT UNSIGNED NOT NULL DEFAULT 0,
      updated_at DATETIME(6) NOT NULL
    ) ENGINE=InnoDB`,
  },
  {
    // Applied change ids. Written first in every apply transaction; capture reads
    // it from the binlog to attribute the transaction to its origin and peer.
    name: 'ledger',
    ddl: `(
      change_id VARCHAR(120) NOT NULL PRIMARY KEY,
      origin VARCHAR(64) NOT NULL,
      from_peer VARCHAR(64) NOT NULL,
      hlc BIGINT UNSIGNED NOT NULL,
      commit_time DATETIME NOT NULL,
      applied_at DATETIME(6) NOT NULL,
      digest BINARY(32) NULL COMMENT 'SHA-256 of the change set as encoded (apply/replay/content.ts); NULL when applied before version 5'
    ) ENGINE=InnoDB`,
  },
  {
    // Per peer: how far it has acknowledged our journal, and how far we have taken its.
    name: 'peers',
    ddl: `(
      peer VARCHAR(64) NOT NULL PRIMARY KEY,
      acked_seq BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'our journal seq the peer has durably taken',
      received_seq BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'the peer journal seq we have durably taken',
      batch_seq BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'our batch counter toward the peer',
      last_contact DATETIME(6) NULL,
      last_result VARCHAR(500) NULL,
      sent_seq BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'highest journal seq of ours put in a batch for the peer; acks above it are refused',
      ${PEER_RESTORE_COLUMNS.map(([c, ddl]) => `${c} ${ddl}`).join(',\n      ')},
      last_success DATETIME(6) NULL COMMENT 'the last contact that ended well (last_contact is the last attempt)',
      ${PEER_ROWS_COLUMNS.map(([c, ddl]) => `${c} ${ddl}`).join(',\n      ')}
    ) ENGINE=InnoDB`,
  },
  {
    // Which peer each origin is reached through: a peer may bring only the origins it stands for
    // (agent/exchange/origins.ts). A configured child stands for itself; others are learned.
    name: 'origins',
    ddl: `(
      origin VARCHAR(64) NOT NULL PRIMARY KEY,
      peer VARCHAR(64) NOT NULL COMMENT 'the peer it is reached through',
      since DATETIME(6) NOT NULL
    ) ENGINE=InnoDB`,
  },
  {
    // Local primary key -> network identity, kept so rows deleted since still resolve
    // (written when capture sees a row inserted, deleted, re-keyed or looked up; rows of
    // range tables only when deleted, re-keyed or looked up). hlc + node: the version of
    // the insert that created the row (its columns' version unless `versions` holds a
    // newer one); NULL when the mapping was only looked up or the row deleted.
    name: 'idmap',
    ddl: `(
      tbl VARCHAR(64) NOT NULL,
      local_id VARCHAR(255) NOT NULL,
      identity VARCHAR(700) NOT NULL,
      hlc BIGINT UNSIGNED NULL,
      node VARCHAR(64) NULL,
      PRIMARY KEY (tbl, local_id),
      KEY idmap_identity (tbl, identity(200))
    ) ENGINE=InnoDB`,
  },
  {
    // Insert versions of rows of tables whose row is its uuid and whose key is one
    // integer column (identity.ts rangeKey): one row per run of consecutive local ids
    // one change set inserted, instead of one idmap row per inserted row. Runs never
    // overlap: a local id at or below the table's mark in key_marks (one some range or
    // idmap row has held) takes an idmap row with its version instead, which then
    // stands for that id. Apply reads a live row's insert version through its local id.
    name: 'insert_ranges',
    ddl: `(
      tbl VARCHAR(64) NOT NULL,
      lo BIGINT NOT NULL,
      hi BIGINT NOT NULL,
      hlc BIGINT UNSIGNED NOT NULL,
      node VARCHAR(64) NOT NULL,
      PRIMARY KEY (tbl, lo)
    ) ENGINE=InnoDB`,
  },
  {
    // Per range table: no local id above `hi` has been in insert_ranges or idmap.
    name: 'key_marks',
    ddl: `(
      tbl VARCHAR(64) NOT NULL PRIMARY KEY,
      hi BIGINT NOT NULL
    ) ENGINE=InnoDB`,
  },
  {
    // Last writer of each column of each synced row, for conflict resolution. Inserts
    // are recorded once per row: in insert_ranges, in idmap, or here as col '+' (tables
    // without a one-column key); col '*' is a delete tombstone. A column's version is the newest of these.
    name: 'versions',
    ddl: `(
      tbl VARCHAR(64) NOT NULL,
      identity VARCHAR(700) NOT NULL,
      col VARCHAR(64) NOT NULL,
      hlc BIGINT UNSIGNED NOT NULL,
      node VARCHAR(64) NOT NULL,
      PRIMARY KEY (tbl, identity(200), col)
    ) ENGINE=InnoDB`,
  },
  {
    // Conflicts met while applying, both sides kept; reviewed and resolved by an operator (agent/commands/conflicts.ts).
    name: 'conflicts',
    ddl: `(
      id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
      detected_at DATETIME(6) NOT NULL,
      change_id VARCHAR(120) NOT NULL,
      origin VARCHAR(64) NOT NULL,
      tbl VARCHAR(64) NOT NULL,
      identity VARCHAR(700) NOT NULL,
      kind VARCHAR(16) NOT NULL COMMENT 'update | delete | insert',
      local_version LONGTEXT NOT NULL COMMENT 'JSON: the row here before the change',
      remote_version LONGTEXT NOT NULL COMMENT 'JSON: what the change carried',
      outcome VARCHAR(500) NOT NULL COMMENT 'which side won, per column',
      reviewed_at DATETIME(6) NULL COMMENT 'spokesync conflicts review (or resolve): when someone saw it; NULL: unreviewed',
      reviewed_by VARCHAR(255) NULL COMMENT 'the operating-system user who reviewed it',
      resolved_at DATETIME(6) NULL COMMENT 'spokesync conflicts resolve: when a side was written again as a new change',
      resolved_by VARCHAR(255) NULL COMMENT 'the operating-system user who resolved it',
      resolution VARCHAR(1000) NULL COMMENT 'the side taken, the columns written, and whether it was forced',
      KEY conflicts_change (change_id)
    ) ENGINE=InnoDB`,
  },
  {
    // Change sets that could not apply yet, held durably and retried; never dropped.
    name: 'quarantine',
    ddl: `(
      change_id VARCHAR(120) NOT NULL PRIMARY KEY,
      origin VARCHAR(64) NOT NULL,
      from_peer VARCHAR(64) NOT NULL,
      hlc BIGINT UNSIGNED NOT NULL,
      received_at DATETIME(6) NOT NULL,
      last_try DATETIME(6) NOT NULL,
      next_try DATETIME(6) NULL COMMENT 'not tried again before (backoff per change set); NULL: at the next retry',
      tries INT UNSIGNED NOT NULL DEFAULT 1,
      reason VARCHAR(1000) NOT NULL,
      waits_for VARCHAR(700) NULL COMMENT 'table/identity or change id it depends on',
      body LONGBLOB NOT NULL COMMENT 'the <cs> element as received',
      KEY quarantine_origin (origin, hlc)
    ) ENGINE=InnoDB`,
  },
  {
    // Quarantined change sets an operator gave up (`spokesync quarantine discard`), here
    // (node = this node: kept whole with who, when and why) or at a child that reported it
    // in an exchange (no body), so no discard is silent.
    name: 'discards',
    ddl: `(
      node VARCHAR(64) NOT NULL COMMENT 'the node where it was discarded',
      change_id VARCHAR(120) NOT NULL,
      origin VARCHAR(64) NOT NULL,
      from_peer VARCHAR(64) NOT NULL COMMENT 'the peer that brought the change set to that node',
      tables VARCHAR(4000) NOT NULL COMMENT 'comma-separated tables it touched',
      quarantined_for VARCHAR(1000) NOT NULL COMMENT 'the quarantine reason when it was discarded',
      tries INT UNSIGNED NOT NULL,
      discarded_at DATETIME(6) NOT NULL,
      discarded_by VARCHAR(255) NOT NULL COMMENT 'the operating-system user who ran the command',
      why VARCHAR(1000) NOT NULL COMMENT 'the --reason given',
      reported_at DATETIME(6) NULL COMMENT 'this node: when the parent took the report (NULL: not yet); a child: when it arrived',
      body LONGBLOB NULL COMMENT 'the <cs> element, kept where it was discarded',
      PRIMARY KEY (node, change_id)
    ) ENGINE=InnoDB`,
  },
  {
    // Change sets whose table differs here in a way that would lose or change a value (apply/replay/held.ts).
    name: 'held',
    ddl: `(
      id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY COMMENT 'arrival order',
      change_id VARCHAR(120) NOT NULL,
      from_peer VARCHAR(64) NOT NULL,
      tbl VARCHAR(64) NOT NULL COMMENT 'the table whose shape holds it',
      tables VARCHAR(4000) NOT NULL COMMENT 'the tables it writes, as a JSON array',
      problem VARCHAR(1000) NOT NULL COMMENT 'column, here, there as JSON',
      waits_for VARCHAR(120) NULL COMMENT 'the held change set it waits behind',
      shapes MEDIUMBLOB NULL COMMENT 'the sender''s shapes of its tables, JSON',
      held_at DATETIME(6) NOT NULL,
      body LONGBLOB NOT NULL COMMENT 'the <cs> element as received',
      UNIQUE KEY held_change (change_id),
      KEY held_peer (from_peer, id)
    ) ENGINE=InnoDB`,
  },
  {
    // Version 7: what an operator chose to lose with a forced command (`snapshot --force`, `clone --force
    // --discard-local`), kept as history and shown by `spokesync status`.
    name: 'losses',
    ddl: `(
      id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
      at DATETIME(6) NOT NULL,
      command VARCHAR(200) NOT NULL COMMENT 'the command that was forced',
      peer VARCHAR(64) NOT NULL COMMENT 'snapshot: the site that misses the change sets; clone: the parent they never reached',
      change_sets BIGINT UNSIGNED NOT NULL COMMENT 'how many change sets',
      by_user VARCHAR(255) NOT NULL COMMENT 'the operating-system user who ran it, or the peer that asked over HTTP',
      detail VARCHAR(1000) NOT NULL COMMENT 'what was lost and what must follow'
    ) ENGINE=InnoDB`,
  },
  {
    // DDL seen on synced tables, with the fingerprint of the schema after it.
    name: 'schema_events',
    ddl: `(
      id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
      seen_at DATETIME(6) NOT NULL,
      tbl VARCHAR(64) NOT NULL,
      statement TEXT NOT NULL,
      fingerprint CHAR(64) NOT NULL,
      binlog_file VARCHAR(255) NOT NULL,
      binlog_pos BIGINT UNSIGNED NOT NULL
    ) ENGINE=InnoDB`,
  },
  {
    // Ops a relay must forward that its binlog does not show (apply/replay/carry.ts):
    // inserted and deleted in the applying transaction, so only the binlog keeps them.
    name: 'carry',
    ddl: `(
      change_id VARCHAR(120) NOT NULL PRIMARY KEY,
      body LONGBLOB NOT NULL COMMENT 'a <cs> element holding the carried ops'
    ) ENGINE=InnoDB`,
  },
  {
    // Version 8: the last exchange rounds with each peer (agent/admin/history.ts), the newest 200 per peer.
    // up = toward the parent: what a child sent its parent, whichever side records it.
    name: 'exchanges',
    ddl: `(
      id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
      peer VARCHAR(64) NOT NULL,
      role VARCHAR(8) NOT NULL COMMENT 'the peer is our parent or our child',
      started_at DATETIME(6) NOT NULL,
      duration_ms INT UNSIGNED NOT NULL,
      bytes_up BIGINT UNSIGNED NOT NULL,
      bytes_down BIGINT UNSIGNED NOT NULL,
      sets_up INT UNSIGNED NOT NULL,
      sets_down INT UNSIGNED NOT NULL,
      result VARCHAR(500) NOT NULL COMMENT 'ok, or CODE: message',
      KEY exchanges_peer (peer, id)
    ) ENGINE=InnoDB`,
  },
  {
    // Version 8: the latest status report of each node below this one (agent/admin/report-store.ts),
    // as its child on that branch passed it up; never row values.
    name: 'node_reports',
    ddl: `(
      node VARCHAR(64) NOT NULL PRIMARY KEY,
      via VARCHAR(64) NOT NULL COMMENT 'the child it came through (the node itself for a child)',
      parent VARCHAR(64) NOT NULL COMMENT 'the node it reports to',
      report MEDIUMTEXT NOT NULL COMMENT 'JSON: the node''s own report',
      seen_at DATETIME(6) NULL COMMENT 'its last successful exchange with its parent, as that parent saw it',
      clock_offset_ms BIGINT NULL COMMENT 'its clock minus its parent''s, as that parent measured it',
      history TEXT NULL COMMENT 'JSON: its last exchanges with its parent, as that parent recorded them',
      received_at DATETIME(6) NOT NULL COMMENT 'when this node took the report (this clock)'
    ) ENGINE=InnoDB`,
  },
  {
    // Version 11: what went to a child with row filters in a batch it has not acknowledged yet, so that a
    // change set sent again is the same (agent/rows/routed.ts); rows at or below its acked seq are dropped.
    name: 'routed',
    ddl: `(
      peer VARCHAR(64) NOT NULL,
      seq BIGINT UNSIGNED NOT NULL COMMENT 'our journal seq',
      body LONGBLOB NULL COMMENT 'the <cs> element as it went (journal/body.ts form); NULL: as journaled',
      PRIMARY KEY (peer, seq)
    ) ENGINE=InnoDB`,
  },
  {
    // Version 11: the owner rows (row filters) each filtered child holds as belonging to it; fill_id: the last
    // fill that carries its rows, while the child has not acknowledged it (agent/rows/scan.ts)
    name: 'members',
    ddl: `(
      peer VARCHAR(64) NOT NULL,
      tbl VARCHAR(64) NOT NULL,
      identity VARCHAR(700) NOT NULL,
      fill_id VARCHAR(120) NULL,
      PRIMARY KEY (peer, tbl, identity(200))
    ) ENGINE=InnoDB`,
  },
  {
    // Version 11: fill and leave change sets made here for one filtered child, which alone receives them (agent/rows/fill.ts)
    name: 'fills',
    ddl: `(
      change_id VARCHAR(120) NOT NULL PRIMARY KEY,
      peer VARCHAR(64) NOT NULL,
      stamp BIGINT UNSIGNED NOT NULL,
      made_at DATETIME(6) NOT NULL,
      KEY fills_stamp (stamp)
    ) ENGINE=InnoDB`,
  },
  {
    name: 'meta',
    ddl: `(
      k VARCHAR(64) NOT NULL PRIMARY KEY,
      v VARCHAR(4000) NOT NULL
    ) ENGINE=InnoDB`,
  },
];

/** The state version recorded in `stateSchema` as stored, or null when it records none (a new state schema). Reads only. */
export async function storedStateVersion(db: Queryable, stateSchema: string): Promise<string | null> {
  const [meta] = await db.query<{ n: number | string }>(
    "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'meta'", [stateSchema]);
  if (Number(meta?.n ?? 0) === 0) return null;
  const [row] = await db.query<{ v: string }>(`SELECT v FROM ${qid(stateSchema)}.meta WHERE k = 'version'`);
  return row?.v ?? null;
}

/** The refusal of a state schema this code does not know (a newer version, or no version number at all); null when it may be used. Pure. */
export function stateVersionError(stateSchema: string, stored: string | null): SpokesyncError | null {
  if (stored === null) return null;
  const known = /^\d{1,9}$/.test(stored.trim());
  if (known && Number(stored) <= STATE_VERSION) return null;
  const what = known ? `state version ${Number(stored)}` : `a state version this spokesync cannot read (${JSON.stringify(stored.slice(0, 40))})`;
  return new SpokesyncError('SPOKESYNC_E_STATE_NEWER',
    `the state schema ${stateSchema} is at ${what}, written by a newer spokesync; this spokesync knows state versions up to ${STATE_VERSION}: upgrade spokesync on this node`);
}

/** Refuses a state schema written by a newer spokesync (SPOKESYNC_E_STATE_NEWER), before anything is written to it. */
export async function assertStateVersion(db: Queryable, stateSchema: string): Promise<void> {
  const e = stateVersionError(stateSchema, await storedStateVersion(db, stateSchema));
  if (e) throw e;
}

/**
 * Creates the state schema and its tables if missing, or brings one written by
 * an older spokesync up to this version (idempotent). A newer one is refused untouched.
 */
export async function ensureStateSchema(db: Queryable, stateSchema: string): Promise<void> {
  await assertStateVersion(db, stateSchema);
  await db.exec(`CREATE DATABASE IF NOT EXISTS ${qid(stateSchema)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  const before = new Set((await db.query<{ t: string }>(
    'SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [stateSchema])).map((r) => r.t));
  for (const t of stateTables) {
    await db.exec(`CREATE TABLE IF NOT EXISTS ${qid(stateSchema)}.${qid(t.name)} ${t.ddl}`);
  }
  const have = await db.query<{ t: string; c: string }>(
    `SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?`, [stateSchema]);
  for (const a of ADDED_COLUMNS) {
    if (!have.some((h) => h.t === a.table && h.c === a.column)) {
      await db.exec(`ALTER TABLE ${qid(stateSchema)}.${qid(a.table)} ADD COLUMN ${qid(a.column)} ${a.ddl}`);
      if (a.fill) await db.exec(a.fill(qid(stateSchema)));
    }
  }
  // an existing state schema (it had a journal) gains the tables added since
  if (before.has('journal')) {
    for (const a of ADDED_TABLES) if (!before.has(a.table)) await db.exec(a.fill(qid(stateSchema)));
  }
  await db.exec(
    `INSERT INTO ${qid(stateSchema)}.meta (k, v) VALUES ('version', ?)
     ON DUPLICATE KEY UPDATE v = IF(CAST(v AS UNSIGNED) < CAST(VALUES(v) AS UNSIGNED), VALUES(v), v)`,
    [String(STATE_VERSION)],
  );
}

/** `schema`.`table` for a state table. */
export function stateTable(stateSchema: string, table: string): string {
  return `${qid(stateSchema)}.${qid(table)}`;
}
