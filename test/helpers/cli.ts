// Runs the built `spokesync` binary as users do: a real process, its exit code
// and everything it printed. Only PATH (plus `env`) is passed, so no variable of
// the test runner leaks into the config.
import { spawn } from 'node:child_process';
import { runCli } from '../../agent/cli/dispatch.js';
import { fileURLToPath } from 'node:url';
import type { NodeStatus } from '../../agent/routing/node-status.js';

export const spokesyncMain = fileURLToPath(new URL('../../agent/main.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

export function spokesync(
  args: readonly string[], env: NodeJS.ProcessEnv = {}, opts: { killAfterMs?: number; killWhen?: Promise<unknown> } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [spokesyncMain, ...args], { env: { PATH: process.env.PATH, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', reject);
    const timer = opts.killAfterMs === undefined ? undefined : setTimeout(() => p.kill('SIGKILL'), opts.killAfterMs);
    void opts.killWhen?.then(() => p.kill('SIGKILL'));
    p.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/**
 * The same command run in this process (runCli, as main.ts runs it): for inputs
 * refused before any work, where a process of its own would only add its start.
 */
export async function spokesyncHere(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    stdout: (text) => { out += `${text}\n`; },
    stderr: (text) => { err += `${text}\n`; },
    env: { PATH: process.env.PATH, ...env }, signal: new AbortController().signal,
  });
  return { code, out, err };
}

/** `spokesync status --json` of the node a config file names. */
export async function statusOf(config: string): Promise<NodeStatus> {
  const r = await spokesync(['status', '--config', config, '--json']);
  if (r.code !== 0) throw new Error(`status exited ${r.code}: ${r.err}`);
  return JSON.parse(r.out) as NodeStatus;
}
