// Type edges of capture, for both of its decoders (its own row decoder and
// zongji's values): every value captured equals what SELECT returns, byte for
// byte, in insert, update and delete images. Negative TIME over the whole range
// and every fsp; every column type stored after a spatial, BLOB, TEXT, JSON or
// BIT column; INVISIBLE columns (an invisible uuid among them).
import t from 'tap';
import { rowDigest } from '../../apply/codec/digest.js';
import type { Op, Row, Value } from '../../apply/core/model.js';

import { binlogEnd } from '../../agent/capture/binlog-server.js';
import type { Db } from '../../apply/core/db.js';
import { appServer, fromSelect, journal, makeCapture, sameCanonical, show } from '../helpers/capture-fixture.js';

interface TableCase {
  readonly name: string;
  /** column definitions after `id` (the table's uuid among them) */
  readonly cols: readonly string[];
  /** one INSERT … SELECT or INSERT … VALUES statement per batch of rows */
  readonly fill: readonly string[];
  /** SET clause of an update of every row that changes every value */
  readonly update: string;
  /** the visible and invisible columns a SELECT names (SELECT * leaves out invisible ones) */
  readonly select: readonly string[];
}

const FSP = [0, 1, 2, 3, 4, 5, 6];
const TIME_COLS = FSP.map((f) => `t${f}`);

/** Every hour, minute and second edge, with and without fractions, of both signs. */
function timeTexts(): string[] {
  const out = new Set<string>(['00:00:00', '-00:00:00.000001', '00:00:00.000001', '-838:59:59', '838:59:59', '-838:59:58.999999', '838:59:58.999999']);
  for (const h of [0, 1, 9, 12, 23, 24, 99, 100, 512, 837]) {
    for (const m of [0, 1, 30, 59]) {
      for (const s of [0, 1, 59]) {
        for (const f of ['', '.5', '.05', '.000001', '.999999', '.123456', '.000100']) {
          const v = `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}${f}`;
          out.add(v);
          out.add(`-${v}`);
        }
      }
    }
  }
  return [...out];
}

const SPATIAL: Record<string, string> = {
  POINT: 'POINT(1 2)', GEOMETRY: 'POINT(-1.5 2.25)', LINESTRING: 'LINESTRING(0 0, 1 1, 2 3)',
  POLYGON: 'POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))', MULTIPOINT: 'MULTIPOINT(1 1, 2 2)', GEOMETRYCOLLECTION: 'GEOMETRYCOLLECTION(POINT(1 1))',
};
/** Columns that come before the columns under test, with a value of each. */
const BEFORE: Record<string, [string, string]> = {
  ...Object.fromEntries(Object.entries(SPATIAL).map(([k, v]) => [k.toLowerCase(), [`${k} NULL`, `ST_GeomFromText('${v}')`]])),
  blob: ['BLOB NULL', "x'00ff00'"], text: ['TEXT NULL', "'a text'"], json: ['JSON NULL', `'{"a": 1}'`], bit: ['BIT(10) NULL', 'b\'1010101010\''],
};
/** The columns stored after: every kind of type. */
const AFTER: Record<string, [string, string]> = {
  uuid: ['CHAR(38) NOT NULL UNIQUE', "CONCAT('u-', n)"],
  c4l: ['CHAR(4) CHARACTER SET latin1 NULL', "'ij'"], c4u: ['CHAR(4) CHARACTER SET utf8mb4 NULL', "'ij'"],
  vcl: ['VARCHAR(10) CHARACTER SET latin1 NULL', "CONCAT('é', n)"], vcu: ['VARCHAR(300) NULL', "CONCAT('é', n)"],
  tx: ['TEXT NULL', "'x'"], b4: ['BINARY(4) NULL', "x'0102'"], vb: ['VARBINARY(8) NULL', "x'0102'"],
  u: ['UUID NULL', "'00000000-0000-0000-0000-000000000001'"], i6: ['INET6 NULL', "'::1'"],
  i: ['INT NULL', 'n'], d: ['DECIMAL(7,2) NULL', '-1.25'], f: ['DOUBLE NULL', '0.5'], tm: ['TIME(2) NULL', "'-12:00:00'"],
  dt: ['DATETIME(3) NULL', "'2026-01-02 03:04:05.678'"], en: ["ENUM('a','b') NULL", "'b'"], st: ["SET('a','b') NULL", "'a,b'"],
  bt: ['BIT(3) NULL', 'b\'101\''], js: ['JSON NULL', "'[1]'"], g: ['POINT NULL', "ST_GeomFromText('POINT(3 4)')"],
};

