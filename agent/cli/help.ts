// Help text for `spokesync --help` and `spokesync <command> --help`, built from
// the command specs so each option is described once, next to its definition.
import type { CommandSpec, OptionSpec } from './command.js';

export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec & { short?: string }>> = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  version: { type: 'boolean', short: 'V', help: 'print the version' },
  debug: { type: 'boolean', help: 'print stack traces with errors (also SPOKESYNC_DEBUG=1)' },
};

export const CONFIG_OPTION: OptionSpec = {
  type: 'string',
  arg: 'FILE',
  required: true,
  help: "this node's YAML config file (`spokesync help config` lists the keys)",
};

export function mainHelp(version: string, commands: readonly CommandSpec[]): string {
  const width = Math.max(...commands.map((c) => c.name.length), 6) + 3;
  return [
    `spokesync ${version}: keeps the MySQL/MariaDB databases of a tree of sites in step over bad links.`,
    '',
    'Usage: spokesync <command> --config FILE [options]',
    '       spokesync help [<command> | config]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'Run `spokesync <command> --help` for its options, `spokesync help config` for the config file.',
    'Exit status: 0 success, 1 failure, 2 bad usage or config.',
  ].join('\n');
}

export function commandHelp(c: CommandSpec): string {
  const options: Record<string, OptionSpec & { short?: string }> = {
    ...(c.needsConfig ? { config: CONFIG_OPTION } : {}),
    ...c.options,
    debug: GLOBAL_OPTIONS.debug!,
    help: GLOBAL_OPTIONS.help!,
  };
  const usage = Object.entries({ ...(c.needsConfig ? { config: CONFIG_OPTION } : {}), ...c.options }).map(([name, o]) => {
    const flag = `--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
    return o.required ? flag : `[${flag}]`;
  });
  return [
    `Usage: spokesync ${c.name}${usage.length > 0 ? ' ' + usage.join(' ') : ''}${c.args ? ` ${c.args}` : ''}`,
    '',
    wrap(c.summary.endsWith('.') ? c.summary : c.summary + '.', 78),
    '',
    wrap(c.description, 78),
    '',
    'Options:',
    ...optionLines(options),
  ].join('\n');
}

function optionLines(options: Readonly<Record<string, OptionSpec & { short?: string }>>): string[] {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
    return { flag, help: o.help + (o.required ? ' (required)' : '') };
  });
  const width = Math.max(...rows.map((r) => r.flag.length)) + 3;
  return rows.map((r) => `  ${r.flag.padEnd(width)}${r.help}`);
}

/** Wraps paragraphs (separated by blank lines) at `width` columns. */
export function wrap(text: string, width: number): string {
  return text
    .split(/\n\s*\n/)
    .map((para) => {
      const lines: string[] = [];
      let line = '';
      for (const word of para.split(/\s+/).filter((w) => w !== '')) {
        if (line !== '' && line.length + 1 + word.length > width) {
          lines.push(line);
          line = word;
        } else line = line === '' ? word : `${line} ${word}`;
      }
      if (line !== '') lines.push(line);
      return lines.join('\n');
    })
    .join('\n\n');
}
