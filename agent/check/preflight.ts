// The checks for other commands: `run` (and any command that starts capture or
// apply) calls assertPreflight and refuses to start on an error, naming each one.
import type { Config } from '../config/types.js';
import type { Db } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { runChecks, type Problem } from './checks.js';
import { gatherFacts } from './facts.js';

/** Every problem of the server, grants and tables (errors first, then warnings). */
export async function preflight(db: Db, config: Config): Promise<Problem[]> {
  return runChecks(await gatherFacts(db, config), config);
}

/** Throws SPOKESYNC_E_PREFLIGHT listing every error (one per line); returns the warnings. */
export async function assertPreflight(db: Db, config: Config): Promise<Problem[]> {
  const problems = await preflight(db, config);
  const errors = problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) {
    throw new SpokesyncError('SPOKESYNC_E_PREFLIGHT', errors.map((p) => `${p.message}; fix: ${p.fix}`).join('\n'));
  }
  return problems;
}
