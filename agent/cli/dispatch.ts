// The command line: parse argv, load the config, build the logger, run one
// command, turn its outcome into an exit status (0 ok, 1 failure, 2 usage or
// config). Errors become one clear line and a fix on stderr; stack traces only
// with --debug or SPOKESYNC_DEBUG=1. No I/O but through `io`, so tests run it in process.
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/loader.js';
import { nearest } from '../config/yaml-reader.js';
import { configReference } from '../config/reference.js';
import type { Config } from '../config/types.js';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import { LOG_FORMATS, createLogger, logFormat, type LogFormatChoice } from '../../apply/core/log.js';
import type { CommandSpec } from './command.js';
import { CONFIG_OPTION, commandHelp, mainHelp } from './help.js';
import { commands as registered, findCommand } from './registry.js';
import { SIGNAL_EXIT, isStopReason } from './signals.js';
import { version } from './version.js';

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  /** aborted on SIGTERM/SIGINT */
  readonly signal: AbortSignal;
  /** the commands (default: the registry) */
  readonly commands?: readonly CommandSpec[];
  /** whether stdout and stderr are terminals (log.format auto: text there, JSON lines otherwise) */
  readonly terminal?: { readonly stdout?: boolean; readonly stderr?: boolean };
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const debug = argv.includes('--debug') || io.env.SPOKESYNC_DEBUG === '1';
  try {
    return await dispatch(argv, io);
  } catch (e) {
    if (io.signal.aborted && isStopReason(io.signal.reason)) {
      io.stderr(`spokesync: ${io.signal.reason.message}`);
      return SIGNAL_EXIT[io.signal.reason.signal];
    }
    const err = lostDatabase(e) ?? e;
    io.stderr(formatError(err, debug));
    return isSpokesyncError(err) ? err.exit : 1;
  }
}

