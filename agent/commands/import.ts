// `spokesync import`: apply a peer's USB file (authenticated whole first), and
// optionally write the reply file for that peer.
import type { CommandSpec } from '../cli/command.js';
import { CATCH_UP_MS, withNode } from '../node.js';
import { importFile } from '../usb/transfer.js';

export const command: CommandSpec = {
  name: 'import',
  summary: "Apply a peer's USB file; --reply writes the file to carry back",
  description:
    'Checks that FILE was sealed by a peer of this node (a child, or the parent) for this node, and ' +
    'authenticates all of it before anything is applied: a tampered, truncated, or foreign file is ' +
    'refused (SPOKESYNC_E_USB_FILE) with nothing applied. Then the change sets are applied (each once, ' +
    'however often the file is imported, and whatever also came over the network) and the cursors move. ' +
    'With --reply FILE, the answer for that peer (acks plus everything pending for it) is written too: ' +
    'child exports, parent imports with --reply, child imports the reply.',
  options: {
    in: { type: 'string', arg: 'FILE', required: true, help: 'the file to import' },
    reply: { type: 'string', arg: 'FILE', help: 'write the reply for the sending peer to this file' },
  },
  needsConfig: true,
  async run(ctx) {
    return withNode(ctx.config, ctx.log, async (node) => {
      await node.startCapture();
      const reply = typeof ctx.options.reply === 'string' ? ctx.options.reply : undefined;
      const r = await importFile(node.usb(), { in: String(ctx.options.in), ...(reply === undefined ? {} : { reply }) });
      await node.capture.caughtUp(CATCH_UP_MS);
      ctx.out(`imported ${r.received} change sets from ${r.sender}: applied ${r.applied}, duplicates ${r.duplicates + r.replayed}, ` +
        `quarantined ${r.quarantined}, conflicts ${r.conflicts}` +
        (r.discards > 0 ? `; recorded ${r.discards} discards of ${r.sender}` : '') +
        (r.acknowledged > 0 ? `; ${r.acknowledged} discards now reported to ${r.sender}` : '') +
        (r.reply ? `; wrote ${r.reply.entries} change sets for ${r.sender} to ${reply ?? ''}` : ''));
      return 0;
    });
  },
};
