// `spokesync join`: a site whose database already holds data joins its parent
// by identity, without a clone (agent/join/).
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import type { CommandSpec } from '../cli/command.js';
import { runJoin } from '../join/join-site.js';
import { formatJoin, joinJson } from '../join/join-report.js';
import { SpokesyncNode } from '../node.js';

export const command: CommandSpec = {
  name: 'join',
  summary: 'Join the parent with the data this site already holds (never cloned): rows matched by identity',
  description:
    'For a site whose application schema already holds data (the same schema and metadata as its parent, its own ' +
    'rows) and which has never been cloned and never exchanged with its parent. Rows are matched by identity (uuid, ' +
    'or the table\'s identity rule), never by local integer ids, which each side keeps its own. Table by table ' +
    '(those both sync with each other), the two sides are compared by checksums as `spokesync verify` does. ' +
    'Rows only at the parent come down, applied here as the parent\'s (never sent back up). Rows only here go up, ' +
    'applied at the parent at once. Rows at both with other content are conflicts, recorded in the conflicts log with ' +
    'both versions (`spokesync conflicts`): the parent\'s version is kept, or this node\'s with --prefer here, and the ' +
    'other side takes it. One-way tables (tables.direction) move one way only: what cannot move is listed and left as it is. ' +
    'The parent starts its cursor for this node when the join begins (POST /v1/join), and this node\'s cursor ' +
    'starts at the end of its own journal: changes made on either side during the join travel by ordinary sync ' +
    'afterwards, and nothing is sent twice. Last, the first sync runs and the two are compared again. README.md, ' +
    '"Joining a site that already has data", gives the steps.\n\n' +
    'Run it with this node\'s daemon stopped (it captures and applies itself, and takes the node lock); the parent\'s ' +
    'daemon must run. It is refused (SPOKESYNC_E_JOIN, nothing changed) when this node was cloned or has exchanged ' +
    'with its parent, when a synced table\'s shape differs between the two or the parent does not sync it with ' +
    'this node, and once the join is done. A join stopped anywhere (a signal, a lost link, a crash) is finished by ' +
    'running it again; until then `spokesync sync` and the daemon do not exchange with the parent.\n\n' +
    '--json prints {node, parent, prefer, resumed, journalFrom, parentSeq, tables: [{table, down, up, conflicts: ' +
    '{parentKept, hereKept}, inFlight, left: [{identity, why}]}], quarantined, sync, identical, verify, bytes}.\n\n' +
    'Exit status: 0 when the two hold the same rows after the first sync (rows in flight aside), 1 when rows still ' +
    'differ (listed), on a refusal or on failure, 2 bad usage or config.',
  options: {
    prefer: { type: 'string', arg: 'parent|here', help: 'whose version of a row at both with other content is kept (default parent)' },
    json: { type: 'boolean', help: 'print the result as JSON' },
  },
  needsConfig: true,
  async run(ctx) {
    const prefer = ctx.options.prefer ?? 'parent';
    if (prefer !== 'parent' && prefer !== 'here') throw new SpokesyncError('SPOKESYNC_E_USAGE', '--prefer takes parent or here');
    if (!ctx.config.parent) {
      throw new SpokesyncError('SPOKESYNC_E_USAGE', 'this node has no parent section in its config: join needs parent.url and parent.token (the token the parent lists for this node)');
    }
    const started = Date.now();
    let node: SpokesyncNode;
    try {
      node = await SpokesyncNode.open(ctx.config, ctx.log);
    } catch (e) {
      if (!isSpokesyncError(e, 'SPOKESYNC_E_BUSY')) throw e;
      throw new SpokesyncError('SPOKESYNC_E_BUSY', `${e.message}: join runs with this node's daemon stopped`, {
        cause: e, fix: 'Stop the daemon (systemctl stop spokesync, or end `spokesync run`), run join, then start the daemon again.',
      });
    }
    try {
      const r = await runJoin(node, { prefer, signal: ctx.signal, log: ctx.log });
      const j = joinJson(r, (Date.now() - started) / 1000);
      ctx.out(ctx.options.json === true ? JSON.stringify(j, null, 2) : formatJoin(j));
      return j.identical ? 0 : 1;
    } catch (e) {
      if (ctx.signal.aborted && !isSpokesyncError(e, 'SPOKESYNC_E_PENDING')) {
        throw new SpokesyncError('SPOKESYNC_E_JOIN', 'the join was stopped before it finished', { cause: e, fix: 'Run `spokesync join --config F` again: it goes on where it stopped.' });
      }
      throw e;
    } finally {
      await node.close();
    }
  },
};
