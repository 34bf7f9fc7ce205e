// Progress of a snapshot or a clone: a one-line bar redrawn on stderr when it
// is a terminal, otherwise an info log line every few seconds.
import type { Logger } from '../../apply/core/log.js';

export interface ProgressState {
  readonly label: string;
  readonly table: string;
  readonly rows: number;
  /** estimate; 0 when unknown */
  readonly totalRows: number;
  /** uncompressed bytes so far */
  readonly bytes: number;
  readonly elapsedMs: number;
}

export interface Progress {
  table(name: string): void;
  add(rows: number, bytes: number): void;
  /** final line; idempotent */
  done(ok: boolean): void;
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** The bar as one line of at most `width` characters (pure). */
export function renderBar(p: ProgressState, width = 100): string {
  const frac = p.totalRows > 0 ? Math.min(p.rows / p.totalRows, 0.999) : 0;
  const rate = p.elapsedMs > 0 ? (p.bytes / p.elapsedMs) * 1000 : 0;
  const eta = p.totalRows > 0 && p.rows > 0 ? (p.elapsedMs / p.rows) * (p.totalRows - p.rows) : NaN;
  const tail =
    ` ${Math.floor(frac * 100)}% ${p.rows}${p.totalRows > 0 ? `/~${p.totalRows}` : ''} rows` +
    ` ${mb(p.bytes)} MB ${mb(rate)} MB/s${Number.isFinite(eta) && eta > 0 ? ` ETA ${clock(eta)}` : ''} ${p.table}`;
  const head = `${p.label} `;
  const barWidth = Math.max(10, Math.min(30, width - head.length - tail.length - 2));
  const filled = Math.round(frac * barWidth);
  const line = `${head}[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]${tail}`;
  return line.length > width ? line.slice(0, width) : line;
}

export function createProgress(opts: {
  label: string;
  totalRows: number;
  log: Logger;
  stream?: NodeJS.WriteStream;
  /** between log lines when the stream is not a terminal */
  logEveryMs?: number;
  now?: () => number;
}): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const now = opts.now ?? Date.now;
  const start = now();
  const logEvery = opts.logEveryMs ?? 5000;
  let last = start;
  let rows = 0;
  let bytes = 0;
  let table = '';
  let finished = false;
  const state = (): ProgressState => ({ label: opts.label, table, rows, totalRows: opts.totalRows, bytes, elapsedMs: now() - start });
  const draw = (final: boolean): void => {
    const t = now();
    if (!final && t - last < (tty ? 150 : logEvery)) return;
    last = t;
    if (tty) {
      stream.write(`\r${renderBar(state(), Math.max(40, (stream.columns || 80) - 1))}\x1b[K${final ? '\n' : ''}`);
    } else if (!final) {
      const s = state();
      opts.log.info(`${opts.label} progress`, { table: s.table, rows: s.rows, estimatedRows: s.totalRows, bytes: s.bytes });
    }
  };
  return {
    table(name) {
      table = name;
      draw(false);
    },
    add(r, b) {
      rows += r;
      bytes += b;
      draw(false);
    },
    done(ok) {
      if (finished) return;
      finished = true;
      if (tty) draw(true);
      const s = state();
      const secs = s.elapsedMs / 1000;
      opts.log.info(`${opts.label} ${ok ? 'done' : 'stopped'}`, {
        rows: s.rows, bytes: s.bytes, seconds: Number(secs.toFixed(2)),
        mbPerSecond: secs > 0 ? Number((s.bytes / 1e6 / secs).toFixed(2)) : null,
      });
    },
  };
}
