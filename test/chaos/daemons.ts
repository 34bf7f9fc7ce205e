// One `spokesync run` per node, each its own OS process with the shipped heap
// flags, supervised as deploy/spokesync.service does it (restarted after a
// failure exit, not after exit 2). Its peak RSS is read from /proc (VmHWM) every
// second and just before each injected kill; every exit that the harness did not
// cause is recorded with the end of its log.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { DAEMON_HEAP_FLAGS } from '../../agent/cli/heap-flags.js';
import { MAIN, stopProcess } from '../../deploy/demo-support.js';
import { isNotUpCode } from '../../agent/start-wait.js';

export interface DaemonExit {
  readonly node: string;
  readonly at: number;
  readonly code: number | null;
  readonly signal: string | null;
  /** OOM, an uncaught error or a signal nobody sent: always a failure */
  readonly crash: boolean;
  /** the spokesync error code it exited with, if any */
  readonly errorCode: string | null;
  /** how long the process ran */
  readonly uptimeMs: number;
  /**
   * exit 1 within its first seconds because its node was still held by the process just
   * killed, or its database went away in a way not told apart from a refused answer: a start
   * refused, which the service manager retries. A database that is not up is waited for
   * (agent/start-wait.ts): a start that ended on one is not a refused start but a failure.
   */
  readonly refusedStart: boolean;
  /** a refused start that said "unexpected error" instead of naming the database error */
  readonly unnamed: boolean;
  readonly logTail: string;
}

const CRASH_MARKS = [/heap out of memory/i, /FATAL ERROR/, /Uncaught/i, /unhandled/i, /Allocation failed/i, /unexpected error/i];

/** a start slower than this is not a start any more */
const START_MS = 20_000;

/** Peak resident memory of a live process, in bytes (null when it is gone). */
export function vmHwm(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** What an exit was, from the end of that process's log, its exit status and how long it ran. */
export function judgeExit(logTail: string, code: number | null, signal: string | null, uptimeMs: number):
  Pick<DaemonExit, 'crash' | 'errorCode' | 'uptimeMs' | 'refusedStart' | 'unnamed'> {
  // what it printed after its last log line: the error it exited with
  const lines = logTail.split('\n');
  let last = lines.length;
  while (last > 0 && !lines[last - 1]!.startsWith('{')) last--;
  const said = lines.slice(last).join('\n');
  const codes = [...said.matchAll(/SPOKESYNC_E_[A-Z_]+/g)].map((m) => m[0]);
  const crash = signal !== null || (code !== 1 && code !== 2) || CRASH_MARKS.some((r) => r.test(said));
  const errorCode = codes[codes.length - 1] ?? null;
  const dbGone = /^spokesync: unexpected error: (read ECONNRESET|connect ECONNREFUSED|Connection lost|Can't add new command when connection is in closed state)/m.test(said);
  // `cannot connect to host:port as user (CODE)`, `... failed or was lost (CODE)`
  const dbCode = /\(([A-Z][A-Z0-9_]+)\)/.exec(said.split('\n')[0] ?? '')?.[1];
  const notWaited = errorCode === 'SPOKESYNC_E_DB_CONNECT' && !(dbCode !== undefined && isNotUpCode(dbCode));
  const refusedStart = code === 1 && signal === null && uptimeMs < START_MS &&
    (notWaited || errorCode === 'SPOKESYNC_E_BUSY' || dbGone);
  return { crash: crash && !refusedStart, errorCode, uptimeMs, refusedStart, unnamed: refusedStart && dbGone };
}

export class Daemon {
  private proc: ChildProcess | null = null;
  private expectedExit = false;
  private restartTimer: NodeJS.Timeout | null = null;
  /** false while an injected kill keeps it down, and at the end */
  private wanted = false;
  private startedAt = 0;
  /** where this process's part of the log begins */
  private logOffset = 0;
  peakRss = 0;
  starts = 0;
  readonly exits: DaemonExit[] = [];

  constructor(
    readonly node: string,
    private readonly configFile: string,
    readonly logFile: string,
    private readonly restartDelayMs: number,
  ) {}

  get up(): boolean {
    return this.proc !== null;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  start(): void {
    this.wanted = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    if (this.proc) return;
    this.expectedExit = false;
    this.startedAt = Date.now();
    try { this.logOffset = statSync(this.logFile).size; } catch { this.logOffset = 0; }
    // as deploy/spokesync.service runs it, with stack traces in the log should it fail
    const log = createWriteStream(this.logFile, { flags: 'a' });
    // through env -u NODE_OPTIONS: a test runner (tap) puts its process-info loader in NODE_OPTIONS of every
    // node it spawns, tens of MB the service never has (env execs node: the pid and exit status are node's)
    const p = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, ...DAEMON_HEAP_FLAGS, MAIN, 'run', '--config', this.configFile], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SPOKESYNC_DEBUG: '1' },
    });
    p.stdout?.pipe(log);
    p.stderr?.pipe(log);
    this.proc = p;
    this.starts++;
    p.once('exit', (code, signal) => void this.exited(p, code, signal));
  }

  private async exited(p: ChildProcess, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.proc !== p) return;
    this.proc = null;
    if (this.expectedExit) return;
    // let the log pipe drain before reading its end
    await new Promise((r) => setTimeout(r, 200));
    const own = (await readFile(this.logFile).catch(() => Buffer.alloc(0))).subarray(this.logOffset).toString('utf8');
    const logTail = own.trim().split('\n').slice(-80).join('\n');
    const judged = judgeExit(logTail, code, signal, Date.now() - this.startedAt);
    this.exits.push({ node: this.node, at: Date.now(), code, signal, ...judged, logTail });
    if (this.wanted && code !== 2) {
      this.restartTimer = setTimeout(() => { this.restartTimer = null; if (this.wanted) this.start(); }, this.restartDelayMs);
    }
  }

  sample(): void {
    const pid = this.proc?.pid;
    if (pid === undefined) return;
    const hwm = vmHwm(pid);
    if (hwm !== null) this.peakRss = Math.max(this.peakRss, hwm);
  }

  /** kill -9, kept down until start() */
  async kill9(): Promise<void> {
    const p = this.expectExit();
    if (!p) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  /** SIGTERM (SIGKILL after the grace time), not restarted */
  async stop(): Promise<void> {
    const p = this.expectExit();
    if (p) await stopProcess(p, 15_000);
  }

  /** No restart from here on, the peak memory sampled, and the coming exit marked as ours; the process if one runs. */
  private expectExit(): ChildProcess | null {
    this.wanted = false;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const p = this.proc;
    if (!p) return null;
    this.sample();
    this.expectedExit = true;
    return p;
  }
}

/** Error-level log lines of a daemon's log, counted by message and error. */
export async function logErrors(file: string): Promise<Map<string, number>> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.includes('"level":"error"') && !line.includes('"level":"fatal"')) continue;
    let msg = line.slice(0, 120);
    try {
      const j = JSON.parse(line) as { msg?: unknown; error?: { message?: unknown } | string };
      const err = typeof j.error === 'string' ? j.error : j.error?.message;
      msg = `${String(j.msg ?? msg)}${err === undefined ? '' : `: ${String(err).slice(0, 160)}`}`;
    } catch { /* not JSON */ }
    out.set(msg, (out.get(msg) ?? 0) + 1);
  }
  return out;
}
