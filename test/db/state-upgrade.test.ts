// A state schema from before version 5 (no ledger digests, no sent_seq, no
// origins table) is brought up to date in place: what was sent counts as the
// journal so far (acks of it stay in range), and each origin already applied
// belongs to the peer that brought it first. Nothing already there changes.
// Later versions add tables and columns the same way (6: discards, held; 7: losses; 8: conflict review; 9: restored
// peers; 10: exchanges, node_reports, peers.last_success).
// A state schema that version 9 code wrote (test/fixtures/state-v9.sql) ends with
// the layout of a new one and every row it held.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { openDb, type Queryable } from '../../apply/core/db.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { bodyXml } from '../../agent/journal/body.js';
import { getCursor } from '../../agent/routing/cursors.js';
import { STATE_VERSION, ensureStateSchema, stateTables } from '../../apply/core/state-schema.js';
import { loadSql, startServer } from '../../deploy/sandbox/mariadb.js';

/** Columns and indexes of a schema, comparable across schemas (column order and comments aside: added columns come last). */
async function layout(db: Queryable, schema: string): Promise<{ columns: string[]; indexes: string[] }> {
  const columns = await db.query<Record<string, string | null>>(
    `SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, COLLATION_NAME, EXTRA
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, COLUMN_NAME`, [schema]);
  const indexes = await db.query<Record<string, string | number | null>>(
    `SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, NON_UNIQUE
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`, [schema]);
  return { columns: columns.map((c) => Object.values(c).join(' ')), indexes: indexes.map((i) => Object.values(i).join(' ')) };
}

/** Every row of every table of the schema, the columns of `cols` only (table → column names). */
async function rows(db: Queryable, schema: string, cols: ReadonlyMap<string, readonly string[]>): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [table, names] of cols) {
    const list = names.map((c) => `\`${c}\``).join(', ');
    out[table] = await db.query(`SELECT ${list} FROM \`${schema}\`.\`${table}\` ORDER BY ${list}`);
  }
  return out;
}

/** Tables of a new state schema that version 9 did not have. */
const ADDED_SINCE_V9 = ['exchanges', 'node_reports', 'routed', 'members', 'fills'];

void t.test('a state schema written by version 9 code: the layout of a new one, every row kept, journal bodies readable', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const dump = await readFile(new URL('../../../test/fixtures/state-v9.sql', import.meta.url), 'utf8');
  await loadSql(s, `CREATE DATABASE v9 CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; USE v9;\n${dump}`);
  t.same(await db.query("SELECT v FROM v9.meta WHERE k = 'version'"), [{ v: '9' }]);
  const old = new Map<string, string[]>();
  for (const c of await db.query<{ t: string; c: string }>(
    'SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY ORDINAL_POSITION', ['v9'])) {
    old.set(c.t, [...(old.get(c.t) ?? []), c.c]);
  }
  const before = await rows(db, 'v9', old);

  await ensureStateSchema(db, 'v9');
  await ensureStateSchema(db, 'v9');
  await ensureStateSchema(db, 'fresh');

  t.same(await layout(db, 'v9'), await layout(db, 'fresh'), 'the same tables, columns and indexes as a state schema made by this version');
  const version = (r: unknown): unknown => ((r as { k?: string }).k === 'version' ? { k: 'version', v: String(STATE_VERSION) } : r);
  t.same(await rows(db, 'v9', old), { ...before, meta: before.meta?.map(version) }, 'every row as it was (the version now this one)');
  t.same(await db.query("SELECT v FROM v9.meta WHERE k = 'version'"), [{ v: String(STATE_VERSION) }]);
  t.same(stateTables.map((x) => x.name).filter((n) => !old.has(n)).sort(), [...ADDED_SINCE_V9].sort(),
    'the fixture holds every table but those added since version 9');
  const hub = await getCursor(db, 'v9', 'hub');
  t.same([hub.ackedSeq, hub.receivedSeq, hub.sentSeq], ['16', '14', '14'], 'the cursor toward the parent kept');
  t.not(hub.lastSuccess, null, 'its last contact was ok: the last success');
  const journal = await db.query<{ change_id: string; body: Buffer }>('SELECT change_id, body FROM v9.journal ORDER BY seq');
  t.equal(journal.length, 18);
  t.same(journal.map((j) => decodeChangeSet(bodyXml(j.body)).id), journal.map((j) => j.change_id), 'every journal body decodes');
});

