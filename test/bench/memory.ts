// A parent daemon and a child daemon, each `spokesync run` in its own process
// with the shipped heap flags, under a steady write load on both databases.
// Prints the parent's RSS and V8 heap (after GC, from --trace-gc) over time and
// its peak RSS (VmHWM). Run alone: node dist/test/bench/memory.js [minutes]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon, waitHealthy, type Daemon } from '../helpers/daemon-proc.js';
import { startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

const MiB = 1024 * 1024;

/** The heap in use after the last full GC, from --trace-gc lines (`Mark-Compact 45.1 (60.2) -> 41.2 (58.0) MB`). */
function heapAfterGc(out: string): number {
  const all = [...out.matchAll(/Mark-Compact[^\n]*?-> ([0-9.]+) \([0-9.]+\) MB/g)];
  return all.length > 0 ? Number(all[all.length - 1]![1]) : NaN;
}

async function load(n: NetNode, prefix: string, stop: () => boolean, perSecond: number): Promise<number> {
  let i = 0;
  const photo = Buffer.alloc(1500, prefix.charCodeAt(0));
  while (!stop()) {
    const started = Date.now();
    i++;
    const id = uuid(prefix, i);
    await n.sql(
      `START TRANSACTION; INSERT INTO person (uuid, name, gender, born, photo) VALUES (?, ?, 'F', '1990-01-02 03:04:05.123456', ?); ` +
        `INSERT INTO visit (uuid, person_id, note, weight) VALUES (?, LAST_INSERT_ID(), ?, 61.5); COMMIT`,
      [id, `person ${prefix} ${i}`, photo, uuid(`${prefix}v`, i), `visit note ${i} `.repeat(10)],
    );
    if (i > 10) await n.sql(`UPDATE person SET name = ?, changed_at = NOW() WHERE uuid = ?`, [`renamed ${i}`, uuid(prefix, i - 10)]);
    if (i % 20 === 0) await n.sql(`INSERT INTO setting (property, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)`, [`${prefix}-k${i % 200}`, String(i)]);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 / perSecond - (Date.now() - started))));
  }
  return i;
}

export async function bench(log: (line: string) => void, minutes = Number(process.env.MEMORY_MINUTES ?? 3)): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-memory-'));
  const token = 'leaf-memory-token';
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'leaf', token }] });
  const leaf = await startNode({ id: 'leaf', parent: { url: `http://127.0.0.1:${hub.config.listen!.port}`, token, interval: 1000, compression: 'br' } });
  let hubD: Daemon | undefined;
  let leafD: Daemon | undefined;
  try {
    await hub.pause();
    await leaf.pause();
    // MEMORY_SNAPSHOTS=DIR: heap snapshots of the parent after the first minute and at the end, in DIR
    const snapshots = process.env.MEMORY_SNAPSHOTS;
    hubD = startDaemon(await hub.writeConfig(dir), ['--trace-gc', ...(snapshots ? ['--heapsnapshot-signal=SIGUSR2'] : [])], snapshots);
    let shots = 0;
    await waitHealthy(hub.config.listen!.port, hubD);
    leafD = startDaemon(await leaf.writeConfig(dir), ['--trace-gc']);
    const end = Date.now() + minutes * 60_000;
    const stop = (): boolean => Date.now() > end;
    const loads = Promise.all([load(leaf, 'l', stop, 20), load(hub, 'h', stop, 10)]);
    while (!stop()) {
      await new Promise((r) => setTimeout(r, 15_000));
      if (hubD.proc.exitCode !== null) throw new Error(`the parent daemon exited:\n${hubD.output().slice(-3000)}`);
      const elapsed = Date.now() - end + minutes * 60_000;
      if (snapshots && ((shots === 0 && elapsed > 60_000) || (shots === 1 && Date.now() > end - 20_000))) {
        shots++;
        hubD.proc.kill('SIGUSR2');
      }
      const m = hubD.memory();
      log(`t=${Math.round((Date.now() - end) / 1000 + minutes * 60)}s parent rss ${(m.rss / MiB).toFixed(1)} MiB, heap after the last full GC ${heapAfterGc(hubD.output())} MB; child rss ${(leafD.memory().rss / MiB).toFixed(1)} MiB, heap ${heapAfterGc(leafD.output())} MB`);
    }
    const [l, h] = await loads;
    log(`wrote ${l} transactions on the child and ${h} on the parent in ${minutes} min`);
    log(`peak RSS (VmHWM): parent ${(hubD.memory().hwm / MiB).toFixed(1)} MiB, child ${(leafD.memory().hwm / MiB).toFixed(1)} MiB`);
    const exchanged = (hubD.output().match(/"msg":"exchange"/g) ?? []).length;
    log(`${exchanged} exchanges served`);
  } finally {
    await hubD?.stop();
    await leafD?.stop();
    await stopNode(leaf);
    await stopNode(hub);
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const minutes = Number(process.argv[2] ?? 3);
  await bench((line) => console.log(line), minutes);
}
