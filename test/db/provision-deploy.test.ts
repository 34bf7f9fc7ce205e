// The deployment files: every example config loads with the real loader (secrets
// from the environment), has the role its name says, and names only OpenMRS
// tables that exist and can be identified; the systemd unit passes
// `systemd-analyze verify` and keeps its hardening.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../agent/config/loader.js';
import { syncedTables, unmatchedPatterns } from '../../agent/config/tables.js';
import type { Config } from '../../agent/config/types.js';
import { openDb } from '../../apply/core/db.js';
import { loadCatalog } from '../../apply/core/catalog.js';
import { loadOpenmrs, startServer } from '../../deploy/sandbox/mariadb.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const deploy = join(root, 'deploy');
const env = {
  SPOKESYNC_DB_PASSWORD: 'pw', SPOKESYNC_PARENT_TOKEN: 'parent-token',
  RWINKWAVU_TOKEN: 'rw-token', BUTARO_TOKEN: 'bu-token', MWANGE_TOKEN: 'mw-token',
};
const load = (name: string): Config => loadConfig(join(deploy, 'examples', `${name}.yaml`), env);

void t.test('example configs load and have their roles', async (t) => {
  const parent = load('parent');
  t.equal(parent.node.id, 'kigali');
  t.ok(parent.listen, 'the parent listens');
  t.notOk(parent.parent, 'the root has no parent');
  t.same(parent.children.map((c) => c.id), ['rwinkwavu', 'butaro']);
  t.equal(parent.children[0]?.token, 'rw-token', '${VAR} is read from the environment');

  const middle = load('middle');
  t.ok(middle.listen && middle.parent, 'the middle node listens and has a parent');
  t.same(middle.children.map((c) => c.id), ['mwange'], 'its child is the leaf');
  t.equal(middle.parent?.interval, 300_000);
  t.equal(middle.database.stateSchema, 'spokesync', 'defaults applied');

  const leaf = load('leaf');
  t.notOk(leaf.listen, 'a leaf opens no port');
  t.same(leaf.children, []);
  t.equal(leaf.parent?.token, 'parent-token');
  t.same([leaf.parent?.compression, leaf.parent?.batch, leaf.parent?.timeout], ['br', { records: 200, bytes: 1024 * 1024 }, 600_000],
    'a leaf on a slow link keeps the defaults, made for it');
  t.ok(parent.children.some((c) => c.id === middle.node.id) && middle.children.some((c) => c.id === leaf.node.id),
    'the three examples form one tree');

  t.throws(() => loadConfig(join(deploy, 'examples', 'leaf.yaml'), {}), { code: 'SPOKESYNC_E_CONFIG_ENV' }, 'unset secrets are named');
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-deploy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bad = join(dir, 'bad.yaml');
  await writeFile(bad, (await readFile(join(deploy, 'examples', 'leaf.yaml'), 'utf8')).replace('log: {', 'logs: {'));
  t.throws(() => loadConfig(bad, env), { code: 'SPOKESYNC_E_CONFIG' }, 'the loader really checks these files');
});

void t.test('example tables exist in OpenMRS and can be identified', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  await loadOpenmrs(s);
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const catalog = await loadCatalog(db, 'openmrs');
  for (const name of ['parent', 'middle', 'leaf']) {
    const c = load(name);
    t.same(unmatchedPatterns(c.tables.include, catalog.tables.keys()), [], `${name}: every include names a table`);
    const tables = syncedTables(c, catalog);
    t.equal(tables.length, 13, `${name}: 13 synced tables`);
    t.same(tables.filter((x) => !catalog.table(x).identity), [], `${name}: every synced table has an identity`);
    for (const d of Object.keys(c.tables.direction)) t.ok(tables.includes(d), `${name}: ${d} has a direction and syncs`);
  }
});

void t.test('the systemd unit', async (t) => {
  const unit = await readFile(join(deploy, 'spokesync.service'), 'utf8');
  for (const line of [
    'ExecStart=/usr/local/bin/spokesync run --config /etc/spokesync/spokesync.yaml', 'Restart=always',
    'StartLimitIntervalSec=0', 'RestartSec=15s', 'RestartPreventExitStatus=2', 'EnvironmentFile=/etc/spokesync/spokesync.env', 'User=spokesync', 'NoNewPrivileges=yes',
    'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'StateDirectory=spokesync', 'CapabilityBoundingSet=',
  ]) {
    t.ok(unit.split('\n').includes(line), line);
  }
  t.notOk(/^MemoryDenyWriteExecute=yes/m.test(unit), 'no W^X: node needs its JIT');
  t.notOk(/^StartLimitBurst=/m.test(unit), 'restarted forever: no start limit that gives up');
  const analyze = '/usr/bin/systemd-analyze';
  if (!existsSync(analyze)) {
    t.comment('systemd-analyze is not installed: the unit was only checked line by line');
    return;
  }
  // verify wants the ExecStart binary to exist: check a copy pointing at /bin/true.
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-unit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const copy = join(dir, 'spokesync.service');
  await writeFile(copy, unit.replace('ExecStart=/usr/local/bin/spokesync', 'ExecStart=/bin/true'));
  const r = await new Promise<{ code: number; err: string }>((resolve) => {
    execFile(analyze, ['verify', copy], (e, _out, err) => resolve({ code: e ? Number(e.code ?? 1) : 0, err }));
  });
  t.equal(r.code, 0, 'systemd-analyze verify passes');
  t.equal(r.err.trim(), '', 'and has nothing to say (no unknown or misplaced keys)');
});
