// `spokesync export`: everything pending for a peer (default: the parent), with
// acks, into one encrypted, authenticated file for a USB stick.
import type { CommandSpec } from '../cli/command.js';
import { exportFile } from '../usb/transfer.js';
import { withUsbNode } from '../usb/usb-node.js';

export const command: CommandSpec = {
  name: 'export',
  summary: 'Write what is pending for a peer into an encrypted file (USB transfer)',
  description:
    'Waits until the journal holds every local commit, then writes every change set still ' +
    'to go to the peer, and the acks of what this node has taken from it, into FILE: the batch format, ' +
    'gzipped, encrypted and authenticated with AES-256-GCM under a key derived from the token the two ' +
    'nodes share. The peer is the parent unless --peer names a child. Exporting again is safe: the ' +
    "receiver applies each change once. The parent's node id is learned at first contact; before that, " +
    'name it with --peer. The daemon (`spokesync run`) may keep running: the command then works beside ' +
    'it, with its capture, and the daemon goes on serving its other peers; with no daemon the command ' +
    'runs capture itself.',
  options: {
    peer: { type: 'string', arg: 'ID', help: 'the node the file is for (default: the parent)' },
    out: { type: 'string', arg: 'FILE', required: true, help: 'the file to write' },
  },
  needsConfig: true,
  async run(ctx) {
    return withUsbNode(ctx.config, ctx.log, async ({ deps }) => {
      const peer = typeof ctx.options.peer === 'string' ? ctx.options.peer : undefined;
      const r = await exportFile(deps, { ...(peer === undefined ? {} : { peer }), out: String(ctx.options.out) });
      ctx.out(`wrote ${r.entries} change sets for ${r.peer} to ${String(ctx.options.out)} (${r.bytes} bytes)` +
        (r.discards > 0 ? `, with ${r.discards} discard reports` : '') + (r.acknowledged > 0 ? `, acknowledging ${r.acknowledged} discards` : '') +
        (r.reported > 0 ? `, with the status report of ${r.reported} node${r.reported === 1 ? '' : 's'}` : ''));
      return 0;
    });
  },
};
