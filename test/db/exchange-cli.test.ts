// The exchange commands as users run them (the built binary, real processes):
// `run` serves and stops cleanly on SIGTERM, `sync` exits 0 when drained and 1
// when the parent is unreachable, `status --json` reports cursors and capture,
// `export`/`import --reply` carry a USB round, a damaged file exits 1, and a
// node held by the daemon refuses a second daemon.
import { spokesync, spokesyncMain } from '../helpers/cli.js';
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../deploy/sandbox/mariadb.js';
import { dumpServer, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

const dump = (n: NetNode): ReturnType<typeof dumpServer> => dumpServer(n.server);

async function waitHealthy(port: number, daemon: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (daemon.exitCode !== null) throw new Error(`the daemon exited with ${daemon.exitCode}`);
    const ok = await fetch(`http://127.0.0.1:${port}/v1/health`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the daemon did not start serving');
}

void t.test('exchange commands', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'leaf', token: 'leaf-cli-token' }] });
  t.teardown(() => stopNode(hub));
  const hubPort = hub.config.listen!.port;
  const leaf = await startNode({ id: 'leaf', parent: { url: `http://127.0.0.1:${hubPort}`, token: 'leaf-cli-token', maxTries: 2 } });
  t.teardown(() => stopNode(leaf));
  // the nodes were created (schemas, checkpoints); from here on the commands own them
  await hub.pause();
  await leaf.pause();
  const hubCfg = await hub.writeConfig(dir);
  const leafCfg = await leaf.writeConfig(dir);

  await hub.sql(`INSERT INTO person (uuid, name) VALUES (?, 'from hub')`, [uuid('h', 1)]);
  await leaf.sql(`INSERT INTO person (uuid, name) VALUES (?, 'from leaf')`, [uuid('l', 1)]);

  const daemon = spawn(process.execPath, [spokesyncMain, 'run', '--config', hubCfg], { env: { PATH: process.env.PATH } });
  let daemonOut = '';
  daemon.stdout.on('data', (d: Buffer) => { daemonOut += d.toString(); });
  daemon.stderr.on('data', (d: Buffer) => { daemonOut += d.toString(); });
  const exited = new Promise<number | null>((resolve) => daemon.on('close', (code) => resolve(code)));
  t.teardown(() => { if (daemon.exitCode === null) daemon.kill('SIGKILL'); });
  await waitHealthy(hubPort, daemon);

  const busy = await spokesync(['run', '--config', hubCfg], {}, { killAfterMs: 60_000 });
  t.equal(busy.code, 1, 'a second daemon on a node held by the daemon');
  t.match(busy.err, /SPOKESYNC_E_BUSY/);

  const sync = await spokesync(['sync', '--config', leafCfg]);
  t.equal(sync.code, 0, sync.err);
  t.match(sync.out, /synced with hub: sent 1, received 1/);

  const status = await spokesync(['status', '--config', leafCfg, '--json']);
  t.equal(status.code, 0, status.err);
  const s = JSON.parse(status.out) as {
    node: string; capture: { behindBytes: number; daemon: boolean }; peers: { peer: string; role: string; pending: number; lastResult: string }[];
  };
  t.equal(s.node, 'leaf');
  t.ok(s.capture.behindBytes < 16384, `capture ${s.capture.behindBytes} bytes behind: only its own state writes`);
  t.notOk(s.capture.daemon);
  t.match(s.peers, [{ peer: 'hub', role: 'parent', pending: 0, lastResult: 'ok' }]);
  const hubStatus = await spokesync(['status', '--config', hubCfg]);
  t.equal(hubStatus.code, 0, hubStatus.err);
  t.match(hubStatus.out, /daemon running/);
  t.match(hubStatus.out, /leaf\s+child\s+0/);

  daemon.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: the daemon stops cleanly');
  t.match(daemonOut, /"msg":"capture stopped"/);
  t.same(await dump(hub), await dump(leaf), 'converged over HTTP');

  const down = { ...leaf.config, parent: { ...leaf.config.parent!, url: `http://127.0.0.1:${await freePort()}` } };
  const downCfg = join(dir, 'leaf-down.yaml');
  await writeFile(downCfg, (await readFile(leafCfg, 'utf8')).replace(`:${hubPort}`, new URL(down.parent.url).port ? `:${new URL(down.parent.url).port}` : ''));
  const unreachable = await spokesync(['sync', '--config', downCfg]);
  t.equal(unreachable.code, 1, 'parent unreachable');
  t.match(unreachable.err, /SPOKESYNC_E_HTTP/);
  t.match(unreachable.err, /ECONNREFUSED http:\/\/127\.0\.0\.1:\d+\/v1\//, 'the error names the URL it tried');
  t.notMatch(unreachable.err, /next interval/, 'sync promises no next interval: it is one exchange');

  // USB round with the commands (the daemon is stopped)
  await leaf.sql(`INSERT INTO person (uuid, name) VALUES (?, 'by usb')`, [uuid('l', 2)]);
  await hub.sql(`INSERT INTO person (uuid, name) VALUES (?, 'back by usb')`, [uuid('h', 2)]);
  const exp = await spokesync(['export', '--config', leafCfg, '--out', join(dir, 'leaf.usb')]);
  t.equal(exp.code, 0, exp.err);
  t.match(exp.out, /wrote 1 change sets for hub .*, with the status report of 1 node$/m, 'the file carries leaf\'s status report');
  const imp = await spokesync(['import', '--config', hubCfg, '--in', join(dir, 'leaf.usb'), '--reply', join(dir, 'hub.usb')]);
  t.equal(imp.code, 0, imp.err);
  t.match(imp.out, /imported 1 change sets from leaf: applied 1.*wrote 1 change sets for leaf/);
  const bytes = await readFile(join(dir, 'hub.usb'));
  bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 1;
  await writeFile(join(dir, 'bad.usb'), bytes);
  const bad = await spokesync(['import', '--config', leafCfg, '--in', join(dir, 'bad.usb')]);
  t.equal(bad.code, 1, 'a damaged file');
  t.match(bad.err, /SPOKESYNC_E_USB_FILE/);
  const back = await spokesync(['import', '--config', leafCfg, '--in', join(dir, 'hub.usb')]);
  t.equal(back.code, 0, back.err);
  t.same(await dump(hub), await dump(leaf), 'converged over USB');
  t.equal(Object.keys((await dump(hub)).person ?? {}).length, 4);
});