function cases(): TableCase[] {
  const out: TableCase[] = [];
  const times = timeTexts();
  out.push({
    name: 'times',
    cols: ['uuid CHAR(38) NOT NULL UNIQUE', ...FSP.map((f) => `t${f} TIME${f ? `(${f})` : ''} NULL`)],
    fill: [`INSERT INTO app.times (uuid, ${TIME_COLS.join(', ')}) VALUES ${times.map((v, n) => `('tm${n}', ${TIME_COLS.map(() => `'${v}'`).join(', ')})`).join(', ')}`],
    update: TIME_COLS.map((c) => `${c} = IF(${c} IS NULL, '01:00:00', -${c})`).join(', '),
    select: ['uuid', ...TIME_COLS],
  });
  // a table of TIME and what the row decoder takes only, and one with a DECIMAL: zongji decodes it
  out.push({
    name: 'times_z',
    cols: ['uuid CHAR(38) NOT NULL UNIQUE', 'dz DECIMAL(5,1) NULL', 't0 TIME NULL', 't6 TIME(6) NULL'],
    fill: [`INSERT INTO app.times_z (uuid, t0, t6) SELECT CONCAT('z', uuid), t0, t6 FROM app.times`],
    update: "t0 = -t0, t6 = IF(t6 IS NULL, '-00:00:00.000001', -t6)",
    select: ['uuid', 'dz', 't0', 't6'],
  });
  for (const [before, [type, value]] of Object.entries(BEFORE)) {
    const after = Object.keys(AFTER);
    const name = `after_${before}`;
    out.push({
      name,
      cols: [`pre ${type}`, ...after.map((c) => `${c} ${AFTER[c]![0]}`)],
      fill: [`INSERT INTO app.${name} (pre, ${after.join(', ')}) SELECT ${value}, ${after.map((c) => AFTER[c]![1]).join(', ')} FROM (SELECT 1 AS n UNION SELECT 2 UNION SELECT 3) s`,
        `INSERT INTO app.${name} (pre, uuid) VALUES (NULL, 'nulls')`],
      update: "c4l = 'kl', c4u = 'é', vcl = 'ü', vcu = '', tx = '', b4 = x'ff', vb = x'', u = '00000000-0000-0000-0000-0000000000ff', i6 = '::ffff:1.2.3.4', " +
        "i = -1, d = 5, f = -0.25, tm = '-00:01:00', dt = '1999-12-31 23:59:59.999', en = 'a', st = '', bt = b'010', js = 'null', g = ST_GeomFromText('POINT(0 0)'), pre = NULL",
      select: ['pre', ...after],
    });
  }
  out.push({
    name: 'invisible',
    cols: ["uuid CHAR(38) NOT NULL DEFAULT '' UNIQUE INVISIBLE", 'v VARCHAR(10) NULL', 'hid INT NULL INVISIBLE', 'tail CHAR(3) NULL'],
    fill: ["INSERT INTO app.invisible (uuid, v, hid, tail) VALUES ('iv1', 'a', 1, 'x'), ('iv2', NULL, NULL, NULL), ('iv3', 'c', -3, 'zz')"],
    update: "v = CONCAT(COALESCE(v, ''), '!'), hid = COALESCE(hid, 0) + 10, tail = 'y'",
    select: ['uuid', 'v', 'hid', 'tail'],
  });
  return out;
}

