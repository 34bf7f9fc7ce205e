// Structured logs: one record per line, as JSON (for services and log
// collectors) or as readable text (for a person at a terminal): time, level,
// message, then the fields as key=value. One logger is made in main and passed
// down; per-row detail goes to debug, counters to info.

export type Level = 'debug' | 'info' | 'warn' | 'error';
const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** How lines are written: JSON objects, or text for people. */
export type LogFormat = 'json' | 'text';
/** What a config or the environment may ask for: `auto` is text on a terminal, JSON otherwise. */
export type LogFormatChoice = LogFormat | 'auto';
export const LOG_FORMATS: readonly LogFormatChoice[] = ['auto', 'text', 'json'];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(opts: {
  level?: Level;
  write?: (line: string) => void;
  base?: Record<string, unknown>;
  now?: () => Date;
  /** json (the default) or text */
  format?: LogFormat;
} = {}): Logger {
  const min = rank[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const now = opts.now ?? (() => new Date());
  const base = opts.base ?? {};
  const text = opts.format === 'text';
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>): void => {
    if (rank[level] < min) return;
    write(text ? textLine(now(), level, msg, { ...base, ...fields })
      : JSON.stringify({ time: now().toISOString(), level, msg, ...base, ...fields }, jsonSafe));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...opts, base: { ...base, ...fields } }),
  };
}

/** The format to write: the choice, with `auto` decided by whether the destination is a terminal. */
export function logFormat(choice: LogFormatChoice | undefined, isTerminal: boolean): LogFormat {
  return choice === 'text' || choice === 'json' ? choice : isTerminal ? 'text' : 'json';
}

/** `2026-03-01 14:02:03.456+02:00 WARN  message key=value other="two words"` (local time with its offset). */
export function textLine(time: Date, level: Level, msg: string, fields: Record<string, unknown>): string {
  const parts = [localTime(time), level.toUpperCase().padEnd(5), oneLine(msg)];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    parts.push(`${k}=${textValue(v)}`);
  }
  return parts.join(' ');
}

function localTime(d: Date): string {
  const off = -d.getTimezoneOffset();
  const pad = (n: number, w = 2): string => String(Math.abs(n)).padStart(w, '0');
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${zone}`;
}

/** A field value: bare when it is a plain word or number, quoted (JSON) otherwise, objects as compact JSON. */
function textValue(v: unknown): string {
  if (v instanceof Error) {
    const code = (v as { code?: unknown }).code;
    return JSON.stringify(`${v.message}${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  const safe = jsonSafe('', v);
  if (typeof safe === 'string') return /^[\w.:/@+-]+$/.test(safe) ? safe : JSON.stringify(safe);
  if (typeof safe === 'number' || typeof safe === 'boolean' || safe === null) return String(safe);
  return JSON.stringify(safe, jsonSafe) ?? String(safe);
}

function oneLine(s: string): string {
  return s.replace(/\r?\n/g, ' \u21b5 ');
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }) };
  }
  return value;
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger({ write: () => undefined });
