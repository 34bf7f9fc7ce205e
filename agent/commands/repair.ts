// `spokesync repair`: makes the rows `verify` finds different equal, by default
// to the parent's version, as one ordinary change set of this node that
// travels on (agent/verify/repair-rows.ts).
import { SpokesyncError } from '../../apply/core/errors.js';
import type { CommandSpec } from '../cli/command.js';
import { tableDirection } from '../config/tables.js';
import { repairRows, type Prefer } from '../verify/repair-rows.js';
import { compareWithParent, openSession } from '../verify/verify-session.js';

export const command: CommandSpec = {
  name: 'repair',
  summary: 'Make rows that differ from the parent equal, as a change set that travels on; list what changed',
  description:
    'Compares this node with its parent as `spokesync verify` does, then makes every differing row equal in one ' +
    'transaction that capture journals as an ordinary change set of this node, at a new version, so that it ' +
    'travels to the parent and on to every other node like any change and the whole tree converges.\n\n' +
    '--prefer parent (the default): the parent\'s rows are fetched (only the differing ones) and written here: ' +
    'rows missing here are inserted, rows that differ are updated, rows the parent does not hold are deleted. ' +
    '--prefer here: nothing changes here; this node\'s rows replace the parent\'s (inserted where missing) and ' +
    'rows only the parent holds are deleted there when the change set arrives.\n\n' +
    'Nothing is lost silently: every row version overwritten or deleted, on either side, is kept with the version ' +
    'that replaced it in the conflicts log (`spokesync conflicts`, kind repair), and the command lists every row ' +
    'with what it did. Rows in flight are left alone (they converge by themselves); tables whose shapes differ ' +
    'are not repaired. The change set reaches the parent at the next exchange (`spokesync sync`, or the daemon\'s ' +
    'next interval). It runs beside the daemon, or captures itself when none runs.\n\n' +
    '--json prints {node, peer, prefer, actions: [{table, identity, action, overwrote}], inFlight, notRepaired, bytes}.\n\n' +
    'Exit status: 0 when every differing row was repaired (or none differed), 1 when some could not be ' +
    '(a table whose shape differs, a row that cannot be named) or on failure, 2 bad usage or config.',
  options: {
    peer: { type: 'string', arg: 'ID', help: 'the node to compare with (default and only choice: the parent)' },
    prefer: { type: 'string', arg: 'parent|here', help: 'whose version of a differing row is kept (default parent)' },
    json: { type: 'boolean', help: 'print the result as JSON' },
  },
  needsConfig: true,
  async run(ctx) {
    const prefer = ctx.options.prefer ?? 'parent';
    if (prefer !== 'parent' && prefer !== 'here') throw new SpokesyncError('SPOKESYNC_E_USAGE', '--prefer takes parent or here');
    const session = await openSession(ctx.config, ctx.log);
    try {
      const { node } = session;
      const peer = typeof ctx.options.peer === 'string' ? ctx.options.peer : undefined;
      const r = await compareWithParent(session, { ...(peer === undefined ? {} : { peer }), signal: ctx.signal });
      const c = r.comparison;
      const catalog = node.applier.currentCatalog();
      // this node's version of a table that only comes down never reaches the parent
      const stuck = (table: string): boolean => prefer === 'here' && tableDirection(ctx.config, table) === 'down';
      const done = await repairRows({
        db: node.db, catalog, stateSchema: ctx.config.database.stateSchema, node: node.id, peer: r.peer,
        here: r.local, there: r.remote,
      }, c.differing.filter((d) => !stuck(d.table)), prefer as Prefer);
      await session.caughtUp();
      const notRepaired = [
        ...c.tables.filter((t) => t.state === 'shape differs').map((t) => ({ table: t.table, why: `shape differs: ${t.shape ?? ''}` })),
        ...Object.entries(c.unnamed).map(([table, n]) => ({ table, why: `${n} differing rows whose identity cannot be computed` })),
        ...[...new Set(c.differing.filter((d) => stuck(d.table)).map((d) => d.table))].map((table) => ({
          table, why: 'tables.direction says it only comes down from the parent: repair it with --prefer parent',
        })),
      ];
      const bytes = r.remote.traffic.sent + r.remote.traffic.received;
      if (ctx.options.json === true) {
        ctx.out(JSON.stringify({ node: node.id, peer: r.peer, prefer, actions: done.actions, inFlight: c.inFlight, notRepaired, bytes }, null, 2));
      } else {
        const lines = [done.actions.length === 0 ? `${node.id} and ${r.peer}: no row to repair`
          : `${node.id} and ${r.peer}: repaired ${done.actions.length} rows (--prefer ${prefer}):`];
        const width = Math.max(5, ...done.actions.map((a) => a.table.length));
        for (const a of done.actions) lines.push(`  ${a.table.padEnd(width)}  ${a.identity}  ${a.action}`);
        const overwrote = done.actions.filter((a) => a.overwrote).length;
        if (overwrote > 0) lines.push(`the ${overwrote} versions overwritten or deleted are kept in the conflicts log (\`spokesync conflicts\`, kind repair)`);
        if (done.actions.length > 0) lines.push(`journaled as one change set of ${node.id}: it reaches ${r.peer} at the next exchange (\`spokesync sync\`)`);
        for (const f of c.inFlight) lines.push(`  left alone, in flight: ${f.table} ${f.identity}`);
        for (const n of notRepaired) lines.push(`  not repaired: ${n.table}: ${n.why}`);
        lines.push(`bytes moved: ${bytes}`);
        ctx.out(lines.join('\n'));
      }
      return notRepaired.length === 0 ? 0 : 1;
    } finally {
      await session.node.close();
    }
  },
};
