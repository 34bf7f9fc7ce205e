// `spokesync verify`: whether this node holds the same synced rows as its
// parent, compared by checksums computed in each server (agent/verify/).
import type { CommandSpec } from '../cli/command.js';
import { compareWithParent, openSession } from '../verify/session.js';
import { formatVerify, verifyJson } from '../verify/report.js';

export const command: CommandSpec = {
  name: 'verify',
  summary: 'Compare this node\'s synced tables with its parent\'s, by checksums; list the rows that differ',
  description:
    'Compares every synced table of this node with the parent\'s copy (parent.url, the exchange endpoint, ' +
    'authenticated with parent.token) without shipping the rows: each server computes checksums of its rows, ' +
    'with every foreign key taken as the referenced row\'s identity (so local integer ids may differ), in ' +
    'chunks named by the identities\' digests; only chunks that differ are split further, until the rows ' +
    'that differ are known by table and identity. Values never leave either server and are never printed. ' +
    'It runs beside the daemon (or, when none runs, captures itself so that every local commit is journaled).\n\n' +
    'A row named by a change set that has not reached the other node yet (journaled and not acknowledged, ' +
    'quarantined or held, on either side) is in flight: listed apart, not as a difference. A table whose ' +
    'columns differ between the two nodes (names, types, charsets, nullability) is reported and not compared. ' +
    'The last line gives the bytes the comparison moved over the network.\n\n' +
    'A parent compares itself with a child only by file: not supported yet over the network from the parent side. ' +
    '`spokesync repair` makes differing rows equal.\n\n' +
    '--json prints {node, peer, identical, tables: [{table, state, rowsHere, rowsThere, shape}], differing: ' +
    '[{table, identity, difference}], inFlight: [{table, identity, at}], unnamed, bytes: {sent, received, total}, ' +
    'rounds, seconds}; difference is "changed", "missing here" or "only here".\n\n' +
    'Exit status: 0 identical (rows in flight aside), 1 rows or shapes differ or the parent could not be asked, 2 bad usage or config.',
  options: {
    peer: { type: 'string', arg: 'ID', help: 'the node to compare with (default and only choice over the network: the parent)' },
    json: { type: 'boolean', help: 'print the result as JSON' },
  },
  needsConfig: true,
  async run(ctx) {
    const session = await openSession(ctx.config, ctx.log);
    try {
      const peer = typeof ctx.options.peer === 'string' ? ctx.options.peer : undefined;
      const r = await compareWithParent(session, { ...(peer === undefined ? {} : { peer }), signal: ctx.signal });
      const v = verifyJson(ctx.config.node.id, r.peer, r.comparison, r.traffic, r.seconds);
      ctx.out(ctx.options.json === true ? JSON.stringify(v, null, 2) : formatVerify(v));
      return v.identical ? 0 : 1;
    } finally {
      await session.node.close();
    }
  },
};
