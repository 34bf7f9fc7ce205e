// Every content coding inflates within the receiver's limit, however small the
// body and whatever it claims: refused with SPOKESYNC_E_BATCH_TOO_LARGE (or
// SPOKESYNC_E_XML), in a process with the daemon's heap flags, without the
// process's peak memory growing by more than a few times the limit.
import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DAEMON_HEAP_FLAGS } from '../../agent/cli/heap-flags.js';
import { compress, decompress, type Encoding } from '../../agent/exchange/compression.js';
import { encodeBatch } from '../../apply/codec/batch-writer.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostileBodies, packBodies } from '../helpers/hostile-bodies.js';
import { prng, registration } from '../unit/codec-fixtures.js';

const run = promisify(execFile);
const proc = fileURLToPath(new URL('../helpers/inflate-proc.js', import.meta.url));
const MiB = 1024 * 1024;

void t.test('tiny bodies that inflate past the limit are refused at the limit', async (t) => {
  const max = 8 * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-bodies-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'bodies.json');
  const bodies = hostileBodies();
  await writeFile(file, packBodies(bodies));
  for (let i = 0; i < bodies.length; i++) {
    // one process per body: the peak RSS it reports is that body's own
    const { stdout } = await run(process.execPath, [...DAEMON_HEAP_FLAGS, proc, file, String(max), String(i)]).catch((e: { stdout?: string; stderr?: string; code?: number }) => {
      t.fail(`${bodies[i]!.name}: the process died (exit ${e.code}): ${(e.stderr ?? '').slice(-500)}`);
      return { stdout: '' };
    });
    for (const line of stdout.trim().split('\n').filter(Boolean)) {
      const l = JSON.parse(line) as { name: string; wire: number; code: string; grown: number };
      t.ok(l.code === 'SPOKESYNC_E_BATCH_TOO_LARGE' || l.code === 'SPOKESYNC_E_XML', `${l.name} (${l.wire} bytes): ${l.code}`);
      t.ok(l.grown < 3 * max, `${l.name}: peak RSS grew by ${(l.grown / MiB).toFixed(1)} MiB`);
    }
  }
});

void t.test('a batch near the limit still goes through every coding', async (t) => {
  const rnd = prng(7);
  const entries = Array.from({ length: 300 }, (_, i) => ({ seq: String(i + 1), cs: registration(i, rnd) }));
  const xml = await encodeBatch({ version: 1, from: 'a', to: 'b', seq: '1', ack: '0', more: false }, entries);
  for (const enc of ['gzip', 'br', 'spokesync-ubr', 'spokesync-vbr', 'identity'] as Encoding[]) {
    t.same(decompress(compress(xml, enc), enc, xml.length), xml, `${enc}: ${xml.length} bytes with a limit of exactly that`);
    t.throws(() => decompress(compress(xml, enc), enc, xml.length - 1), { code: 'SPOKESYNC_E_BATCH_TOO_LARGE' }, `${enc}: one byte over`);
  }
});
