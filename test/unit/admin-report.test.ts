// The pure parts of status reporting: the report header (round trip, trimmed
// to fit, hostile values refused field by field), the alerts of status.json,
// times with their zone, which binlog events capture needs, and the admin keys.
import t from 'tap';
import { deflateRawSync } from 'node:zlib';
import { MAX_REPORT_CHARS, decodeReport, encodeReport, type ReportEntry } from '../../agent/admin/report-wire.js';
import type { NodeReport } from '../../agent/admin/report.js';
import { MAX_SCHEMA_TABLES, schemaHash, tableDigests } from '../../agent/admin/report.js';
import { CLOCK_ALERT_MS, schemaAlert, statusDoc, type StatusInput } from '../../agent/admin/status-doc.js';
import { ago, isoOf, localTime } from '../../agent/admin/time.js';
import { isNeeded } from '../../agent/capture/binlog-lag.js';
import { checkConfig, parseConfig } from '../../agent/config/loader.js';
import { configReference } from '../../agent/config/reference.js';

const NOW = Date.parse('2026-05-01T12:00:00.000Z');

function report(node: string, parent: string | null, over: Partial<NodeReport> = {}): NodeReport {
  return {
    node, parent, at: '2026-05-01T11:59:59.000Z', software: '0.1.0', stateVersion: 8, schema: { hash: 'abcdef0123456789', tables: 4 },
    capture: { running: true, position: 'mysql-bin.000001:400', behindBytes: 0, lagSeconds: 0, error: null },
    pending: { up: 0, down: 0 }, quarantined: 0, held: { count: 0, tables: [] }, conflicts: 0, conflictsUnreviewed: 0,
    lastSuccess: '2026-05-01T11:59:00.000Z', lastError: null, stateBytes: 4096, ...over,
  };
}

const history = (n: number) => Array.from({ length: n }, (_, i) => ({
  at: new Date(NOW - i * 60_000).toISOString(), durationMs: 40, bytesUp: 130, bytesDown: 140, setsUp: 0, setsDown: 1, result: 'ok',
}));

void t.test('a report goes through the header as it was', async (t) => {
  const entries: ReportEntry[] = [
    { report: report('mid', 'root', { conflicts: 12, conflictsUnreviewed: 3, schema: { hash: 'abcdef0123456789', tables: 2, byTable: { person: '0a1b2c3d', 'odd table$': 'ffffffff' } } }) },
    { report: report('leaf', 'mid'), seenAt: '2026-05-01T11:58:00.000Z', clockOffsetMs: -1200, history: history(3) },
  ];
  const enc = encodeReport(entries);
  t.match(enc, { dropped: 0, historyCut: false });
  t.match(enc.value, /^[A-Za-z0-9_-]+$/, 'a header-safe value');
  t.same(decodeReport(enc.value), { entries, bad: [] });
});

void t.test('reports of older nodes: no unreviewed count, no per-table digests; still read', async (t) => {
  const wire = (doc: unknown): string => deflateRawSync(Buffer.from(JSON.stringify(doc))).toString('base64url');
  const { conflictsUnreviewed: _u, ...old } = report('mid', 'root', { conflicts: 7 });
  const d = decodeReport(wire({ v: 1, nodes: [{ report: old }] }));
  t.same(d.bad, []);
  t.equal(d.entries[0]!.report.conflicts, 7);
  t.equal(d.entries[0]!.report.conflictsUnreviewed, null, 'unreviewed: not known');
  t.same(d.entries[0]!.report.schema, { hash: 'abcdef0123456789', tables: 4 }, 'no per-table digests');
});

void t.test('a subtree too large for one header: histories go first, then the farthest nodes, said so', async (t) => {
  const many: ReportEntry[] = [{ report: report('mid', 'root') }];
  for (let i = 0; i < 400; i++) {
    many.push({ report: report(`leaf-${i}`, 'mid', { schema: { hash: i.toString(16).padStart(16, '0'), tables: i } }), seenAt: null, clockOffsetMs: i, history: history(10) });
  }
  const enc = encodeReport(many, 4096);
  t.ok(enc.value.length <= 4096, `fits: ${enc.value.length} characters`);
  t.ok(enc.historyCut && enc.dropped > 0, `histories cut, ${enc.dropped} nodes left out`);
  const back = decodeReport(enc.value).entries;
  t.equal(back.length, many.length - enc.dropped);
  t.equal(back[0]!.report.node, 'mid', 'the sender\'s own report is always kept');
  t.same(back.map((e) => e.report.node), many.slice(0, back.length).map((e) => e.report.node), 'the nearest nodes kept, in order');
  t.ok(encodeReport(many).value.length <= MAX_REPORT_CHARS);
});

