// The offline package as a site installs it: `npm run package`'s tarball,
// unpacked and installed into a temporary root with its install.sh, runs
// `spokesync --version` and `spokesync check` (the shipped example config and
// grants.sql, against a real server) on its own Node.js runtime, with no other
// Node.js on PATH. Installing again keeps the config, secrets and an edited unit.
import t from 'tap';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadOpenmrs, mariadbBinary, startServer } from '../../deploy/sandbox/mariadb.js';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
const name = `spokesync-${version}-linux-x64`;

interface Run { code: number | null; out: string }
function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
    p.stdin.end(input ?? '');
  });
}

void t.test('the package installs into a root and runs check on its own runtime', async (t) => {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'spokesync-package-test-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  // the builder's environment, less the test runner's loader
  const builderEnv = { ...process.env };
  delete builderEnv.NODE_OPTIONS;
  const built = await run(process.execPath, [join(repo, 'dist/deploy/package.js'), '--out', work], builderEnv);
  t.equal(built.code, 0, 'the package builds', { output: built.out });
  t.comment(built.out.trim());
  const tarball = join(work, `${name}.tar.gz`);
  t.match(built.out, `${tarball}: `);
  t.ok(statSync(tarball).size < 60e6, `under 60 MB (${(statSync(tarball).size / 1e6).toFixed(1)} MB)`);

  // only the program, its production dependencies and what a site needs
  const list = (await run('tar', ['-tzf', tarball], process.env)).out.split('\n').map((l) => l.replace(`${name}/`, ''));
  for (const f of ['install.sh', 'bin/spokesync', 'node/bin/node', 'dist/agent/main.js', 'node_modules/mysql2/package.json',
    'deploy/spokesync.service', 'deploy/spokesync.env.example', 'deploy/examples/leaf.yaml', 'deploy/README.md',
    'mysql-conf/grants.sql', 'mysql-conf/spokesync.cnf', 'README.md']) t.ok(list.includes(f), `ships ${f}`);
  for (const prefix of ['dist/test/', 'dist/deploy/', 'node_modules/tap/', 'node_modules/typescript/', 'node_modules/xmlbuilder2/']) {
    t.notOk(list.some((l) => l.startsWith(prefix)), `leaves out ${prefix}`);
  }
  t.notOk(list.some((l) => l.startsWith('dist/') && l.endsWith('.map')), 'no source maps of the program (its sources are not shipped)');

  // into a test root: no user, no systemctl
  await run('tar', ['-xzf', tarball, '-C', work], process.env);
  // spokesync runs with a PATH that holds no Node.js: the wrapper's own tools only
  const bare = join(work, 'bare-bin');
  mkdirSync(bare);
  for (const tool of ['sh', 'readlink', 'dirname']) symlinkSync(`/usr/bin/${tool}`, join(bare, tool));
  const sysPath = '/usr/sbin:/usr/bin:/sbin:/bin';
  const root = join(work, 'root');
  const install = (): Promise<Run> => run(join(work, name, 'install.sh'), ['--root', root], { PATH: sysPath });
  const first = await install();
  t.equal(first.code, 0, 'install.sh exits 0', { output: first.out });
  t.match(first.out, /skipped creating the system user spokesync and systemctl \(installing under /);
  const etc = join(root, 'etc/spokesync');
  t.equal(statSync(join(etc, 'spokesync.env')).mode & 0o777, 0o600, 'the env file is root-only');
  t.equal(readFileSync(join(etc, 'spokesync.yaml'), 'utf8'), readFileSync(join(repo, 'deploy/examples/leaf.yaml'), 'utf8'));
  t.ok(existsSync(join(root, 'etc/systemd/system/spokesync.service')), 'the unit is installed');
  t.equal(readlinkSync(join(root, 'usr/local/bin/spokesync')), '/opt/spokesync/bin/spokesync');
  t.notOk(existsSync(join(root, 'opt/spokesync.new')) || existsSync(join(root, 'opt/spokesync.old')), 'no copy left beside it');

  const bin = join(root, 'opt/spokesync/bin/spokesync');
  t.match((await run(join(root, 'opt/spokesync/node/bin/node'), ['--version'], {})).out, /^v24\./, 'the bundled runtime is Node.js 24');
  const v = await run(bin, ['--version'], { PATH: bare });
  t.same(v, { code: 0, out: `spokesync ${version}\n` }, '--version on the bundled runtime');

  // the shipped example config and grants.sql, against a real server, loading the env file as the README says
  const s = await startServer({ extraArgs: ['--binlog-expire-logs-seconds=1209600'] });
  t.teardown(() => s.stop());
  await loadOpenmrs(s);
  const grants = `SET @spokesync_password = 'package-test-pw';\n${readFileSync(join(root, 'opt/spokesync/mysql-conf/grants.sql'), 'utf8')}`;
  const granted = await run(mariadbBinary('mariadb'), ['-h127.0.0.1', `-P${s.port}`, '-uroot'], { PATH: sysPath }, grants);
  t.equal(granted.code, 0, 'grants.sql runs', { output: granted.out });
  const config = join(etc, 'spokesync.yaml');
  writeFileSync(config, readFileSync(config, 'utf8').replace('  host: 127.0.0.1\n', `  host: 127.0.0.1\n  port: ${s.port}\n`));
  const envFile = join(etc, 'spokesync.env');
  writeFileSync(envFile, readFileSync(envFile, 'utf8').replace('SPOKESYNC_DB_PASSWORD=change-me', 'SPOKESYNC_DB_PASSWORD=package-test-pw'));
  const check = await run('/bin/sh', ['-c', 'set -a; . "$1"; set +a; exec "$2" check --config "$3"', 'sh', envFile, bin, config], { PATH: bare });
  t.equal(check.code, 0, 'check passes', { output: check.out });
  t.match(check.out, /no problems: this server is ready for spokesync\n$/);

  // again, over the installed one: an upgrade keeps what the site wrote
  const kept = { config: readFileSync(config), env: readFileSync(envFile) };
  const unit = join(root, 'etc/systemd/system/spokesync.service');
  appendFileSync(unit, '# edited on this site\n');
  const second = await install();
  t.equal(second.code, 0, 'installs again', { output: second.out });
  t.same({ config: readFileSync(config), env: readFileSync(envFile) }, kept, 'config and env file untouched');
  t.match(readFileSync(unit, 'utf8'), /# edited on this site\n$/, 'an edited unit is kept');
  t.match(second.out, /kept .*spokesync\.yaml \(exists;/);
  t.match(second.out, /kept .*spokesync\.service \(edited here;/);
  t.same(await run(bin, ['--version'], { PATH: bare }), v, 'the upgraded program runs');

  // a prefix holding something else is refused, and left as it was
  mkdirSync(join(root, 'srv/data'), { recursive: true });
  writeFileSync(join(root, 'srv/data/keep.txt'), 'site data');
  const refused = await run(join(work, name, 'install.sh'), ['--root', root, '--prefix', '/srv/data'], { PATH: sysPath });
  t.equal(refused.code, 1);
  t.match(refused.out, /srv\/data exists and is not a spokesync install: choose another --prefix/);
  t.equal(readFileSync(join(root, 'srv/data/keep.txt'), 'utf8'), 'site data');
  t.comment(`package test: ${((Date.now() - started) / 1000).toFixed(0)} s`);
});
