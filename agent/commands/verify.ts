// `spokesync verify`: whether this node holds the same synced rows as its
// parent (or a peer, by file), compared by checksums computed in each server (agent/verify/).
import type { CommandSpec } from '../cli/command.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { compareWithFile, compareWithParent, openSession, writeChecksums } from '../verify/verify-session.js';
import { formatVerify, verifyJson } from '../verify/verify-report.js';

export const command: CommandSpec = {
  name: 'verify',
  summary: 'Compare the synced tables with the parent\'s (or a peer\'s file) by checksums; list rows that differ',
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
    'The last line gives the bytes the comparison moved.\n\n' +
    'By file (no link, or a parent checking a child): `--out FILE [--peer ID]` writes this node\'s checksums ' +
    'for a peer (a child, or the parent by default): every row\'s identity and fingerprint, no value, sealed ' +
    'with the token the two share; `--in FILE` at that peer compares itself with them (the bytes moved are the ' +
    'file\'s). A file shows the writer as it was when written: sync or carry what is pending first.\n\n' +
    '`spokesync repair` makes differing rows equal (over the network).\n\n' +
    '--json prints {node, peer, identical, tables: [{table, state, rowsHere, rowsThere, shape}], differing: ' +
    '[{table, identity, difference}], inFlight: [{table, identity, at}], unnamed, bytes: {sent, received, total}, ' +
    'rounds, seconds}; difference is "changed", "missing here" or "only here".\n\n' +
    'Exit status: 0 identical (rows in flight aside) or the file written, 1 rows or shapes differ or the peer ' +
    'could not be asked, 2 bad usage or config.',
  options: {
    peer: { type: 'string', arg: 'ID', help: 'over the network: the parent (the default and only choice); with --out: the peer the file is for' },
    json: { type: 'boolean', help: 'print the result as JSON' },
    out: { type: 'string', arg: 'FILE', help: 'write this node\'s checksums for --peer to FILE instead of comparing' },
    in: { type: 'string', arg: 'FILE', help: 'compare with the checksums a peer wrote for this node (verify --out there)' },
  },
  needsConfig: true,
  async run(ctx) {
    const out = typeof ctx.options.out === 'string' ? ctx.options.out : undefined;
    const from = typeof ctx.options.in === 'string' ? ctx.options.in : undefined;
    if (out !== undefined && from !== undefined) throw new SpokesyncError('SPOKESYNC_E_USAGE', '--out and --in do not go together');
    const peer = typeof ctx.options.peer === 'string' ? ctx.options.peer : undefined;
    const session = await openSession(ctx.config, ctx.log);
    try {
      if (out !== undefined) {
        const w = await writeChecksums(session, out, peer);
        ctx.out(`wrote the checksums of ${w.rows} rows in ${w.tables} tables for ${w.peer} to ${out} (${w.bytes} bytes, sealed with its token); ` +
          `compare there with \`spokesync verify --config F --in ${out}\``);
        return 0;
      }
      const r = from !== undefined ? await compareWithFile(session, from, peer)
        : await compareWithParent(session, { ...(peer === undefined ? {} : { peer }), signal: ctx.signal });
      const v = verifyJson(ctx.config.node.id, r.peer, r.comparison, r.traffic, r.seconds);
      ctx.out(ctx.options.json === true ? JSON.stringify(v, null, 2) : formatVerify(v));
      return v.identical ? 0 : 1;
    } finally {
      await session.node.close();
    }
  },
};
