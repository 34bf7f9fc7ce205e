// Every column type, edge values included, applied bit for bit on a second
// server: rows written on server A are read back as change sets (through the
// wire codec), applied on server B, and every column compared as the server
// stores it (HEX of text and bytes, exact text of numbers and times).
import t from 'tap';
import type { Db } from '../../apply/core/db.js';
import { loadCatalog, type Catalog } from '../../apply/core/catalog.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { rowDigest } from '../../apply/codec/digest.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import type { ChangeSet, Op, Row } from '../../apply/core/model.js';
import { RowMapper } from '../../apply/replay/rowmap.js';
import { selectSql } from '../../apply/replay/sql.js';
import { journal, makeCapture } from '../helpers/capture-fixture.js';
import { STATE, applyEnv, silentLogger, type ApplyEnv } from './apply-fixture.js';

const DDL = [
  `CREATE DATABASE app`,
  `CREATE TABLE app.typed (
    id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, uuid CHAR(36) NOT NULL, UNIQUE KEY typed_uuid (uuid),
    c_bigu BIGINT UNSIGNED NULL, c_big BIGINT NULL, c_int INT NULL, c_tiny TINYINT NULL, c_small SMALLINT UNSIGNED NULL,
    c_med MEDIUMINT NULL, c_bool TINYINT(1) NULL,
    c_dec DECIMAL(65,30) NULL, c_dec0 DECIMAL(10,0) NULL, c_float FLOAT NULL, c_double DOUBLE NULL,
    c_dt DATETIME(6) NULL, c_dt0 DATETIME NULL, c_ts TIMESTAMP(6) NULL DEFAULT NULL, c_date DATE NULL,
    c_time TIME NULL, c_time6 TIME(6) NULL, c_year YEAR NULL,
    c_bit BIT(64) NULL, c_bit1 BIT(1) NULL, c_bit5 BIT(5) NULL,
    c_enum ENUM('a','b','c d','é') NULL, c_set SET('x','y','z') NULL, c_json JSON NULL,
    c_latin VARCHAR(300) CHARACTER SET latin1 NULL, c_utf8 VARCHAR(300) CHARACTER SET utf8mb3 NULL,
    c_text TEXT NULL, c_vc VARCHAR(300) NULL, c_char CHAR(10) NULL,
    c_blob BLOB NULL, c_lblob LONGBLOB NULL, c_bin BINARY(4) NULL, c_vbin VARBINARY(300) NULL,
    c_geo GEOMETRY NULL, c_uuid UUID NULL, c_inet6 INET6 NULL, c_inet4 INET4 NULL
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
];

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const CONTROL = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('') + '\u007f\r\n\r\t"\'\\`%_';

/** Edge rows, inserted on A with SQL literals and hex so the bytes are exactly these. */
const ROWS: string[] = [
  `('max', 18446744073709551615, 9223372036854775807, 2147483647, 127, 65535, 8388607, 1,
    99999999999999999999999999999999999.999999999999999999999999999999, 9999999999, 3.40282e38, 1.7976931348623157e308,
    '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59', '2038-01-19 03:14:07.999999', '9999-12-31',
    '838:59:59', '838:59:59.000000', 2155, b'1111111111111111111111111111111111111111111111111111111111111111', b'1', b'11111',
    'é', 'x,y,z', '{"a": [1, 2.50, "\\\\u00e9"], "b": null}', X'${ALL_BYTES.subarray(1).toString('hex')}', 'mañana ☃', NULL, NULL, 'abcdefghij',
    X'${ALL_BYTES.toString('hex')}', X'${Buffer.concat(Array(300).fill(ALL_BYTES)).toString('hex')}', X'ffffffff', X'00ff00',
    ST_GeomFromText('POINT(1.5 -2.25)'), 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '255.255.255.255')`,
  `('min', 0, -9223372036854775808, -2147483648, -128, 0, -8388608, 0,
    -99999999999999999999999999999999999.999999999999999999999999999999, -9999999999, -1.17549e-38, 4.9406564584124654e-324,
    '1000-01-01 00:00:00.000000', '0000-00-00 00:00:00', '1970-01-01 00:00:01.000000', '1000-01-01',
    '-838:59:59', '-838:59:59.000000', 1901, b'0', b'0', b'0',
    'a', '', '[]', X'00', '', '', '', '',
    X'', X'', X'00000000', X'',
    ST_GeomFromText('LINESTRING(0 0, 1 1, 2 0)'), '00000000-0000-0000-0000-000000000000', '::', '0.0.0.0')`,
  `('mid', 1, 0, 0, 0, 1, 0, NULL,
    0.000000000000000000000000000001, 0, 16777215, 0.1,
    '2026-01-02 03:04:05.123456', '2026-01-02 03:04:05', '2026-01-02 03:04:05.000001', '2026-01-02',
    '00:00:00', '-00:00:00.000001', 0, b'10000000', NULL, b'10101',
    'c d', 'y', '"text"', X'80818d8f909d9eff', ${"'" + CONTROL.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'"}, 'line1\\nline2\\r\\n', 'trailing  ', 'x ',
    X'0d0a1a00', NULL, X'00000001', X'5c27',
    NULL, '6ccd780c-baba-1026-9564-5b8c656024db', '2001:db8:0:1::ffff:1.2.3.4', '10.0.0.1')`,
  `('nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
];

/** One SELECT expression per column that shows exactly what the server stores. */
async function exactSelect(db: Db): Promise<string> {
  const cols = await db.query<{ COLUMN_NAME: string; DATA_TYPE: string }>(
    `SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'typed' AND COLUMN_NAME <> 'id' ORDER BY ORDINAL_POSITION`);
  const expr = cols.map((c) => {
    const q = '`' + c.COLUMN_NAME + '`';
    // a FLOAT's text has 6 significant digits: its exact value is the double it widens to
    if (c.DATA_TYPE === 'float') return `CAST(CAST(${q} AS DOUBLE) AS CHAR) AS ${q}`;
    if (/int|decimal|year|double/.test(c.DATA_TYPE)) return `CAST(${q} AS CHAR) AS ${q}`;
    if (/date|time/.test(c.DATA_TYPE)) return `CAST(${q} AS CHAR) AS ${q}`;
    if (c.DATA_TYPE === 'bit') return `BIN(${q}) AS ${q}`;
    if (c.DATA_TYPE === 'geometry') return `HEX(${q}) AS ${q}`;
    return `HEX(${q}) AS ${q}, ${q} IS NULL AS ${'`' + c.COLUMN_NAME + '_null`'}`;
  });
  return `SELECT ${expr.join(', ')} FROM app.typed ORDER BY uuid`;
}

async function stored(db: Db): Promise<Record<string, unknown>[]> {
  return db.query(await exactSelect(db));
}

/** The rows of A as change sets carry them, through the wire codec. */
async function wireRows(db: Db, catalog: Catalog): Promise<Map<string, Row>> {
  const mapper = new RowMapper(catalog, STATE);
  const out = new Map<string, Row>();
  // as apply reads rows (FLOAT columns exactly)
  const all = selectSql('app', catalog.table('typed'), '*', { sql: '1 = 1', params: [] });
  for (const raw of await db.query<Record<string, unknown>>(all.sql)) {
    out.set(String(raw.uuid), await mapper.toWire(db, catalog.table('typed'), raw));
  }
  return out;
}

let seq = 0;
function viaWire(origin: string, ops: Op[]): ChangeSet {
  const hlc = String(BigInt(1_800_000_000_000 + ++seq) << 16n);
  return decodeChangeSet(encodeChangeSet({ id: `${origin}:${hlc}`, origin, hlc, time: '2026-01-02T03:04:05Z', ops }));
}

let a: ApplyEnv;
let b: ApplyEnv;
t.before(async () => {
  a = await applyEnv(DDL);
  b = await applyEnv(DDL);
});
t.teardown(async () => Promise.all([a.close(), b.close()]));

void t.test('every type round-trips bit for bit: inserts, updates, deletes', async (t) => {
  const catA = await loadCatalog(a.db, 'app');
  await a.db.exec(`INSERT INTO app.typed (uuid, c_bigu, c_big, c_int, c_tiny, c_small, c_med, c_bool, c_dec, c_dec0, c_float, c_double,
    c_dt, c_dt0, c_ts, c_date, c_time, c_time6, c_year, c_bit, c_bit1, c_bit5, c_enum, c_set, c_json, c_latin, c_utf8, c_text, c_vc, c_char,
    c_blob, c_lblob, c_bin, c_vbin, c_geo, c_uuid, c_inet6, c_inet4) VALUES ${ROWS.join(', ')}`);
  // YEAR 0000 is only reachable with a number
  await a.db.exec(`UPDATE app.typed SET c_year = 0 WHERE uuid = 'mid'`);
  const applier = await b.applier({ tables: new Set(['typed']), log: silentLogger });

  const rowsA = await wireRows(a.db, catA);
  const inserts = [...rowsA].map(([id, row]): Op => ({ kind: 'insert', table: 'typed', id, row }));
  t.match(await applier.applyBatch('a', [{ seq: '1', cs: viaWire('a', inserts) }]), { applied: 1, conflicts: 0, quarantined: 0 });
  t.same(await stored(b.db), await stored(a.db), 'inserted rows are stored identically');

  // updates: rotate every value one row on, so each column changes to another edge value
  const ids = [...rowsA.keys()].sort();
  const cols = Object.keys(rowsA.get(ids[0]!)!).filter((c) => c !== 'uuid');
  const assign = cols.map((c) => `t.\`${c}\` = src.\`${c}\``).join(', ');
  await a.db.exec(`CREATE DATABASE scratch`);
  await a.db.exec(`CREATE TABLE scratch.src AS SELECT * FROM app.typed`);
  for (let i = 0; i < ids.length; i++) {
    await a.db.exec(`UPDATE app.typed t JOIN scratch.src src ON src.uuid = ? SET ${assign} WHERE t.uuid = ?`, [ids[(i + 1) % ids.length], ids[i]]);
  }
  const afterA = await wireRows(a.db, catA);
  const updates = ids.map((id): Op => {
    const before = rowsA.get(id)!;
    const after = afterA.get(id)!;
    const changed = cols.filter((c) => rowDigest({ v: before[c]! }) !== rowDigest({ v: after[c]! }));
    return {
      kind: 'update', table: 'typed', id,
      set: Object.fromEntries(changed.map((c) => [c, after[c]!])), old: Object.fromEntries(changed.map((c) => [c, before[c]!])),
    };
  });
  t.match(await applier.applyBatch('a', [{ seq: '2', cs: viaWire('a', updates) }]), { applied: 1, conflicts: 0 }, 'old values match: no conflict');
  t.same(await stored(b.db), await stored(a.db), 'updated rows are stored identically');

  // deletes: the digest of A's row matches B's row exactly
  const deletes = ids.map((id): Op => ({ kind: 'delete', table: 'typed', id, digest: rowDigest(afterA.get(id)!) }));
  t.match(await applier.applyBatch('a', [{ seq: '3', cs: viaWire('a', deletes) }]), { applied: 1, conflicts: 0 }, 'digests match: no conflict');
  t.equal(await b.count('app.typed'), 0);
  t.equal(await b.count(`${STATE}.conflicts`), 0);
});

