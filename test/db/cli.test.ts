import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventEmitter } from 'node:events';
import { runCli, formatError, type CliIo } from '../../agent/cli/dispatch.js';
import { handleSignals } from '../../agent/cli/signals.js';
import { commandHelp, mainHelp, wrap } from '../../agent/cli/help.js';
import type { CommandContext, CommandSpec } from '../../agent/cli/command.js';
import { SpokesyncError } from '../../apply/core/errors.js';

const main = fileURLToPath(new URL('../../agent/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'spokesync-cli-'));
const good = join(dir, 'good.yaml');
writeFileSync(good, `
node: { id: cli-test }
database: { host: 127.0.0.1, port: 1, user: u, password: \${PW:-x}, schema: app, serverId: 9 }
tables: { include: ['*'] }
log: { level: debug }
`);

function io(over: Partial<CliIo> = {}): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { stdout: (x) => out.push(x), stderr: (x) => err.push(x), env: {}, signal: new AbortController().signal, out, err, ...over };
}

let seen: CommandContext | undefined;
const fake = (over: Partial<CommandSpec> = {}): CommandSpec => ({
  name: 'demo',
  summary: 'A demo command',
  description: 'Does nothing but report what it was given.',
  options: { out: { type: 'string', arg: 'FILE', help: 'where to write' }, json: { type: 'boolean', help: 'as JSON' } },
  needsConfig: true,
  async run(ctx) {
    seen = ctx;
    ctx.log.debug('running');
    ctx.out('done');
    return 0;
  },
  ...over,
});

void t.test('a command gets the config, its options, a logger at the config level and out', async (t) => {
  const x = io();
  t.equal(await runCli(['demo', '--config', good, '--out', 'f.xml', '--json'], { ...x, commands: [fake()] }), 0);
  t.equal(seen?.config.node.id, 'cli-test');
  t.same(seen?.options, { out: 'f.xml', json: true }, 'only its own options');
  t.same(x.out, ['done']);
  t.equal(x.err.length, 1, 'the debug line went to stderr');
  t.match(JSON.parse(x.err[0]!), { level: 'debug', msg: 'running', command: 'demo', node: 'cli-test' });

  const d = io();
  await runCli(['demo', '-c', good], { ...d, commands: [fake({ logTo: 'stdout' })] });
  t.equal(d.out.length, 2, 'a daemon logs to stdout');
});

void t.test('exit codes and messages', async (t) => {
  const cases: Array<[string, string[], Partial<CommandSpec>, number, RegExp]> = [
    ['unknown command', ['demi'], {}, 2, /^spokesync: unknown command "demi" \(did you mean demo\?\)/],
    ['unknown option', ['demo', '--config', good, '--jsn'], {}, 2, /unknown option --jsn for spokesync demo \(did you mean --json\?\)/],
    ['stray argument', ['demo', '--config', good, 'extra'], {}, 2, /unexpected argument "extra"/],
    ['missing --config', ['demo'], {}, 2, /the demo command needs --config FILE/],
    ['option value missing', ['demo', '--config'], {}, 2, /--config/],
    ['required option', ['demo', '--config', good], { options: { out: { type: 'string', arg: 'FILE', help: 'x', required: true } } }, 2, /needs --out FILE/],
    ['global option before the command', ['--frob', 'demo'], {}, 2, /unknown option --frob/],
    ['command fails', ['demo', '--config', good], { run: () => Promise.resolve(1) }, 1, /^$/],
    ['typed failure', ['demo', '--config', good], { run: () => Promise.reject(new SpokesyncError('SPOKESYNC_E_HTTP', 'parent unreachable')) }, 1,
      /^spokesync: parent unreachable\n {2}fix: The parent could not be reached.*\(SPOKESYNC_E_HTTP\)$/],
    ['bug', ['demo', '--config', good], { run: () => Promise.reject(new TypeError('x is undefined')) }, 1,
      /^spokesync: unexpected error: x is undefined\n {2}fix: run again with --debug/],
  ];
  for (const [what, argv, over, code, err] of cases) {
    const x = io();
    t.equal(await runCli(argv, { ...x, commands: [fake(over)] }), code, what);
    t.match(x.err.join('\n'), err, what);
    t.notMatch(x.err.join('\n'), /\n\s+at /, `${what}: no stack trace`);
  }
});

void t.test('--debug and SPOKESYNC_DEBUG=1 print the stack and causes', async (t) => {
  const boom = (): Promise<number> => Promise.reject(new SpokesyncError('SPOKESYNC_E_APPLY', 'apply failed', { cause: new Error('deadlock') }));
  for (const [argv, env] of [[['demo', '--config', good, '--debug'], {}], [['demo', '--config', good], { SPOKESYNC_DEBUG: '1' }]] as const) {
    const x = io({ env });
    t.equal(await runCli(argv, { ...x, commands: [fake({ run: boom })] }), 1);
    t.match(x.err.join('\n'), /spokesync: apply failed\n {2}fix: .*\nSpokesyncError: apply failed\n\s+at .*\ncaused by: Error: deadlock/s);
  }
});

void t.test('a database connection lost under a command is named as such, exit 1', async (t) => {
  const lost = (): Promise<number> => Promise.reject(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', fatal: true }));
  const x = io();
  t.equal(await runCli(['demo', '--config', good], { ...x, commands: [fake({ run: lost })] }), 1);
  t.match(x.err.join('\n'), /spokesync: the connection to the database failed or was lost \(ECONNRESET\): read ECONNRESET\n {2}fix: .*\(SPOKESYNC_E_DB_CONNECT\)/);
  t.notMatch(x.err.join('\n'), /unexpected error/);
});

void t.test('config errors exit 2 and name the key', async (t) => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'node: { id: n }\ndatabase: { host: h, user: u, schema: s, serverId: 1, prot: 3 }\ntables: { include: [a] }\n');
  const x = io();
  t.equal(await runCli(['demo', '--config', bad], { ...x, commands: [fake()] }), 2);
  t.match(x.err[0], `spokesync: ${bad}: database.prot: unknown key (did you mean port?)`);
  t.match(x.err[0], /\(SPOKESYNC_E_CONFIG\)$/);
});