/** The database went away under a command (mysql2 marks such errors fatal): said as what it is, not as an unexpected error. */
function lostDatabase(e: unknown): SpokesyncError | null {
  if (isSpokesyncError(e) || !(e instanceof Error) || (e as { fatal?: unknown }).fatal !== true) return null;
  const code = (e as { code?: unknown }).code;
  return new SpokesyncError('SPOKESYNC_E_DB_CONNECT',
    `the connection to the database failed or was lost (${typeof code === 'string' ? code : 'no code'}): ${e.message.split('\n')[0] ?? ''}`, { cause: e });
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<number> {
  const list = io.commands ?? registered;
  const first = argv.findIndex((a) => !a.startsWith('-'));
  const globals = first === -1 ? argv : argv.slice(0, first);
  for (const g of globals) {
    if (!['--help', '-h', '--version', '-V', '--debug'].includes(g)) throw usage(`unknown option ${g} (options go after the command)`);
  }
  if (globals.includes('--version') || globals.includes('-V')) {
    io.stdout(`spokesync ${version()}`);
    return 0;
  }
  if (first === -1) {
    if (globals.includes('--help') || globals.includes('-h')) {
      io.stdout(mainHelp(version(), list));
      return 0;
    }
    io.stderr(mainHelp(version(), list));
    return 2;
  }
  const name = argv[first]!;
  const rest = argv.slice(first + 1);
  if (name === 'help') return help(rest, io, list);
  const spec = findCommand(name, list);
  if (!spec) {
    const near = nearest(name, list.map((c) => c.name));
    throw usage(`unknown command ${JSON.stringify(name)}${near ? ` (did you mean ${near}?)` : ''}; commands: ${list.map((c) => c.name).join(', ')}`);
  }
  const { options, args } = parseOptions(spec, rest);
  if (options.help === true) {
    io.stdout(commandHelp(spec));
    return 0;
  }
  for (const [opt, o] of Object.entries(spec.options)) {
    if (o.required && options[opt] === undefined) throw usage(`the ${spec.name} command needs --${opt} ${o.arg ?? 'VALUE'}`);
  }
  let config: Config;
  if (spec.needsConfig) {
    const file = options.config;
    if (typeof file !== 'string') throw usage(`the ${spec.name} command needs --config FILE (this node's YAML config)`);
    config = loadConfig(file, io.env);
  } else {
    config = noConfig(spec.name);
  }
  const toStdout = spec.logTo === 'stdout';
  const choice = envLogFormat(io.env) ?? (spec.needsConfig ? config.log.format : undefined);
  const log = createLogger({
    level: spec.needsConfig ? config.log.level : 'info',
    write: toStdout ? io.stdout : io.stderr,
    format: logFormat(choice, (toStdout ? io.terminal?.stdout : io.terminal?.stderr) === true),
    base: { command: spec.name, ...(spec.needsConfig ? { node: config.node.id } : {}) },
  });
  const own: Record<string, string | boolean | undefined> = {};
  for (const opt of Object.keys(spec.options)) own[opt] = options[opt];
  return spec.run({ config, options: own, log, out: io.stdout, signal: io.signal, args });
}

/** SPOKESYNC_LOG_FORMAT, which overrides log.format; undefined when unset or empty. */
function envLogFormat(env: NodeJS.ProcessEnv): LogFormatChoice | undefined {
  const v = env.SPOKESYNC_LOG_FORMAT;
  if (v === undefined || v === '') return undefined;
  if (!(LOG_FORMATS as readonly string[]).includes(v)) {
    throw new SpokesyncError('SPOKESYNC_E_CONFIG_ENV', `SPOKESYNC_LOG_FORMAT is ${JSON.stringify(v.slice(0, 40))}: it must be one of ${LOG_FORMATS.join(', ')}`,
      { fix: 'Set SPOKESYNC_LOG_FORMAT to auto, text or json, or unset it (log.format in the config applies then).' });
  }
  return v as LogFormatChoice;
}

function help(rest: readonly string[], io: CliIo, list: readonly CommandSpec[]): number {
  const topic = rest[0];
  if (topic === undefined) io.stdout(mainHelp(version(), list));
  else if (topic === 'config') io.stdout(configReference());
  else {
    const spec = findCommand(topic, list);
    if (!spec) throw usage(`no help on ${JSON.stringify(topic)}: try a command name or config`);
    io.stdout(commandHelp(spec));
  }
  return 0;
}

function parseOptions(spec: CommandSpec, args: readonly string[]): { options: Record<string, string | boolean | undefined>; args: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    debug: { type: 'boolean' },
    ...(spec.needsConfig ? { config: { type: CONFIG_OPTION.type, short: 'c' } } : {}),
  };
  for (const [name, o] of Object.entries(spec.options)) options[name] = { type: o.type };
  try {
    const { values, positionals } = parseArgs({ args: [...args], options, strict: true, allowPositionals: spec.args !== undefined });
    return { options: values as Record<string, string | boolean | undefined>, args: positionals };
  } catch (e) {
    const code = (e as { code?: string }).code;
    const msg = (e as Error).message;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const opt = /'([^']+)'/.exec(msg)?.[1] ?? '';
      const near = nearest(opt.replace(/^-+/, ''), Object.keys(options));
      throw usage(`unknown option ${opt} for spokesync ${spec.name}${near ? ` (did you mean --${near}?)` : ''}`, e);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']+)'/.exec(msg)?.[1] ?? '';
      throw usage(`unexpected argument ${JSON.stringify(arg)} for spokesync ${spec.name}`, e);
    }
    throw usage(`spokesync ${spec.name}: ${msg.split('\n')[0] ?? msg}`, e);
  }
}

function usage(message: string, cause?: unknown): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_USAGE', message, cause === undefined ? undefined : { cause });
}

/** A Config stand-in for commands that take none: any use is a programming error, said clearly. */
function noConfig(command: string): Config {
  return new Proxy({} as Config, {
    get() {
      throw new Error(`spokesync ${command} takes no config but read it`);
    },
  });
}

/** `spokesync: <message>` (one line per message line) and `  fix: <fix> (<code>)`; stacks only with debug. */
export function formatError(e: unknown, debug: boolean): string {
  const lines: string[] = [];
  if (isSpokesyncError(e)) {
    for (const l of e.message.split('\n')) lines.push(`spokesync: ${l}`);
    lines.push(`  fix: ${e.fix} (${e.code})`);
  } else {
    const msg = e instanceof Error ? e.message : String(e);
    lines.push(`spokesync: unexpected error: ${msg.split('\n')[0] ?? msg}`);
    lines.push(debug ? '  fix: see the stack below' : '  fix: run again with --debug (or SPOKESYNC_DEBUG=1) for the stack trace, and report it');
  }
  if (debug) {
    let cur: unknown = e;
    for (let depth = 0; cur !== undefined && depth < 8; depth++) {
      if (cur instanceof Error) {
        lines.push(depth === 0 ? (cur.stack ?? String(cur)) : `caused by: ${cur.stack ?? String(cur)}`);
        cur = cur.cause;
      } else {
        lines.push(`caused by: ${String(cur)}`);
        cur = undefined;
      }
    }
  }
  return lines.join('\n');
}
