// `spokesync status`: capture position and lag, pending changes per peer,
// last success and last attempt with its result, conflicts and quarantined change sets.
import type { CommandSpec } from '../cli/command.js';
import { SpokesyncNode } from '../node.js';
import { formatStatus, nodeStatus } from '../routing/node-status.js';

export const command: CommandSpec = {
  name: 'status',
  summary: 'Capture position and lag, pending changes per peer, last success and last attempt, conflicts, quarantine',
  description:
    'Reads the state schema of this node (it works while the daemon runs): how many binlog bytes capture still has ' +
    'to journal (0 when it is caught up: spokesync\'s own writes after its checkpoint are not lag), how many change ' +
    'sets are waiting for each peer, the last exchange with each peer that ended well and the last attempt and how ' +
    'it ended (local time with its offset, and how long ago), how many conflicts were recorded, which change sets are quarantined, and ' +
    'which are held because a table differs here from a peer\'s (per peer and table, with the fix), ' +
    'whether the daemon lost its node lock and is paused (after a database restart, while another process holds it), ' +
    'the losses operators forced (snapshot --force, clone --discard-local: the latest three in full), ' +
    'and whether this node or a peer was restored from a backup (when, why, and what came back or was sent again).\n\n' +
    '--json prints {node, capture: {file, pos, binlogEnd, behindBytes, behindExact, checkpointAgeSeconds, daemon, lockLost: {since, pid, host} | null}, ' +
    'journal: {lastSeq, rows}, peers: [{peer, role, pending, ackedSeq, receivedSeq, lastContact (the last attempt), lastResult, lastSuccess, ' +
    'restore: null | {at, rewoundFrom, resendFrom, hlc}, rowsFiltered: a child with row filters: the ops they kept from it, else null}], ' +
    'conflicts, quarantine: {count, oldest, byOrigin, entries}, discards: {count, entries: [{node, changeId, origin, fromPeer, tables, ' +
    'quarantinedFor, tries, discardedAt, discardedBy, why, reportedAt}]}, held: [{peer, table, count, column, here, there, message}], ' +
    'losses: {count, entries: [{at, command, peer, changeSets, by, detail}]} (the ten newest), ' +
    'restore: null | {at, reason, from: {file, pos, gtid, savedAt}, to: {file, pos}, hlc, until, journalTop, incarnation: {before, after}, ownBack}}; ' +
    'times are ISO 8601 in UTC. The whole tree below a node, with alerts, is GET /status.json of its daemon (README: Watching the network).',
  options: {
    json: { type: 'boolean', help: 'print the status as JSON' },
  },
  needsConfig: true,
  async run(ctx) {
    const node = await SpokesyncNode.open(ctx.config, ctx.log, { lock: false });
    try {
      const s = await nodeStatus(node.db, ctx.config, node.reader);
      ctx.out(ctx.options.json === true ? JSON.stringify(s, null, 2) : formatStatus(s));
      return 0;
    } finally {
      await node.close();
    }
  },
};