void t.test('a version 4 state schema gains digests, sent_seq and origins', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const st = 'old_state';
  await ensureStateSchema(db, st);
  // the layout of version 4
  await db.exec(`ALTER TABLE ${st}.ledger DROP COLUMN digest`).catch(() => undefined);
  await db.exec(`ALTER TABLE ${st}.peers DROP COLUMN sent_seq`).catch(() => undefined);
  await db.exec(`DROP TABLE IF EXISTS ${st}.origins`);
  await db.exec(`UPDATE ${st}.meta SET v = '4' WHERE k = 'version'`);
  for (let i = 1; i <= 7; i++) {
    await db.exec(
      `INSERT INTO ${st}.journal (change_id, origin, from_peer, hlc, commit_time, tables, op_count, body, binlog_file, binlog_pos)
       VALUES (?, 'here', NULL, ?, NOW(), 'person', 1, '<cs/>', 'mysql-bin.000001', 4)`, [`here:${i}`, i]);
  }
  await db.exec(`INSERT INTO ${st}.peers (peer, acked_seq, received_seq) VALUES ('kid', 5, 30), ('up', 7, 12)`);
  const ledger = [['kid:1', 'kid', 'kid', '2026-01-01 00:00:01'], ['grand:1', 'grand', 'kid', '2026-01-01 00:00:02'],
    ['up:1', 'up', 'up', '2026-01-01 00:00:03'], ['aunt:1', 'aunt', 'up', '2026-01-01 00:00:04'],
    ['aunt:2', 'aunt', 'kid', '2026-01-01 00:00:05']];
  for (const [id, origin, peer, at] of ledger) {
    await db.exec(`INSERT INTO ${st}.ledger (change_id, origin, from_peer, hlc, commit_time, applied_at) VALUES (?, ?, ?, 1, NOW(), ?)`, [id, origin, peer, at]);
  }

  await ensureStateSchema(db, st);
  await ensureStateSchema(db, st);

  const cols = await db.query<{ t: string; c: string }>(
    "SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND COLUMN_NAME IN ('digest', 'sent_seq')", [st]);
  t.same(cols.map((c) => `${c.t}.${c.c}`).sort(), ['ledger.digest', 'peers.sent_seq']);
  const kid = await getCursor(db, st, 'kid');
  t.same([kid.ackedSeq, kid.receivedSeq, kid.sentSeq], ['5', '30', '7'], 'sent_seq: the journal so far');
  t.equal((await getCursor(db, st, 'up')).sentSeq, '7');
  const origins = await db.query<{ origin: string; peer: string }>(`SELECT origin, peer FROM ${st}.origins ORDER BY origin`);
  t.same(origins.map((o) => [o.origin, o.peer]), [['aunt', 'up'], ['grand', 'kid'], ['kid', 'kid'], ['up', 'up']],
    'each origin belongs to the peer that brought it first');
  const [v] = await db.query<{ v: string }>(`SELECT v FROM ${st}.meta WHERE k = 'version'`);
  t.equal(v?.v, String(STATE_VERSION));
  const [l] = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${st}.ledger WHERE digest IS NULL`);
  t.equal(Number(l?.n), 5, 'rows from before keep no digest (taken as duplicates unchecked)');

  // a fresh state schema starts with the same layout and nothing to fill
  await ensureStateSchema(db, 'new_state');
  const [o] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM new_state.origins');
  t.equal(Number(o?.n), 0);
});

void t.test('a version 5 state schema gains next_try (quarantine) and discards', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const st = 'v5_state';
  await ensureStateSchema(db, st);
  // the layout of version 5
  await db.exec(`ALTER TABLE ${st}.quarantine DROP COLUMN next_try`);
  await db.exec(`DROP TABLE ${st}.discards`);
  await db.exec(`UPDATE ${st}.meta SET v = '5' WHERE k = 'version'`);
  await db.exec(`INSERT INTO ${st}.quarantine (change_id, origin, from_peer, hlc, received_at, last_try, tries, reason, body)
    VALUES ('a:1', 'a', 'kid', 1, NOW(6), NOW(6), 3, 'r', '<cs/>')`);

  await ensureStateSchema(db, st);
  await ensureStateSchema(db, st);

  t.same(await db.query(`SELECT change_id, tries, next_try FROM ${st}.quarantine`), [{ change_id: 'a:1', tries: 3, next_try: null }],
    'quarantined before: kept, and due at the next retry');
  t.same(await db.query(`SELECT COUNT(*) AS n FROM ${st}.discards`), [{ n: 0 }]);
  const [v] = await db.query<{ v: string }>(`SELECT v FROM ${st}.meta WHERE k = 'version'`);
  t.equal(v?.v, String(STATE_VERSION));
});

void t.test('a version 6 state schema gains the losses table, empty; nothing else changes', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const st = 'v6_state';
  await ensureStateSchema(db, st);
  // the layout of version 6
  await db.exec(`DROP TABLE ${st}.losses`);
  await db.exec(`UPDATE ${st}.meta SET v = '6' WHERE k = 'version'`);
  await db.exec(`INSERT INTO ${st}.peers (peer, acked_seq, received_seq, sent_seq) VALUES ('kid', 4, 9, 4)`);

  await ensureStateSchema(db, st);
  await ensureStateSchema(db, st);

  t.same(await db.query(`SELECT COUNT(*) AS n FROM ${st}.losses`), [{ n: 0 }], 'losses: created, no loss recorded');
  const kid = await getCursor(db, st, 'kid');
  t.same([kid.ackedSeq, kid.receivedSeq, kid.sentSeq], ['4', '9', '4'], 'cursors untouched');
  const [v] = await db.query<{ v: string }>(`SELECT v FROM ${st}.meta WHERE k = 'version'`);
  t.equal(v?.v, String(STATE_VERSION));
});

void t.test('a version 7 state schema gains the review and resolution columns of conflicts; recorded ones stay unreviewed', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const st = 'v7_state';
  await ensureStateSchema(db, st);
  // the layout of version 7
  const added = ['reviewed_at', 'reviewed_by', 'resolved_at', 'resolved_by', 'resolution'];
  for (const c of added) await db.exec(`ALTER TABLE ${st}.conflicts DROP COLUMN ${c}`);
  await db.exec(`UPDATE ${st}.meta SET v = '7' WHERE k = 'version'`);
  await db.exec(`INSERT INTO ${st}.conflicts (detected_at, change_id, origin, tbl, identity, kind, local_version, remote_version, outcome)
    VALUES (NOW(6), 'kid:1', 'kid', 'person', 'u-1', 'update', '{}', '{}', 'remote wins: name')`);

  await ensureStateSchema(db, st);
  await ensureStateSchema(db, st);

  t.same(await db.query(`SELECT change_id, outcome, ${added.join(', ')} FROM ${st}.conflicts`), [{
    change_id: 'kid:1', outcome: 'remote wins: name', reviewed_at: null, reviewed_by: null, resolved_at: null, resolved_by: null, resolution: null,
  }], 'a conflict recorded before: kept, unreviewed');
  const [v] = await db.query<{ v: string }>(`SELECT v FROM ${st}.meta WHERE k = 'version'`);
  t.equal(v?.v, String(STATE_VERSION));
});

void t.test('a version 8 state schema gains what peers restored from a backup need', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const st = 'v8_state';
  const added = ['incarnation', 'restored_at', 'rewound_from', 'resend_from', 'resend_hlc'];
  await ensureStateSchema(db, st);
  // the layout of version 8
  for (const c of added) await db.exec(`ALTER TABLE ${st}.peers DROP COLUMN ${c}`);
  await db.exec(`UPDATE ${st}.meta SET v = '8' WHERE k = 'version'`);
  await db.exec(`INSERT INTO ${st}.peers (peer, acked_seq, received_seq, sent_seq) VALUES ('kid', 5, 30, 7)`);

  await ensureStateSchema(db, st);
  await ensureStateSchema(db, st);

  const kid = await getCursor(db, st, 'kid');
  t.same([kid.ackedSeq, kid.receivedSeq, kid.sentSeq, kid.incarnation, kid.restore], ['5', '30', '7', null, null],
    'a peer of before: cursors kept, no incarnation seen yet, never restored');
  const [v] = await db.query<{ v: string }>(`SELECT v FROM ${st}.meta WHERE k = 'version'`);
  t.equal(v?.v, String(STATE_VERSION));
});

void t.test('a version 9 state schema gains exchanges, node_reports and peers.last_success (from the last contact that was ok)', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const st = 'v9_state';
  await ensureStateSchema(db, st);
  // the layout of version 9
  await db.exec(`DROP TABLE ${st}.exchanges`);
  await db.exec(`DROP TABLE ${st}.node_reports`);
  await db.exec(`ALTER TABLE ${st}.peers DROP COLUMN last_success`);
  await db.exec(`UPDATE ${st}.meta SET v = '9' WHERE k = 'version'`);
  await db.exec(`INSERT INTO ${st}.peers (peer, acked_seq, received_seq, sent_seq, last_contact, last_result)
    VALUES ('kid', 4, 9, 4, '2026-01-02 03:04:05', 'ok'), ('up', 1, 1, 1, '2026-01-03 00:00:00', 'SPOKESYNC_E_HTTP: down')`);

  await ensureStateSchema(db, st);
  await ensureStateSchema(db, st);

  t.same(await db.query(`SELECT COUNT(*) AS n FROM ${st}.exchanges`), [{ n: 0 }]);
  t.same(await db.query(`SELECT COUNT(*) AS n FROM ${st}.node_reports`), [{ n: 0 }]);
  const kid = await getCursor(db, st, 'kid');
  t.same([kid.ackedSeq, kid.receivedSeq, kid.sentSeq, kid.lastSuccess], ['4', '9', '4', '2026-01-02 03:04:05.000000'], 'an ok last contact was the last success');
  t.equal((await getCursor(db, st, 'up')).lastSuccess, null, 'a failed last contact: no success known');
  const [v] = await db.query<{ v: string }>(`SELECT v FROM ${st}.meta WHERE k = 'version'`);
  t.equal(v?.v, String(STATE_VERSION));
});

void t.test('a version 10 state schema gains journal.deleted, the row filter counts of peers, routed, members and fills', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const st = 'v10_state';
  await ensureStateSchema(db, st);
  // the layout of version 10
  await db.exec(`DROP TABLE ${st}.routed, ${st}.members, ${st}.fills`);
  await db.exec(`ALTER TABLE ${st}.journal DROP COLUMN deleted`);
  await db.exec(`ALTER TABLE ${st}.peers DROP COLUMN rows_filtered, DROP COLUMN rows_filtered_seq`);
  await db.exec(`UPDATE ${st}.meta SET v = '10' WHERE k = 'version'`);
  await db.exec(`INSERT INTO ${st}.peers (peer, acked_seq, received_seq, sent_seq) VALUES ('kid', 4, 9, 4)`);

  await ensureStateSchema(db, st);
  await ensureStateSchema(db, st);

  t.same(await db.query(`SELECT rows_filtered AS f, rows_filtered_seq AS q, acked_seq AS a FROM ${st}.peers`), [{ f: '0', q: '0', a: '4' }], 'nothing counted yet; the cursor kept');
  for (const table of ['routed', 'members', 'fills']) t.same(await db.query(`SELECT COUNT(*) AS n FROM ${st}.${table}`), [{ n: 0 }], table);
  t.same(await db.query(`SELECT COUNT(*) AS n FROM ${st}.journal WHERE deleted IS NOT NULL`), [{ n: 0 }]);
  const [v] = await db.query<{ v: string }>(`SELECT v FROM ${st}.meta WHERE k = 'version'`);
  t.equal(v?.v, String(STATE_VERSION));
  t.equal(STATE_VERSION, 11);
});
