// `spokesync run` as its own process with the daemon's heap flags, and its
// memory read from /proc (VmRSS now, VmHWM the peak).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { DAEMON_HEAP_FLAGS } from '../../agent/cli/heap-flags.js';
import { spokesyncMain } from './cli.js';

export interface Daemon {
  readonly proc: ChildProcess;
  /** everything it printed so far */
  output(): string;
  /** VmRSS and VmHWM in bytes */
  memory(): { rss: number; hwm: number };
  /** SIGTERM, then the exit code */
  stop(): Promise<number | null>;
}

export function startDaemon(config: string, extraNodeArgs: readonly string[] = [], cwd?: string): Daemon {
  // through env -u: a test runner may put its own loader in NODE_OPTIONS of every process it spawns (tens of MB)
  const proc = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, ...DAEMON_HEAP_FLAGS, ...extraNodeArgs, spokesyncMain, 'run', '--config', config], {
    env: { PATH: process.env.PATH }, ...(cwd === undefined ? {} : { cwd }),
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-1_000_000); });
  proc.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-1_000_000); });
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  return {
    proc,
    output: () => out,
    memory: () => procMemory(proc.pid!),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

export function procMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

export async function waitHealthy(port: number, d: Daemon, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (d.proc.exitCode !== null) throw new Error(`the daemon exited with ${d.proc.exitCode}:\n${d.output().slice(-3000)}`);
    const ok = await fetch(`http://127.0.0.1:${port}/v1/health`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the daemon did not start serving');
}