void t.test('captured on A by the real capture, applied on B: stored identically at every step', async (t) => {
  await a.db.exec('DELETE FROM app.typed');
  const capture = await makeCapture(a.server, a.db, 'app', ['typed'], { node: 'a' });
  await capture.start();
  t.teardown(() => capture.stop());
  const applier = await b.applier({ tables: new Set(['typed']), log: silentLogger, groupSize: 3 });
  let seq = (await journal(a.db)).at(-1)?.seq ?? 0;
  const step = async (what: string, conflicts = 0): Promise<void> => {
    await capture.caughtUp();
    const j = await journal(a.db, seq);
    seq = j.at(-1)?.seq ?? seq;
    // through the wire as a peer sends it: the journal body, decoded
    const r = await applier.applyBatch('a', j.map((e) => ({ seq: String(e.seq), cs: e.cs })));
    t.match(r, { applied: j.length, quarantined: 0, conflicts }, `${what}: ${j.length} change sets applied`);
    t.same(await stored(b.db), await stored(a.db), `${what}: stored identically`);
  };
  await a.db.exec(`INSERT INTO app.typed (uuid, c_bigu, c_big, c_int, c_tiny, c_small, c_med, c_bool, c_dec, c_dec0, c_float, c_double,
    c_dt, c_dt0, c_ts, c_date, c_time, c_time6, c_year, c_bit, c_bit1, c_bit5, c_enum, c_set, c_json, c_latin, c_utf8, c_text, c_vc, c_char,
    c_blob, c_lblob, c_bin, c_vbin, c_geo, c_uuid, c_inet6, c_inet4) VALUES ${ROWS.join(', ')}`);
  await a.db.exec(`UPDATE app.typed SET c_year = 0 WHERE uuid = 'mid'`);
  await step('inserts');
  const cols = (await a.db.query<{ COLUMN_NAME: string }>(
    `SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'typed' AND COLUMN_NAME NOT IN ('id', 'uuid')`,
  )).map((c) => c.COLUMN_NAME);
  const assign = cols.map((c) => `t.\`${c}\` = src.\`${c}\``).join(', ');
  await a.db.exec(`DROP TABLE IF EXISTS scratch.src`);
  await a.db.exec(`CREATE DATABASE IF NOT EXISTS scratch`);
  await a.db.exec(`CREATE TABLE scratch.src AS SELECT * FROM app.typed`);
  const ids = ['max', 'mid', 'min', 'nulls'];
  for (let i = 0; i < ids.length; i++) {
    await a.db.exec(`UPDATE app.typed t JOIN scratch.src src ON src.uuid = ? SET ${assign} WHERE t.uuid = ?`, [ids[(i + 1) % ids.length], ids[i]]);
  }
  await step('updates');
  await a.db.exec(`DELETE FROM app.typed WHERE uuid IN ('max', 'min')`);
  await step('deletes: digests of captured rows match the rows here');
  t.equal(await b.count('app.typed'), 2);
});