void t.test('hostile reports: refused whole when unreadable, entry by entry when malformed', async (t) => {
  const wire = (doc: unknown): string => deflateRawSync(Buffer.from(JSON.stringify(doc))).toString('base64url');
  t.throws(() => decodeReport('%%%'), /base64url/);
  t.throws(() => decodeReport(wire({ v: 2, nodes: [] })), /version 1/);
  t.throws(() => decodeReport(wire({ v: 1, nodes: [{ report: { ...report('x', null), node: 'Not An Id' } }] })), /first node: report.node is not valid/);
  // a tiny value that inflates past the limit
  t.throws(() => decodeReport(deflateRawSync(Buffer.alloc(8 * 1024 * 1024, 32)).toString('base64url')));
  const good = report('mid', 'root');
  const d = decodeReport(wire({
    v: 1, nodes: [
      { report: good },
      { report: { ...report('a', 'mid'), quarantined: -1 } },
      { report: { ...report('b', 'mid'), lastError: { at: 'yesterday', error: 'x' } } },
      { report: { ...report('c', 'mid'), held: { count: 1, tables: Array(50).fill('t') } } },
      { report: { ...report('d', 'mid'), capture: { ...good.capture, error: 'e'.repeat(10_000) } }, history: [{ ...history(1)[0], result: 'r'.repeat(5000) }] },
      'not an object',
      { report: { ...report('e', 'mid'), conflictsUnreviewed: -3 } },
      { report: report('f', 'mid', { schema: { hash: 'ab', tables: 201, byTable: Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`t${i}`, '0a1b2c3d'])) } }) },
      { report: report('g', 'mid', { schema: { hash: 'ab', tables: 1, byTable: { person: 'not hex!' } } }) },
      { report: report('h', 'mid', { schema: { hash: 'ab', tables: 1, byTable: { 'per\nson': '0a1b2c3d' } } }) },
      { report: report('i', 'mid', { schema: { hash: 'ab', tables: 1, byTable: { ['x'.repeat(65)]: '0a1b2c3d' } } }) },
      { report: { ...report('j', 'mid'), schema: { hash: 'ab', tables: 1, byTable: ['person'] } } },
    ],
  }));
  t.same(d.entries.map((e) => e.report.node), ['mid', 'd']);
  t.equal(d.entries[1]!.report.capture.error!.length, 300, 'long strings are cut');
  t.equal(d.entries[1]!.history![0]!.result.length, 300);
  t.same(d.bad, ['node 1: report.quarantined is not a count', 'node 2: report.lastError.at is not valid', 'node 3: report.held.tables is not valid', 'node 5: not an object',
    'node 6: report.conflictsUnreviewed is not a count']);
  t.equal(d.bad.length, 5, 'reasons for the first five; the per-table digests of the rest are checked one by one:');
  const one = (r: NodeReport): string[] => decodeReport(wire({ v: 1, nodes: [{ report: good }, { report: r }] })).bad as string[];
  t.same(one(report('f', 'mid', { schema: { hash: 'ab', tables: 201, byTable: Object.fromEntries(Array.from({ length: MAX_SCHEMA_TABLES + 1 }, (_, i) => [`t${i}`, '0a1b2c3d'])) } })),
    ['node 1: report.schema.byTable lists too many tables']);
  t.same(one(report('g', 'mid', { schema: { hash: 'ab', tables: 1, byTable: { person: 'not hex!' } } })), ['node 1: report.schema.byTable is not valid'], 'a digest that is not hex');
  t.same(one(report('h', 'mid', { schema: { hash: 'ab', tables: 1, byTable: { 'per\nson': '0a1b2c3d' } } })), ['node 1: report.schema.byTable is not valid'], 'a control character');
  t.same(one(report('i', 'mid', { schema: { hash: 'ab', tables: 1, byTable: { ['x'.repeat(65)]: '0a1b2c3d' } } })), ['node 1: report.schema.byTable is not valid'], 'a name too long');
  t.same(one({ ...report('j', 'mid'), schema: { hash: 'ab', tables: 1, byTable: ['person'] as unknown as Record<string, string> } }), ['node 1: report.schema.byTable is not an object']);
});

