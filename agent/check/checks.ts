// Every check of `spokesync check`, over gathered facts, and the report.
// Other commands (run) can call runChecks to refuse to start on errors.
import type { Config } from '../config/types.js';
import { configFiles, parseVersion, type Facts } from './facts.js';
import type { Problem } from './problem.js';
import { accessProblems, fileProblems } from './rules-access.js';
import { serverProblems } from './rules-server.js';
import { tableProblems } from './rules-tables.js';
import { rowFilterProblems } from './rules-rows.js';

export type { Problem } from './problem.js';

/** Every problem the facts show, errors first, in a stable order. */
export function runChecks(facts: Facts, config: Config): Problem[] {
  const all = [
    ...serverProblems(facts, config),
    ...accessProblems(facts, config),
    ...tableProblems(facts, config),
    ...rowFilterProblems(facts, config),
    ...fileProblems(facts, configFiles(config)),
  ];
  return [...all.filter((p) => p.severity === 'error'), ...all.filter((p) => p.severity === 'warning')];
}

export interface Report {
  readonly ok: boolean;
  readonly server: string;
  readonly address: string;
  readonly user: string;
  readonly schema: string;
  readonly errors: number;
  readonly warnings: number;
  readonly problems: readonly Problem[];
}

export function report(config: Config, problems: readonly Problem[], facts: Facts | null): Report {
  const errors = problems.filter((p) => p.severity === 'error').length;
  return {
    ok: errors === 0,
    server: facts ? parseVersion(facts.version).label : 'unknown',
    address: `${config.database.host}:${config.database.port}`,
    user: facts?.currentUser ?? config.database.user,
    schema: config.database.schema,
    errors,
    warnings: problems.length - errors,
    problems,
  };
}

/** The human form: a header, each problem with its fix, a one-line verdict. */
export function formatReport(r: Report): string {
  const lines = [`spokesync check: ${r.server} at ${r.address} as ${r.user}, schema ${r.schema}`];
  for (const p of r.problems) {
    lines.push('', `${p.severity}: ${p.message}`, `  fix: ${p.fix}`);
  }
  const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  lines.push('', r.problems.length === 0
    ? 'no problems: this server is ready for spokesync'
    : `${count(r.errors, 'error')}, ${count(r.warnings, 'warning')}${r.ok ? ' (warnings do not stop spokesync)' : ''}`);
  return lines.join('\n');
}
