// `spokesync import`: apply a peer's USB file (authenticated whole first), and
// optionally write the reply file for that peer.
import type { CommandSpec } from '../cli/command.js';
import { importFile } from '../usb/transfer.js';
import { withUsbNode } from '../usb/usb-node.js';

export const command: CommandSpec = {
  name: 'import',
  summary: "Apply a peer's USB file; --reply writes the file to carry back",
  description:
    'Checks that FILE was sealed by a peer of this node (a child, or the parent) for this node, and ' +
    'authenticates all of it before anything is applied: a tampered, truncated, or foreign file is ' +
    'refused (SPOKESYNC_E_USB_FILE) with nothing applied. Then the change sets are applied (each once, ' +
    'however often the file is imported, and whatever also came over the network) and the cursors move. ' +
    'With --reply FILE, the answer for that peer (acks plus everything pending for it) is written too: ' +
    'child exports, parent imports with --reply, child imports the reply. The daemon (`spokesync run`) ' +
    'may keep running: the command then applies beside it, taking turns with it, while the daemon goes ' +
    'on serving its other peers; with no daemon the command runs capture itself. Stopping the command ' +
    'at any point is safe: run it again.',
  options: {
    in: { type: 'string', arg: 'FILE', required: true, help: 'the file to import' },
    reply: { type: 'string', arg: 'FILE', help: 'write the reply for the sending peer to this file' },
  },
  needsConfig: true,
  async run(ctx) {
    return withUsbNode(ctx.config, ctx.log, async ({ deps }) => {
      const reply = typeof ctx.options.reply === 'string' ? ctx.options.reply : undefined;
      const r = await importFile(deps, { in: String(ctx.options.in), ...(reply === undefined ? {} : { reply }) });
      // what was applied is journaled (to go on to the other peers) before the command ends
      await deps.caughtUp?.();
      ctx.out(`imported ${r.received} change sets from ${r.sender}: applied ${r.applied}, duplicates ${r.duplicates + r.replayed}, ` +
        `quarantined ${r.quarantined}, conflicts ${r.conflicts}` +
        (r.discards > 0 ? `; recorded ${r.discards} discards of ${r.sender}` : '') +
        (r.acknowledged > 0 ? `; ${r.acknowledged} discards now reported to ${r.sender}` : '') +
        (r.reply ? `; wrote ${r.reply.entries} change sets for ${r.sender} to ${reply ?? ''}` : ''));
      return 0;
    });
  },
};
