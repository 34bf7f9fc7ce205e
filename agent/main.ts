#!/usr/bin/env node
// spokesync's entry point: wires the process (argv, stdout/stderr, signals,
// environment) to the command line in agent/cli/dispatch.ts and exits with its status.
import { handleSignals } from './cli/signals.js';

// checked before the rest loads: its dependencies need a current Node.js
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
if (NODE_MAJOR < 22) {
  process.stderr.write(`spokesync needs Node.js 22 or 24 LTS; this is Node.js ${process.version}\n`);
  process.exit(1);
}
const { runCli } = await import('./cli/dispatch.js');

const controller = new AbortController();
const stderr = (text: string): void => void process.stderr.write(text + '\n');
const unhook = handleSignals(controller, { target: process, exit: (code) => process.exit(code), notice: stderr });

const code = await runCli(process.argv.slice(2), {
  stdout: (text) => void process.stdout.write(text + '\n'),
  stderr,
  env: process.env,
  signal: controller.signal,
  terminal: { stdout: process.stdout.isTTY === true, stderr: process.stderr.isTTY === true },
});
unhook();
process.exitCode = code;
// A command that leaves a handle open must not keep the process alive.
setTimeout(() => process.exit(code), 2000).unref();