async function rows(db: Db, c: TableCase): Promise<Map<string, Row>> {
  const out = new Map<string, Row>();
  const list = c.select.map((x) => `\`${x}\``).join(', ');
  for (const r of await db.query<Record<string, unknown>>(`SELECT ${list} FROM app.${c.name}`)) {
    out.set(String(r.uuid), Object.fromEntries(Object.entries(r).map(([k, v]) => [k, fromSelect(v)])));
  }
  return out;
}

void t.test('type edges: both decoders capture what SELECT returns, in inserts, updates and deletes', async (t) => {
  const { s, db } = await appServer(t);
  const all = cases();
  for (const c of all) await db.exec(`CREATE TABLE app.${c.name} (id INT AUTO_INCREMENT PRIMARY KEY, ${c.cols.join(', ')}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
  const start = (await binlogEnd(db)).position;
  const raw = await s.connect('app');
  await raw.query("SET SESSION sql_mode = '', time_zone = '+00:00'");
  for (const c of all) for (const sql of c.fill) await raw.query(sql);
  const inserted = new Map(await Promise.all(all.map(async (c) => [c.name, await rows(db, c)] as const)));
  for (const c of all) await raw.query(`UPDATE app.${c.name} SET ${c.update}`);
  const updated = new Map(await Promise.all(all.map(async (c) => [c.name, await rows(db, c)] as const)));
  for (const c of all) await raw.query(`DELETE FROM app.${c.name}`);
  const end = (await binlogEnd(db)).position;

  for (const rowDecoder of [false, true]) {
    const state = rowDecoder ? 'ss_rows' : 'ss_zongji';
    const cap = await makeCapture(s, db, 'app', all.map((c) => c.name), { rowDecoder, stateSchema: state, startAt: start });
    await cap.start();
    await cap.caughtUp();
    t.equal(cap.status().running, true, 'capture runs');
    t.notOk(cap.status().error, `no capture error (${cap.status().error ?? ''})`);
    t.same(cap.status().file === end.file && cap.status().pos >= end.pos, true, 'capture reached the end of the writes');
    // app.times has only types the row decoder reads: its images (insert, update before and after, delete) go through it
    if (rowDecoder) t.ok(cap.rowsDecoded() >= 4 * timeTexts().length, `${cap.rowsDecoded()} images read by the row decoder`);
    await cap.stop();
    const ops: Op[] = (await journal(db, 0, state)).flatMap((e) => [...e.cs.ops]);
    for (const c of all) {
      const before = inserted.get(c.name)!;
      const after = updated.get(c.name)!;
      const wrong: string[] = [];
      const check = (what: string, got: Value | undefined, want: Value | undefined): void => {
        if (!sameCanonical(got ?? null, want ?? null)) wrong.push(`${what}: got ${show(got ?? null)} want ${show(want ?? null)}`);
      };
      const mine = ops.filter((o) => o.table === c.name);
      const count = { insert: 0, update: 0, delete: 0 };
      for (const op of mine) {
        count[op.kind]++;
        if (op.kind === 'insert') for (const col of c.select) check(`insert ${op.id}.${col}`, op.row[col], before.get(op.id)?.[col]);
        if (op.kind === 'update') {
          for (const col of Object.keys(op.set)) {
            check(`update ${op.id}.${col}`, op.set[col], after.get(op.id)?.[col]);
            check(`update ${op.id}.${col} (old)`, op.old[col], before.get(op.id)?.[col]);
          }
        }
        if (op.kind === 'delete' && op.digest !== rowDigest(after.get(op.id) ?? {})) wrong.push(`delete ${op.id}: digest is not that of the row SELECT gave`);
      }
      t.same(count.insert, before.size, `${c.name} (${state}): every row inserted`);
      t.same(count.delete, before.size, `${c.name} (${state}): every row deleted`);
      t.ok(count.update > 0, `${c.name} (${state}): updates captured`);
      t.same(wrong.slice(0, 8), [], `${c.name} (${state}): ${wrong.length} values differ from SELECT`);
    }
  }
});
