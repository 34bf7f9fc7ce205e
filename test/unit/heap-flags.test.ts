// The daemon's V8 heap flags: which ones a process lacks, and the systemd unit
// sets exactly them.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { DAEMON_HEAP_FLAGS, missingHeapFlags } from '../../agent/cli/heap-flags.js';

void t.test('missing heap flags', async (t) => {
  t.same(missingHeapFlags([], undefined), ['--max-old-space-size=96'], 'none given: missing');
  t.same(missingHeapFlags(['--max-old-space-size=200'], ''), [], 'a value chosen on purpose counts');
  t.same(missingHeapFlags([], '--enable-source-maps  --max_old_space_size=64'), [], 'NODE_OPTIONS, with underscores too');
  t.same(missingHeapFlags(['--enable-source-maps'], '--max-semi-space-size=1'), ['--max-old-space-size=96'], 'other flags do not count');
  t.same(missingHeapFlags([], 'max-old-space-size=96'), DAEMON_HEAP_FLAGS, 'not a flag without its dashes');
});

void t.test('deploy/spokesync.service sets the same flags', async (t) => {
  const unit = await readFile(new URL('../../../deploy/spokesync.service', import.meta.url), 'utf8');
  const m = /^Environment="NODE_OPTIONS=([^"]*)"$/m.exec(unit);
  t.ok(m, 'the unit sets NODE_OPTIONS');
  t.same(m?.[1]?.split(' '), DAEMON_HEAP_FLAGS);
  t.same(missingHeapFlags([], m?.[1]), []);
});
