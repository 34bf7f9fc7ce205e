// `spokesync conflicts`: the recorded conflicts, newest first, each with both
// versions and which side won, for review.
import { listConflicts, type ConflictRow } from '../../apply/replay/conflict-rules.js';
import type { CommandSpec } from '../cli/command.js';
import { connectDb } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';

const DEFAULT_LIMIT = 50;

export const command: CommandSpec = {
  name: 'conflicts',
  summary: 'List recorded conflicts with both versions and the outcome',
  description:
    'Reads the conflicts this node recorded while applying changes from its peers, newest first. ' +
    'A conflict is an update whose old values differ from the row here, a delete of a row that changed ' +
    'here, an insert of a row that exists with other values, or a change to a row deleted here. ' +
    'Each column is decided by last writer wins (hybrid clock, then node id); a delete wins over updates. ' +
    'Both versions are kept so someone can review them.\n\n' +
    '--json prints [{id, detectedAt, changeId, origin, table, identity, kind, local, remote, outcome}], ' +
    'bytes as {"base64": ...} and references as {"ref": table, "id": identity}.',
  options: {
    json: { type: 'boolean', help: 'print the conflicts as JSON' },
    limit: { type: 'string', arg: 'N', help: `how many to show, newest first (default ${DEFAULT_LIMIT})` },
  },
  needsConfig: true,
  async run(ctx) {
    const limit = parseLimit(ctx.options.limit);
    const { host, port, user, password, stateSchema } = ctx.config.database;
    const db = await connectDb({ host, port, user, ...(password === undefined ? {} : { password }) }, { connectionLimit: 1 });
    try {
      const rows = await listConflicts(db, stateSchema, limit);
      ctx.out(ctx.options.json === true ? JSON.stringify(rows, null, 2) : formatConflicts(rows));
      return 0;
    } finally {
      await db.close();
    }
  },
};

function parseLimit(v: string | boolean | undefined): number {
  if (v === undefined) return DEFAULT_LIMIT;
  if (typeof v !== 'string' || !/^[1-9][0-9]{0,6}$/.test(v)) {
    throw new SpokesyncError('SPOKESYNC_E_USAGE', '--limit takes a whole number from 1 to 9999999');
  }
  return Number(v);
}

export function formatConflicts(rows: readonly ConflictRow[]): string {
  if (rows.length === 0) return 'no conflicts recorded';
  const lines = [`${rows.length} most recent conflict${rows.length === 1 ? '' : 's'}, newest first:`];
  for (const r of rows) {
    lines.push('');
    lines.push(`#${r.id}  ${r.detectedAt}  ${r.kind} ${r.table} ${r.identity}`);
    lines.push(`  change   ${r.changeId} (origin ${r.origin})`);
    lines.push(`  outcome  ${r.outcome}`);
    lines.push(`  here     ${JSON.stringify(r.local)}`);
    lines.push(`  incoming ${JSON.stringify(r.remote)}`);
  }
  return lines.join('\n');
}