void t.test('a stop signal aborts the command; it exits 128 + signal', async (t) => {
  const ac = new AbortController();
  const x = io({ signal: ac.signal });
  const waits = fake({
    run: (ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error))),
  });
  const target = new EventEmitter();
  const exits: number[] = [];
  const unhook = handleSignals(ac, { target, exit: (c) => exits.push(c), notice: (m) => x.err.push(m) });
  const running = runCli(['demo', '--config', good], { ...x, commands: [waits] });
  await new Promise((r) => setTimeout(r, 10));
  target.emit('SIGTERM');
  t.equal(await running, 143);
  t.match(x.err.join('\n'), /SIGTERM received, stopping; send it again to exit at once\nspokesync: stopped by SIGTERM/);
  t.same(exits, []);
  target.emit('SIGINT');
  t.same(exits, [130], 'a second signal exits at once');
  unhook();
  t.equal(target.listenerCount('SIGTERM'), 0);
});

void t.test('help text comes from the specs', async (t) => {
  const h = mainHelp('1.2.3', [fake()]);
  t.match(h, /spokesync 1\.2\.3/);
  t.match(h, /\n {2}demo {4,}A demo command\n/);
  const c = commandHelp(fake({ options: { out: { type: 'string', arg: 'FILE', help: 'where', required: true }, json: { type: 'boolean', help: 'j' } } }));
  t.match(c, /^Usage: spokesync demo --config FILE --out FILE \[--json\]\n/);
  t.match(c, /--out FILE\s+where \(required\)/);
  t.equal(wrap('a '.repeat(100).trim(), 20).split('\n').every((l) => l.length <= 20), true);
  t.equal(formatError(new SpokesyncError('SPOKESYNC_E_USAGE', 'one\ntwo'), false).split('\n').length, 3);
});

// The real binary: no database needed for these.
function spokesync(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

void t.test('spokesync binary: help, version, usage and config errors', async (t) => {
  const help = spokesync(['--help']);
  t.equal(help.code, 0);
  t.match(help.out, /Usage: spokesync <command> --config FILE/);
  t.match(help.out, /\n {2}check\s+Preflight of the server, grants and tables/);

  const checkHelp = spokesync(['check', '--help']);
  t.equal(checkHelp.code, 0);
  t.match(checkHelp.out, /^Usage: spokesync check --config FILE \[--json\]/);
  t.match(checkHelp.out, /binlog_row_metadata=FULL/);

  t.match(spokesync(['help', 'config']).out, /parent\.interval\s+.*default 5m/);
  t.match(spokesync(['--version']), { code: 0, out: /^spokesync \d+\.\d+\.\d+\n$/ });

  const none = spokesync([]);
  t.equal(none.code, 2, 'no command: usage');
  t.match(none.err, /Usage:/);

  const unknown = spokesync(['frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.err, /^spokesync: unknown command "frobnicate"; commands: [a-z, ]*check/);
  t.match(unknown.err, /fix: .*\(SPOKESYNC_E_USAGE\)/);

  const noConfig = spokesync(['check']);
  t.equal(noConfig.code, 2);
  t.match(noConfig.err, /needs --config FILE/);

  const typo = join(dir, 'typo.yaml');
  writeFileSync(typo, 'node: { id: n }\ndatabase: { host: h, user: u, schema: s, serverId: 1 }\ntables: { inlcude: [a] }\n');
  const t1 = spokesync(['check', '--config', typo]);
  t.equal(t1.code, 2);
  t.match(t1.err, `spokesync: ${typo}: tables.inlcude: unknown key (did you mean include?)`);
  t.notMatch(t1.err, /\n\s+at /, 'no stack trace');

  const envFile = join(dir, 'env.yaml');
  writeFileSync(envFile, 'node: { id: n }\ndatabase: { host: h, user: u, password: ${NOT_SET_PW}, schema: s, serverId: 1 }\ntables: { include: [a] }\n');
  const e1 = spokesync(['check', '--config', envFile]);
  t.equal(e1.code, 2);
  t.match(e1.err, `spokesync: ${envFile}: database.password: environment variable NOT_SET_PW is not set`);
  t.match(e1.err, /SPOKESYNC_E_CONFIG_ENV/);
  t.equal(spokesync(['check', '--config', envFile, '--json'], { NOT_SET_PW: 'p' }).code, 1, 'set: it runs (and cannot connect)');

  const missing = spokesync(['check', '--config', join(dir, 'nope.yaml')]);
  t.equal(missing.code, 2);
  t.match(missing.err, /nope\.yaml: cannot read the config file \(ENOENT\)/);
});
