// A parent daemon (`spokesync run`, its own process, the shipped heap flags)
// takes hostile request bodies from an authenticated child: each is refused
// with a 4xx and its code, the daemon's peak RSS stays within 150 MiB, and it
// then serves the legitimate child as before.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import zlib from 'node:zlib';
import { spokesync } from '../helpers/cli.js';
import { startDaemon, waitHealthy } from '../helpers/daemon-proc.js';
import { hostileBodies } from '../helpers/hostile-bodies.js';
import { dumpServer, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';
import { DEFAULT_MAX_ELEMENTS } from '../../apply/codec/decode-limits.js';

const MiB = 1024 * 1024;
/** elements of the largest batch the default listen.maxElements lets through (the rest of it is <batch>, <e> and <cs>) */
const LARGE = DEFAULT_MAX_ELEMENTS - 3;
const TOKEN = 'leaf-hostile-token';
const HEAD = '<?xml version="1.0" encoding="UTF-8"?><batch xmlns="urn:spokesync:batch:1" v="1" from="leaf" to="hub" seq="1" ack="0" more="0">';
const CS = '<e seq="1"><cs o="leaf" h="117745985060864015" t="2026-01-02T03:04:05Z">';

/** gzip of head + piece × times + tail. */
function gzipOf(head: string, piece: string, times: number, tail: string): Buffer {
  const parts: string[] = [head];
  const per = Math.max(1, Math.floor((64 * 1024) / piece.length));
  for (let i = 0; i < times; i += per) parts.push(piece.repeat(Math.min(per, times - i)));
  parts.push(tail);
  return zlib.gzipSync(Buffer.from(parts.join('')), { level: 6 });
}

function attributes(n: number): Buffer {
  const parts = [`${HEAD}${CS}<i t="person" k="x"`];
  for (let i = 0; i < n; i++) parts.push(` a${i}="1"`);
  parts.push('/></cs></e></batch>');
  return zlib.gzipSync(Buffer.from(parts.join('')), { level: 9 });
}

interface Shape {
  readonly name: string;
  readonly encoding: string;
  readonly body: Buffer;
}

function shapes(): Shape[] {
  const cols = Array.from({ length: 100_000 }, (_, i) => `<c n="c${i}">1</c>`).join('');
  return [
    { name: '1,000,000 attributes on one element', encoding: 'gzip', body: attributes(1_000_000) },
    { name: '2,000,000 elements', encoding: 'gzip', body: gzipOf(`${HEAD}${CS}`, '<d t="person" k="x" g="abc"/>', 2_000_000, '</cs></e></batch>') },
    { name: '100,000 columns in one row', encoding: 'gzip', body: zlib.gzipSync(`${HEAD}${CS}<i t="person" k="x">${cols}</i></cs></e></batch>`) },
    { name: 'a 64 MiB value', encoding: 'gzip', body: gzipOf(`${HEAD}${CS}<i t="person" k="x"><c n="name">`, 'x'.repeat(65536), 1024, '</c></i></cs></e></batch>') },
    { name: 'a 4 MiB attribute value', encoding: 'gzip', body: gzipOf(`${HEAD}${CS}<i t="person" k="`, 'k'.repeat(65536), 64, '"/></cs></e></batch>') },
    { name: 'nesting 1,000,000 deep', encoding: 'gzip', body: gzipOf(`${HEAD}${CS}<i t="person" k="x">`, '<c n="name">', 1_000_000, '</batch>') },
    ...hostileBodies(),
  ];
}

/** One request on its own connection, closed after the answer (the parent limits connections per address). */
function post(port: number, s: Shape): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const req = http.request({
      host: '127.0.0.1', port, path: '/v1/exchange', method: 'POST', agent: false,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-encoding': s.encoding, 'content-type': 'application/xml', 'content-length': s.body.length },
    }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', (e) => resolve({ status: 0, text: `no answer: ${e.message}` }));
    });
    req.on('error', (e) => resolve({ status: 0, text: `no answer: ${e.message}` }));
    req.end(s.body);
  });
}

const dump = (n: NetNode): ReturnType<typeof dumpServer> => dumpServer(n.server);

