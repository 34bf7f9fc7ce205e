// Every `spokesync <command>`, in the order `spokesync --help` lists them.
// A command lives in agent/commands/<name>.ts and exports `command: CommandSpec`;
// add one import and one entry here for each.
import type { CommandSpec } from './command.js';
import { command as check } from '../commands/check.js';

export const commands: readonly CommandSpec[] = [
  check,
];

export function findCommand(name: string, list: readonly CommandSpec[] = commands): CommandSpec | undefined {
  return list.find((c) => c.name === name);
}
