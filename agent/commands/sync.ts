// `spokesync sync`: one full exchange with the parent now. Capture runs first
// until the journal holds every local commit, then batches go both ways until
// both sides are drained. Exit 0 only when nothing is left to send or receive.
import type { CommandSpec } from '../cli/command.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { CATCH_UP_MS, withNode } from '../node.js';

export const command: CommandSpec = {
  name: 'sync',
  summary: 'One full exchange with the parent now; exit 0 only when nothing is left either way',
  description:
    'Starts capture and waits until every change committed on this database is in the journal, then ' +
    'exchanges batches with the parent (parent.url) until neither side has anything more to send, and ' +
    'waits for capture to journal what was applied. Quarantined change sets are retried first. ' +
    'Stop the daemon (`spokesync run`) of this node first: one process per node.\n\n' +
    'Exit status: 0 when nothing is left pending either way, 1 when changes are still pending ' +
    '(SPOKESYNC_E_PENDING) or the parent could not be reached, 2 on a bad config.',
  options: {},
  needsConfig: true,
  async run(ctx) {
    if (!ctx.config.parent) throw new SpokesyncError('SPOKESYNC_E_USAGE', 'this node has no parent section in its config: nothing to sync with');
    return withNode(ctx.config, ctx.log, async (node) => {
      await node.startCapture();
      const r = await node.syncWithParent(ctx.signal);
      await node.capture.caughtUp(CATCH_UP_MS);
      ctx.out(`synced with ${r.parent}: sent ${r.sent}, received ${r.received} (applied ${r.applied}, ` +
        `duplicates ${r.duplicates}, quarantined ${r.quarantined}, conflicts ${r.conflicts}) in ${r.rounds} rounds`);
      if (!r.drained) {
        throw new SpokesyncError('SPOKESYNC_E_PENDING', ctx.signal.aborted ? 'stopped before the exchange was complete' : 'changes are still pending after the exchange');
      }
      return 0;
    });
  },
};