void t.test('hostile bodies from an authenticated child', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-hostile-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'leaf', token: TOKEN }] });
  t.teardown(() => stopNode(hub));
  const port = hub.config.listen!.port;
  const leaf = await startNode({ id: 'leaf', parent: { url: `http://127.0.0.1:${port}`, token: TOKEN, maxTries: 2 } });
  t.teardown(() => stopNode(leaf));
  await hub.pause();
  await leaf.pause();
  const leafCfg = await leaf.writeConfig(dir);
  const daemon = startDaemon(await hub.writeConfig(dir));
  t.teardown(async () => { await daemon.stop(); });
  await waitHealthy(port, daemon);
  const before = daemon.memory();

  for (const s of shapes()) {
    const r = await post(port, s);
    t.ok(r.status >= 400 && r.status < 500, `${s.name} (${s.body.length} bytes ${s.encoding}): ${r.status} ${r.text.trim().slice(0, 120)}`);
    t.match(r.text, /^SPOKESYNC_E_(XML|XML_DTD|BATCH_TOO_LARGE): /, `${s.name}: a clear code`);
    await new Promise((r) => setTimeout(r, 200));
    if (daemon.proc.exitCode !== null || daemon.proc.signalCode !== null) {
      t.fail(`${s.name}: the daemon died: ${daemon.output().slice(-400)}`);
      return;
    }
    const m = daemon.memory();
    t.ok(m.hwm <= 150 * MiB, `${s.name}: peak RSS ${(m.hwm / MiB).toFixed(1)} MiB (at start ${(before.rss / MiB).toFixed(1)} MiB)`);
  }

  // the largest batch the limits let through, alone, then six at once: what they hold together is bounded too
  const large: Shape = { name: 'a batch at the element limit', encoding: 'gzip', body: gzipOf(`${HEAD}${CS}`, '<d t="scratch" k="x" g="abc"/>', LARGE, '</cs></e></batch>') };
  const alone = await post(port, large);
  t.match(alone.text, /^SPOKESYNC_E_UNKNOWN_TABLE: /, `${large.name}, alone: read whole, refused for its table`);
  t.ok(daemon.memory().hwm <= 150 * MiB, `${large.name}, alone: peak RSS ${(daemon.memory().hwm / MiB).toFixed(1)} MiB`);
  const answers = await Promise.all(Array.from({ length: 6 }, () => post(port, large)));
  const codes = answers.map((r) => `${r.status} ${r.status === 0 ? r.text : r.text.split(':')[0]}`).sort();
  t.ok(answers.every((r) => r.status >= 400 && r.status < 600 && /^SPOKESYNC_E_(UNKNOWN_TABLE|OVERLOADED): /.test(r.text)), `six at once: ${codes.join(', ')}`);
  t.ok(codes.some((c) => c.startsWith('503 SPOKESYNC_E_OVERLOADED')), 'some wait for their turn (503)');
  t.ok(codes.some((c) => c.startsWith('422 SPOKESYNC_E_UNKNOWN_TABLE')), 'at least one is read whole (and refused for its table)');
  t.ok(daemon.proc.exitCode === null && daemon.proc.signalCode === null, 'the daemon is still running');
  t.ok(daemon.memory().hwm <= 150 * MiB, `six at once: peak RSS ${(daemon.memory().hwm / MiB).toFixed(1)} MiB`);

  await hub.sql(`INSERT INTO person (uuid, name) VALUES (?, 'from hub')`, [uuid('h', 1)]);
  await leaf.sql(`INSERT INTO person (uuid, name) VALUES (?, 'from leaf')`, [uuid('l', 1)]);
  const sync = await spokesync(['sync', '--config', leafCfg]);
  t.equal(sync.code, 0, sync.err);
  t.match(sync.out, /synced with hub: sent 1, received 1/);
  t.same(await dump(hub), await dump(leaf), 'the legitimate child still syncs');
  t.ok(daemon.memory().hwm <= 150 * MiB, `peak RSS over the whole test: ${(daemon.memory().hwm / MiB).toFixed(1)} MiB`);
  t.equal(await daemon.stop(), 0, 'the daemon stops cleanly');
});
