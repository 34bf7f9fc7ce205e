// What every `spokesync <command>` module exports. The CLI (agent/main.ts and
// agent/cli/) parses arguments, loads the config when the command takes one,
// builds the logger, and calls run(). Exit codes: 0 success, 1 failure, 2 usage/config.
import type { Config } from '../config/types.js';
import type { Logger } from '../../apply/core/log.js';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  /** shown in `spokesync <command> --help` */
  readonly help: string;
  /** placeholder in usage, e.g. FILE */
  readonly arg?: string;
  readonly required?: boolean;
}

export interface CommandContext {
  /** the loaded, validated config (commands with needsConfig) */
  readonly config: Config;
  /** parsed options, by long name (without the --config option) */
  readonly options: Readonly<Record<string, string | boolean | undefined>>;
  readonly log: Logger;
  /** human output (tables, JSON for --json); logs go through `log` */
  readonly out: (text: string) => void;
  /** aborted on SIGTERM/SIGINT: stop cleanly */
  readonly signal: AbortSignal;
  /** the words after the command that are not options (commands with `args` only) */
  readonly args: readonly string[];
}

export interface CommandSpec {
  readonly name: string;
  /** one line for `spokesync --help` */
  readonly summary: string;
  /** a paragraph for `spokesync <command> --help` */
  readonly description: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** when the command takes words besides options (e.g. `show ID`): their usage, shown in help */
  readonly args?: string;
  /** whether --config F is required (true for every command but help) */
  readonly needsConfig: boolean;
  /**
   * Where JSON log lines go: 'stdout' for the daemon (`run`, read by journald),
   * 'stderr' (the default) for one-shot commands, so their output (`out`) stays parseable.
   */
  readonly logTo?: 'stdout' | 'stderr';
  /** resolves to the exit code; throw SpokesyncError for failures */
  run(ctx: CommandContext): Promise<number>;
}
