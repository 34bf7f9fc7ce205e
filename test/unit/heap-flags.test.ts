// The daemon's V8 heap flags: which ones a process lacks, and the systemd unit
// sets exactly them.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { DAEMON_HEAP_FLAGS, missingHeapFlags } from '../../agent/cli/heap-flags.js';

void t.test('missing heap flags', async (t) => {
  t.same(missingHeapFlags([], undefined), ['--max-old-space-size=96', '--max-semi-space-size=4'], 'none given: missing');
  t.same(missingHeapFlags(['--max-old-space-size=200'], '--max-semi-space-size=8'), [], 'values chosen on purpose count');
  t.same(missingHeapFlags(['--max-old-space-size=200'], ''), ['--max-semi-space-size=4'], 'one given, the other missing');
  t.same(missingHeapFlags([], '--enable-source-maps  --max_old_space_size=64 --max_semi_space_size=2'), [], 'NODE_OPTIONS, with underscores too');
  t.same(missingHeapFlags(['--enable-source-maps'], '--max-executable-size=1'), DAEMON_HEAP_FLAGS, 'other flags do not count');
  t.same(missingHeapFlags([], 'max-old-space-size=96'), DAEMON_HEAP_FLAGS, 'not a flag without its dashes');
});

void t.test('deploy/spokesync.service sets the same flags', async (t) => {
  const unit = await readFile(new URL('../../../deploy/spokesync.service', import.meta.url), 'utf8');
  const m = /^Environment="NODE_OPTIONS=([^"]*)"$/m.exec(unit);
  t.ok(m, 'the unit sets NODE_OPTIONS');
  t.same(m?.[1]?.split(' '), DAEMON_HEAP_FLAGS);
  t.same(missingHeapFlags([], m?.[1]), []);
});