void t.test('alerts: silent, capture, quarantine, held, conflicts, schema, version, clock', async (t) => {
  const input: StatusInput = {
    self: report('root', null, { lastSuccess: null }),
    selfHistory: [], selfLastAttempt: null, selfLastResult: null,
    children: [
      { id: 'mid', lastSuccess: '2026-05-01T11:59:30.000Z', lastAttempt: '2026-05-01T11:59:30.000Z', lastResult: 'ok', history: history(2) },
      { id: 'new', lastSuccess: null, lastAttempt: null, lastResult: null, history: [] },
    ],
    stored: [
      { node: 'mid', via: 'mid', parent: 'root', report: report('mid', 'root'), seenAt: null, clockOffsetMs: 20, history: [], receivedAt: '2026-05-01T11:59:30.000Z' },
      {
        node: 'leaf', via: 'mid', parent: 'mid', seenAt: '2026-04-28T12:00:00.000Z', clockOffsetMs: CLOCK_ALERT_MS + 60_000, history: history(1),
        receivedAt: '2026-05-01T11:59:30.000Z',
        report: report('leaf', 'mid', {
          software: '0.0.9', stateVersion: 7, schema: { hash: 'ffffffffffffffff', tables: 4 }, quarantined: 2, held: { count: 1, tables: ['obs'] },
          conflicts: 12, conflictsUnreviewed: 3,
          capture: { running: false, position: null, behindBytes: null, lagSeconds: null, error: 'SPOKESYNC_E_BINLOG_PURGED: gone' },
        }),
      },
      // a node whose parent is not in the tree stays out
      { node: 'stray', via: 'mid', parent: 'nowhere', report: report('stray', 'nowhere'), seenAt: null, clockOffsetMs: null, history: [], receivedAt: '2026-05-01T11:59:30.000Z' },
    ],
    nowMs: NOW,
    silentAfterMs: 86_400_000,
  };
  const doc = statusDoc(input);
  t.same(doc.nodes.map((n) => [n.id, n.parent, n.depth]), [['root', null, 0], ['mid', 'root', 1], ['leaf', 'mid', 2], ['new', 'root', 1]]);
  const by = new Map(doc.nodes.map((n) => [n.id, n]));
  t.same(by.get('root')!.alerts, []);
  t.same(by.get('mid')!.alerts, [], 'a child seen 30 s ago: nothing');
  t.match(by.get('new')!.alerts, [{ kind: 'silent', severity: 'error', message: /no successful exchange with root known/ }]);
  t.same(by.get('leaf')!.alerts.map((a) => a.kind), ['silent', 'capture', 'quarantine', 'held', 'conflicts', 'schema', 'version', 'clock']);
  t.match(by.get('leaf')!.alerts[4], { severity: 'warning', message: '3 conflicts not reviewed yet: `spokesync conflicts --unreviewed` on leaf' }, 'unreviewed conflicts: a warning');
  t.match(by.get('leaf')!.alerts[5]!.message, /its synced tables differ from mid's \(4 tables on both/, 'older reports: the overall digest, as many tables on both');
  t.match(by.get('leaf')!.alerts[0]!.message, /^silent for 3 days: no successful exchange with mid since 2026-04-28T12:00:00.000Z/);
  t.match(by.get('leaf')!.alerts[1]!.message, /capture stopped: SPOKESYNC_E_BINLOG_PURGED/);
  t.match(by.get('leaf')!.alerts[7]!.message, /its clock is 6 min ahead of mid's/);
  t.equal(by.get('leaf')!.lastSuccess, '2026-04-28T12:00:00.000Z', 'as its parent saw it');
  t.equal(by.get('mid')!.lastSuccess, '2026-05-01T11:59:30.000Z', 'a child: as this node saw it');
});

void t.test('schema alerts: only a table both sync whose columns differ', async (t) => {
  const col = (name: string, type = 'int(11)') => ({ name, type, charset: null, nullable: false, default: null });
  const shapes = ['concept', 'encounter', 'obs', 'person', 'visit'].map((table) => ({ table, columns: [col('id'), col(`${table}_name`, 'varchar(50)')] }));
  const node = (id: string, parent: string | null, list: typeof shapes): NodeReport =>
    report(id, parent, { schema: { hash: schemaHash(list), tables: list.length, byTable: tableDigests(list) } });
  const root = node('root', null, shapes);
  t.equal(schemaAlert(node('leaf', 'root', shapes), root), null, 'the same tables');
  t.equal(schemaAlert(node('leaf', 'root', shapes.slice(1, 4)), root), null, 'a child that syncs fewer tables (exclude, direction): no alert');
  t.equal(schemaAlert(root, node('leaf', 'root', shapes.slice(0, 2))), null, 'nor one that syncs more');
  const changed = shapes.map((s) => (s.table === 'obs' ? { ...s, columns: [...s.columns, col('extra')] } : s));
  t.match(schemaAlert(node('leaf', 'root', changed), root), { kind: 'schema', severity: 'warning', message: "the columns of table obs differ from root's" }, 'a column more: named');
  t.match(schemaAlert(node('leaf', 'root', changed.slice(2)), root), { message: "the columns of table obs differ from root's" }, 'also when it syncs fewer tables');
  const all = shapes.map((s) => ({ ...s, columns: [col('id', 'bigint(20)')] }));
  t.match(schemaAlert(node('leaf', 'root', all), root), { message: "the columns of tables concept, encounter, obs and 2 more differ from root's" }, 'at most three named');
  // older reports, or one side older: the overall digests, only when both sync as many tables
  const old = (id: string, list: typeof shapes): NodeReport => report(id, 'root', { schema: { hash: schemaHash(list), tables: list.length } });
  t.equal(schemaAlert(old('leaf', shapes.slice(1)), root), null, 'fewer tables, older node: no alert');
  t.match(schemaAlert(old('leaf', changed), root), { kind: 'schema', message: /its synced tables differ from root's \(5 tables on both/ }, 'as many tables, other digest: the old alert');
  t.equal(schemaAlert(old('leaf', shapes), root), null, 'as many tables, the same digest');
  // more tables than a report lists: the listed ones are compared, then the overall digests
  const many = Array.from({ length: MAX_SCHEMA_TABLES + 5 }, (_, i) => ({ table: `t${String(i).padStart(3, '0')}`, columns: [col('id')] }));
  t.equal(Object.keys(tableDigests(many)).length, MAX_SCHEMA_TABLES, 'a report lists at most MAX_SCHEMA_TABLES');
  const bigRoot = node('root', null, many);
  t.equal(schemaAlert(node('leaf', 'root', many), bigRoot), null);
  const lastChanged = many.map((s, i) => (i === many.length - 1 ? { ...s, columns: [col('id', 'bigint(20)')] } : s));
  t.match(schemaAlert(node('leaf', 'root', lastChanged), bigRoot), { message: /its synced tables differ from root's/ }, 'a change past the listed tables: the overall digest tells');
  const firstChanged = many.map((s, i) => (i === 0 ? { ...s, columns: [col('id', 'bigint(20)')] } : s));
  t.match(schemaAlert(node('leaf', 'root', firstChanged), bigRoot), { message: "the columns of table t000 differ from root's" });
});

void t.test('times: ISO with Z from the state schema, local time with its offset, how long ago', async (t) => {
  t.equal(isoOf('2026-05-01 10:00:03.123456'), '2026-05-01T10:00:03.123Z');
  t.equal(isoOf('2026-05-01 10:00:03'), '2026-05-01T10:00:03.000Z');
  t.equal(isoOf(null), null);
  t.equal(localTime('2026-05-01T10:00:03.000Z', 120), '2026-05-01 12:00:03 +02:00');
  t.equal(localTime('2026-05-01T10:00:03.000Z', -330), '2026-05-01 04:30:03 -05:30');
  t.equal(ago('2026-05-01T11:57:00.000Z', NOW), '3 min ago');
  t.equal(ago('2026-04-28T11:00:00.000Z', NOW), '3 days ago');
  t.equal(ago('2026-05-01T12:00:30.000Z', NOW), 'in 30 s');
  t.equal(ago('2026-05-01T12:00:00.500Z', NOW), 'just now');
});

void t.test('the binlog events capture needs', async (t) => {
  const n = { schema: 'openmrs', stateSchema: 'spokesync', syncs: (x: string) => x !== 'scheduler_task' };
  t.ok(isNeeded('Table_map', 'table_id: 33 (openmrs.person)', n));
  t.notOk(isNeeded('Table_map', 'table_id: 34 (openmrs.scheduler_task)', n), 'a table that does not sync');
  t.notOk(isNeeded('Table_map', 'table_id: 35 (spokesync.checkpoint)', n), 'spokesync\'s own bookkeeping');
  t.notOk(isNeeded('Table_map', 'table_id: 36 (spokesync.peers)', n));
  t.ok(isNeeded('Table_map', 'table_id: 37 (spokesync.ledger)', n), 'the ledger names applied change sets');
  t.ok(isNeeded('Table_map', 'table_id: 38 (spokesync.carry)', n));
  t.notOk(isNeeded('Table_map', 'table_id: 39 (other.person)', n), 'another schema');
  t.ok(isNeeded('Query', 'use `openmrs`; ALTER TABLE person ADD COLUMN x INT', n), 'DDL on the application schema');
  t.ok(isNeeded('Query', 'ALTER TABLE openmrs.person ADD COLUMN x INT', n));
  t.notOk(isNeeded('Query', 'use `openmrs_spokesync`; CREATE TABLE IF NOT EXISTS x (a INT)', n), 'a schema whose name only starts the same');
  t.notOk(isNeeded('Query', 'BEGIN', n));
  t.notOk(isNeeded('Xid', 'COMMIT /* xid=9 */', n));
  t.notOk(isNeeded('Gtid', 'BEGIN GTID 0-1-5', n));
});

void t.test('the schema digest follows the shapes, not their order', async (t) => {
  const a = { table: 'a', columns: [{ name: 'x', type: 'int(11)', charset: null, nullable: false, default: null }] };
  const b = { table: 'b', columns: [] };
  t.equal(schemaHash([a, b]), schemaHash([b, a]));
  t.not(schemaHash([a, b]), schemaHash([{ ...a, columns: [{ ...a.columns[0]!, type: 'bigint(20)' }] }, b]));
  const d = tableDigests([b, a]);
  t.same(Object.keys(d), ['a', 'b'], 'per table, by name');
  t.match(d.a, /^[0-9a-f]{8}$/);
  const changed = tableDigests([{ ...a, columns: [{ ...a.columns[0]!, type: 'bigint(20)' }] }, b]);
  t.not(changed.a, d.a, 'a table\'s digest follows its columns');
  t.equal(changed.b, d.b, 'and no other table\'s');
});

const BASE = `
node: { id: clinic }
database: { host: db, user: spokesync, schema: openmrs, serverId: 7 }
tables: { include: ['*'] }
`;

void t.test('admin keys: defaults, admin.listen, the token rules', async (t) => {
  t.same(parseConfig(BASE, 'c.yaml', {}).admin, { alerts: { silentAfter: 86_400_000 } }, 'silentAfter: one day by default');
  const c = parseConfig(`${BASE}admin: { listen: '127.0.0.1:8081', token: \${T}, alerts: { silentAfter: 2h } }\n`, 'c.yaml', { T: 'a-long-admin-token-123' });
  t.same(c.admin, { listen: { host: '127.0.0.1', port: 8081 }, token: 'a-long-admin-token-123', alerts: { silentAfter: 7_200_000 } });
  t.same(parseConfig(`${BASE}admin: { listen: '[::1]:9000' }\n`, 'c.yaml', {}).admin?.listen, { host: '::1', port: 9000 });
  const problems = (text: string): string[] => checkConfig(text, 'c.yaml', { T: 'short' }).problems.map((p) => `${p.path}: ${p.message}`);
  t.match(problems(`${BASE}admin: { listen: 'localhost' }\n`), [/^admin.listen: expected host:port/]);
  t.match(problems(`${BASE}admin: { listen: '127.0.0.1:8081', token: \${T} }\n`), [/^admin.token: must be at least 16 characters/]);
  t.match(problems(`${BASE}admin: { token: 'a-long-admin-token-123' }\n`), [/^admin.token: nothing serves the admin endpoints: .*set admin.listen/]);
  t.match(problems(`${BASE}listen: { port: 8080 }\nadmin: { listen: '127.0.0.1:8080' }\n`), [/^admin.listen: is listen's address/]);
  t.match(problems(`${BASE}listen: { port: 8080 }\nchildren: [{ id: kid, token: 'a-long-admin-token-123' }]\nadmin: { token: 'a-long-admin-token-123' }\n`),
    [/^admin.token: is the same token as a child's/]);
  t.match(problems(`${BASE}admin: { alerts: { silentAfter: 10 } }\n`), [/^admin.alerts.silentAfter: expected a duration/]);
  t.notMatch(problems(`${BASE}admin: { listen: '127.0.0.1:8081', token: \${T} }\n`).join('\n'), 'short', 'the token is never quoted');
  const help = configReference();
  for (const k of ['admin.listen', 'admin.token', 'admin.alerts.silentAfter']) t.match(help, new RegExp(`\\n  ${k.replace(/\./g, '\\.')} `), `help config lists ${k}`);
});
