// Logs for people and machines: JSON lines by default (services), readable text
// lines on a terminal, chosen by log.format (auto, text, json) or
// SPOKESYNC_LOG_FORMAT, through the one logger of apply/core/log.ts.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliIo } from '../../agent/cli/dispatch.js';
import type { CommandSpec } from '../../agent/cli/command.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { createLogger, logFormat, textLine } from '../../apply/core/log.js';

const TIME = new Date('2026-03-01T12:02:03.456Z');
/** The local time text of TIME, as the text format writes it, with its offset. */
const LOCAL = /^2026-03-0[12] \d\d:\d\d:03\.456(Z|[+-]\d\d:\d\d) /;

void t.test('a text line: time with its offset, level, message, then key=value fields', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ format: 'text', write: (l) => lines.push(l), now: () => TIME, base: { node: 'kigali' } });
  log.info('exchange done', { peer: 'rwinkwavu', sent: 3, ok: true, gone: undefined, none: null });
  log.warn('parent unreachable', { url: 'http://10.0.0.1:8080/v1/exchange', reason: 'connect ECONNREFUSED 10.0.0.1:8080', tries: 5n });
  log.error('apply failed', { err: new SpokesyncError('SPOKESYNC_E_APPLY', 'row locked'), tables: ['person', 'obs'], at: { file: 'b.000001', pos: 4 } });
  log.debug('dropped below the level');
  log.child({ peer: 'butaro' }).info('two\nlines', { empty: '', quote: 'say "hi"' });
  t.equal(lines.length, 4, 'debug is below info');
  for (const l of lines) t.match(l, LOCAL, 'starts with the local time and its zone');
  const rest = lines.map((l) => l.replace(LOCAL, ''));
  t.equal(rest[0], 'INFO  exchange done node=kigali peer=rwinkwavu sent=3 ok=true none=null');
  t.equal(rest[1], 'WARN  parent unreachable node=kigali url=http://10.0.0.1:8080/v1/exchange reason="connect ECONNREFUSED 10.0.0.1:8080" tries=5');
  t.equal(rest[2], 'ERROR apply failed node=kigali err="row locked (SPOKESYNC_E_APPLY)" tables=["person","obs"] at={"file":"b.000001","pos":4}');
  t.equal(rest[3], 'INFO  two \u21b5 lines node=kigali peer=butaro empty="" quote="say \\"hi\\""', 'one record, one line');
  t.notOk(lines.some((l) => l.startsWith('{')), 'no JSON');
});

void t.test('the time is local, with its offset', async (t) => {
  const tz = process.env.TZ;
  t.teardown(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });
  process.env.TZ = 'Africa/Kigali';
  t.match(textLine(TIME, 'info', 'm', {}), /^2026-03-01 14:02:03\.456\+02:00 INFO {2}m$/);
  process.env.TZ = 'UTC';
  t.match(textLine(TIME, 'info', 'm', {}), /^2026-03-01 12:02:03\.456Z INFO {2}m$/);
  process.env.TZ = 'America/St_Johns';
  t.match(textLine(TIME, 'info', 'm', {}), /^2026-03-01 08:32:03\.456-03:30 INFO {2}m$/);
});

void t.test('JSON lines stay the default and are unchanged', async (t) => {
  const lines: string[] = [];
  createLogger({ write: (l) => lines.push(l), now: () => TIME }).info('hello', { n: 1n, e: new Error('boom') });
  t.same(JSON.parse(lines[0]!), { time: '2026-03-01T12:02:03.456Z', level: 'info', msg: 'hello', n: '1', e: { name: 'Error', message: 'boom' } });
});

void t.test('auto is text on a terminal and JSON elsewhere; text and json are taken as they are', async (t) => {
  t.equal(logFormat(undefined, false), 'json');
  t.equal(logFormat('auto', false), 'json');
  t.equal(logFormat('auto', true), 'text');
  t.equal(logFormat(undefined, true), 'text');
  t.equal(logFormat('json', true), 'json');
  t.equal(logFormat('text', false), 'text');
});

void t.test('the command line picks the format from the terminal, log.format and SPOKESYNC_LOG_FORMAT', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spokesync-log-'));
  const config = (format?: string): string => {
    const file = join(dir, `${format ?? 'none'}.yaml`);
    writeFileSync(file, `node: { id: n1 }
database: { host: 127.0.0.1, port: 1, user: u, schema: app, serverId: 9 }
tables: { include: ['*'] }
${format === undefined ? '' : `log: { format: ${format} }\n`}`);
    return file;
  };
  const say = (logTo: 'stdout' | 'stderr'): CommandSpec => ({
    name: 'say', summary: 'Logs one line', description: 'Logs one line.', options: {}, needsConfig: true, logTo,
    async run(ctx) {
      ctx.log.info('said', { k: 'v' });
      return 0;
    },
  });
  const run = async (file: string, over: Partial<CliIo> & { logTo?: 'stdout' | 'stderr' } = {}): Promise<{ code: number; out: string[]; err: string[] }> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(['say', '--config', file], {
      stdout: (x) => out.push(x), stderr: (x) => err.push(x), env: {}, signal: new AbortController().signal,
      commands: [say(over.logTo ?? 'stderr')], ...over,
    });
    return { code, out, err };
  };
  const isJson = (l: string | undefined): boolean => l !== undefined && l.startsWith('{"time":');
  const isText = (l: string | undefined): boolean => l !== undefined && /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) INFO {2}said command=say node=n1 k=v$/.test(l);

  t.ok(isJson((await run(config())).err[0]), 'not a terminal: JSON lines');
  t.ok(isText((await run(config(), { terminal: { stderr: true } })).err[0]), 'a terminal: text');
  t.ok(isJson((await run(config(), { terminal: { stdout: true } })).err[0]), 'the log goes to stderr: stdout being a terminal does not count');
  t.ok(isText((await run(config(), { logTo: 'stdout', terminal: { stdout: true } })).out[0]), 'the daemon logs to stdout: its terminal counts');
  t.ok(isJson((await run(config('json'), { terminal: { stderr: true } })).err[0]), 'log.format: json on a terminal');
  t.ok(isText((await run(config('text'))).err[0]), 'log.format: text into a pipe');
  t.ok(isJson((await run(config('text'), { env: { SPOKESYNC_LOG_FORMAT: 'json' } })).err[0]), 'the variable overrides the config');
  t.ok(isText((await run(config('json'), { env: { SPOKESYNC_LOG_FORMAT: 'text' } })).err[0]));
  t.ok(isJson((await run(config('text'), { env: { SPOKESYNC_LOG_FORMAT: 'auto' } })).err[0]), 'auto from the variable: not a terminal');
  t.ok(isText((await run(config('text'), { env: { SPOKESYNC_LOG_FORMAT: '' } })).err[0]), 'an empty variable counts as unset');

  const bad = await run(config(), { env: { SPOKESYNC_LOG_FORMAT: 'pretty' } });
  t.equal(bad.code, 2, 'a bad SPOKESYNC_LOG_FORMAT: exit 2');
  t.match(bad.err.join('\n'), /SPOKESYNC_LOG_FORMAT is "pretty": it must be one of auto, text, json/);
});
