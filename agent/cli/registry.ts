// Every `spokesync <command>`, in the order `spokesync --help` lists them.
// A command lives in agent/commands/<name>.ts and exports `command: CommandSpec`;
// add one import and one entry here for each.
import type { CommandSpec } from './command.js';
import { command as check } from '../commands/check.js';
import { command as run } from '../commands/run.js';
import { command as sync } from '../commands/sync.js';
import { command as status } from '../commands/status.js';
import { command as conflicts } from '../commands/conflicts.js';
import { command as quarantine } from '../commands/quarantine.js';
import { command as exportCmd } from '../commands/export.js';
import { command as importCmd } from '../commands/import.js';
import { command as snapshot } from '../commands/snapshot.js';
import { command as clone } from '../commands/clone.js';
import { command as verify } from '../commands/verify.js';
import { command as repair } from '../commands/repair.js';
import { command as join } from '../commands/join.js';

export const commands: readonly CommandSpec[] = [
  run,
  sync,
  status,
  conflicts,
  quarantine,
  check,
  exportCmd,
  importCmd,
  snapshot,
  clone,
  verify,
  repair,
  join,
];

export function findCommand(name: string, list: readonly CommandSpec[] = commands): CommandSpec | undefined {
  return list.find((c) => c.name === name);
}
