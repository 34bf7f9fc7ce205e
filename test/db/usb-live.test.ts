// USB while the daemon runs: a parent's daemon (`spokesync run`, its own
// process) serves two children over HTTP, which keep writing and syncing, while
// a third site's file is imported there with --reply and an export for that
// site is written, both by the commands beside the daemon. Every round of the
// HTTP children succeeds meanwhile, and all four nodes end with the same rows.
// Then the same file imported twice at once while the site also syncs over
// HTTP, an import killed half-way and run again, and the daemon killed during
// an import (the import then takes the node and ends): each change set once.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { spokesync, type CliResult } from '../helpers/cli.js';
import { startDaemon, waitHealthy, type Daemon } from '../helpers/daemon-proc.js';
import { dumpServer, registerPatients, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';
import { exportFile, importFile } from '../../agent/usb/transfer.js';
import { openDb, type Queryable } from '../../apply/core/db.js';
import type { Dump } from '../../deploy/sandbox/identity-dump.js';

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const SHARED = 12;


/** An update of a row every node holds: concurrent writers, resolved by version. */
async function touchShared(n: NetNode, who: string, i: number): Promise<void> {
  await n.sql('UPDATE person SET name = ? WHERE uuid = ?', [`${who}-${i}`, uuid('shared', i % SHARED)]);
}

/** Patients by the tag of the node that wrote them ('a', 'b', 's'...). */
async function tally(db: Queryable): Promise<Record<string, number>> {
  const rows = await db.query<{ tag: string; n: number | string }>(
    `SELECT SUBSTRING_INDEX(name, '-', 1) AS tag, COUNT(*) AS n FROM app.person GROUP BY tag`);
  return Object.fromEntries(rows.map((r) => [r.tag, Number(r.n)]));
}

interface Round {
  readonly start: number;
  readonly end: number;
  readonly error?: string;
}

/** An application's write: run again when InnoDB picks it as a deadlock victim (the applier holds row locks meanwhile), as applications do. */
async function appWrite(write: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await write();
      return;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (attempt >= 20 || (code !== 'ER_LOCK_DEADLOCK' && code !== 'ER_LOCK_WAIT_TIMEOUT')) throw e;
      await pause(20 * attempt);
    }
  }
}

/** A child that writes and syncs in loops until stopped: every sync is noted. */
function syncLoop(n: NetNode, tag: string): { rounds: Round[]; stop(): Promise<void> } {
  const rounds: Round[] = [];
  let running = true;
  const writes = (async () => {
    for (let i = 1; running; i++) {
      await appWrite(() => registerPatients(n, tag, 1000 + i, 1));
      await appWrite(() => touchShared(n, tag, i));
      await pause(100);
    }
  })();
  const syncs = (async () => {
    while (running) {
      const start = Date.now();
      try {
        await n.node.syncWithParent();
        rounds.push({ start, end: Date.now() });
      } catch (e) {
        rounds.push({ start, end: Date.now(), error: `${(e as { code?: string }).code ?? ''} ${(e as Error).message}` });
      }
      await pause(50);
    }
  })();
  return { rounds, stop: async () => { running = false; await Promise.all([writes, syncs]); } };
}

/** `imported N change sets from P: applied A, duplicates D, …` */
function counts(r: CliResult): { received: number; applied: number; duplicates: number; quarantined: number } {
  const m = /imported (\d+) change sets from [a-z0-9-]+: applied (\d+), duplicates (\d+), quarantined (\d+)/.exec(r.out);
  if (!m) throw new Error(`no import summary in: ${r.out}${r.err}`);
  return { received: Number(m[1]), applied: Number(m[2]), duplicates: Number(m[3]), quarantined: Number(m[4]) };
}

/** The "batch applied" log lines of change sets from `peer` since `since`, in a process's output. */
function batchesIn(output: string, peer: string, since: number): { time: number; applied: number }[] {
  const out: { time: number; applied: number }[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const l = JSON.parse(line) as { msg?: string; from?: string; time?: string; applied?: number };
    const time = Date.parse(l.time ?? '');
    if (l.msg === 'batch applied' && l.from === peer && time >= since) out.push({ time, applied: l.applied ?? 0 });
  }
  return out;
}

/** Change sets applied from `peer` since `since`, by the process that printed `output`. */
const appliedBy = (output: string, peer: string, since: number): number =>
  batchesIn(output, peer, since).reduce((n, b) => n + b.applied, 0);

/** Rows of one query on the hub's server (its daemon owns the node). */
async function hubRows<R>(hub: NetNode, sql: string, params: unknown[] = []): Promise<R[]> {
  const db = openDb({ host: hub.server.host, port: hub.server.port, user: 'root' });
  try {
    return await db.query<R>(sql, params);
  } finally {
    await db.close();
  }
}

void t.test('USB at a parent whose daemon serves two children over HTTP', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-usb-live-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const f = (name: string): string => join(dir, name);
  const hub = await startNode({
    id: 'hub', listen: true,
    children: [{ id: 'ca', token: 'ca-token-live' }, { id: 'cb', token: 'cb-token-live' }, { id: 'site', token: 'site-token-live' }],
  });
  t.teardown(() => stopNode(hub));
  const url = `http://127.0.0.1:${hub.config.listen!.port}`;
  const ca = await startNode({ id: 'ca', parent: { url, token: 'ca-token-live' } });
  t.teardown(() => stopNode(ca));
  const cb = await startNode({ id: 'cb', parent: { url, token: 'cb-token-live' } });
  t.teardown(() => stopNode(cb));
  // larger batches than the file's groups: over HTTP the site can overtake an import of its file
  const site = await startNode({ id: 'site', parent: { url, token: 'site-token-live', batch: { records: 150, bytes: 1 << 20 } } });
  t.teardown(() => stopNode(site));
  const children = [ca, cb, site];

  // rows every node holds, updated everywhere later; the site learns its parent over the network once
  for (let i = 0; i < SHARED; i++) await hub.sql(`INSERT INTO person (uuid, name) VALUES (?, 'shared')`, [uuid('shared', i)]);
  await hub.node.capture.caughtUp(60_000);
  for (const c of children) await c.node.syncWithParent();
  t.equal(await site.node.parentId(), 'hub');

  // from here the hub is its daemon's
  await hub.pause();
  const hubCfg = await hub.writeConfig(dir);
  const daemon: Daemon = startDaemon(hubCfg);
  t.teardown(async () => { await daemon.stop(); });
  await waitHealthy(hub.config.listen!.port, daemon);
  const hubDump = (): Promise<Dump> => dumpServer(hub.server);
  const importAtHub = (file: string, reply?: string): Promise<CliResult> =>
    spokesync(['import', '--config', hubCfg, '--in', file, ...(reply ? ['--reply', reply] : [])]);

  /** Change sets of the site in the hub's ledger. */
  const fromSite = async (): Promise<number> =>
    Number((await hubRows<{ n: number | string }>(hub, `SELECT COUNT(*) AS n FROM spokesync.ledger WHERE origin = 'site'`))[0]!.n);

  /** A USB round trip for the site (its export, the hub's import with --reply, the reply imported at the site). */
  const usbRound = async (name: string): Promise<CliResult> => {
    await site.node.capture.caughtUp(60_000);
    await exportFile(site.node.usb(), { out: f(`${name}.up`) });
    const r = await importAtHub(f(`${name}.up`), f(`${name}.down`));
    if (r.code === 0) await importFile(site.node.usb(), { in: f(`${name}.down`) });
    return r;
  };

  /** Syncs everyone until all four dumps are equal. */
  const converge = async (): Promise<void> => {
    for (let pass = 1; ; pass++) {
      await Promise.all([ca, cb].map(async (c) => { await c.node.capture.caughtUp(60_000); await c.node.syncWithParent(); }));
      const r = await usbRound(`converge-${pass}`);
      if (r.code !== 0) throw new Error(`import at the hub failed: ${r.err}`);
      for (const c of children) await c.node.capture.caughtUp(60_000);
      const dumps = await Promise.all([hubDump(), ca.dump(), cb.dump(), site.dump()]);
      if (dumps.every((d) => isDeepStrictEqual(d, dumps[0]))) return;
      if (pass >= 8) {
        t.same(dumps.slice(1), [dumps[0], dumps[0], dumps[0]], 'every node holds the hub\'s rows');
        return;
      }
      await pause(500);
    }
  };

  await t.test('import --reply and export while the daemon serves its children', async (t) => {
    await registerPatients(site, 's', 1, 400);
    for (let i = 0; i < 40; i++) await touchShared(site, 'site', i);
    await site.node.capture.caughtUp(60_000);
    const up = await exportFile(site.node.usb(), { out: f('site-1.up') });
    t.equal(up.entries, 440);

    const loops = [syncLoop(ca, 'a'), syncLoop(cb, 'b')];
    let hubWriting = true;
    const hubWrites = (async () => {
      for (let i = 1; hubWriting; i++) {
        await appWrite(() => registerPatients(hub, 'h', 1000 + i, 1));
        await appWrite(() => touchShared(hub, 'hub', i));
        await pause(100);
      }
    })();
    await pause(1500);
    let importing = true;
    const hubDb = openDb({ host: hub.server.host, port: hub.server.port, user: 'root' });
    t.teardown(() => hubDb.close());
    const watched = (async () => {
      // while the import runs: the HTTP children's rows at the hub (their uploads applied), the site's at the children
      const samples: { hub: Record<string, number>; ca: Record<string, number>; cb: Record<string, number> }[] = [];
      while (importing) {
        samples.push({ hub: await tally(hubDb), ca: await tally(ca.node.db), cb: await tally(cb.node.db) });
        await pause(200);
      }
      return samples;
    })();
    const [imp, exp] = await Promise.all([
      importAtHub(f('site-1.up'), f('site-1.down')),
      spokesync(['export', '--config', hubCfg, '--peer', 'site', '--out', f('site-1.extra')]),
    ]);
    importing = false;
    const samples = await watched;
    await pause(1500);
    hubWriting = false;
    await hubWrites;
    for (const l of loops) await l.stop();

    t.equal(imp.code, 0, `import --reply beside the daemon: ${imp.err}`);
    t.match(counts(imp), { received: 440, applied: 440, quarantined: 0 });
    t.match(imp.out, /wrote \d+ change sets for site/);
    t.equal(exp.code, 0, `export beside the daemon: ${exp.err}`);
    t.match(exp.out, /wrote \d+ change sets for site/);
    t.equal(daemon.proc.exitCode, null, 'the daemon still runs');
    t.ok(samples.length >= 3, `${samples.length} samples during the import`);
    const [first, last] = [samples[0]!, samples[samples.length - 1]!];
    for (const [name, tag, l] of [['ca', 'a', loops[0]!], ['cb', 'b', loops[1]!]] as const) {
      t.same(l.rounds.filter((r) => r.error !== undefined), [], `every sync of ${name} succeeded`);
      t.ok((last.hub[tag] ?? 0) > (first.hub[tag] ?? 0),
        `the hub applied ${name}'s uploads during the import (${first.hub[tag] ?? 0} → ${last.hub[tag] ?? 0} patients)`);
      t.ok((last[name].s ?? 0) > 0, `${name} held ${last[name].s ?? 0} of the site's 400 patients before the import ended`);
    }

    // the site takes both files (the second only repeats what the reply holds)
    await importFile(site.node.usb(), { in: f('site-1.down') });
    await importFile(site.node.usb(), { in: f('site-1.extra') });
    await converge();
    const dumps = await Promise.all([hubDump(), ca.dump(), cb.dump(), site.dump()]);
    t.same(dumps.slice(1), [dumps[0], dumps[0], dumps[0]], 'all four nodes hold the same rows');
    t.ok(Object.keys(dumps[0]!.person ?? {}).length > SHARED + 400, 'with the rows of every node');
    const [q] = await hubRows<{ n: number }>(hub, 'SELECT COUNT(*) AS n FROM spokesync.quarantine');
    t.equal(Number(q!.n), 0, 'nothing quarantined at the hub');
  });

  await t.test('the same file twice at once, while the site also syncs over HTTP: each change set once', async (t) => {
    await registerPatients(site, 's', 2000, 220);
    for (let i = 0; i < 30; i++) await touchShared(site, 'site2', i);
    await site.node.capture.caughtUp(60_000);
    await exportFile(site.node.usb(), { out: f('site-2.up') });
    const since = Date.now();
    const before = await fromSite();
    const [one, two, net] = await Promise.all([
      importAtHub(f('site-2.up')),
      importAtHub(f('site-2.up')),
      (async () => {
        // the same change sets over HTTP once the first import has applied some of them
        while ((await fromSite()) === before) await pause(20);
        return site.node.syncWithParent();
      })(),
    ]);
    t.equal(one.code, 0, one.err);
    t.equal(two.code, 0, two.err);
    const [a, b] = [counts(one), counts(two)];
    t.equal(a.received + b.received, 500);
    t.equal(a.applied + a.duplicates, 250, 'each change set of the first import applied or found applied');
    t.equal(b.applied + b.duplicates, 250, 'each change set of the second import applied or found applied');
    const overHttp = appliedBy(daemon.output(), 'site', since);
    const files = [...batchesIn(one.err, 'site', since), ...batchesIn(two.err, 'site', since)].map((x) => x.time);
    const between = batchesIn(daemon.output(), 'site', Math.min(...files)).filter((x) => x.time <= Math.max(...files));
    t.ok(net.sent > 0 && between.length > 0, `the network brought ${net.sent} of them again, in ${between.length} batches taken between the file's`);
    t.equal(a.applied + b.applied + overHttp, 250, `applied once: ${a.applied} + ${b.applied} from the file, ${overHttp} over HTTP`);

    // an import killed half-way, then run again
    await registerPatients(site, 's', 700, 150);
    await site.node.capture.caughtUp(60_000);
    await exportFile(site.node.usb(), { out: f('site-3.up') });
    const applying = fromSite().then(async (before) => { while ((await fromSite()) === before) await pause(20); });
    const killed = await spokesync(['import', '--config', hubCfg, '--in', f('site-3.up')], {}, { killWhen: applying });
    const again = await importAtHub(f('site-3.up'));
    t.equal(again.code, 0, again.err);
    const c = counts(again);
    t.equal(killed.code, null, 'killed while it applied');
    t.ok(c.applied < 150 && c.applied + c.duplicates === 150, `run again: applied ${c.applied}, found ${c.duplicates} applied before`);

    const own = await site.own();
    const ledger = await hubRows<{ change_id: string }>(hub, `SELECT change_id FROM spokesync.ledger WHERE origin = 'site' ORDER BY change_id`);
    t.same(ledger.map((r) => r.change_id), own, 'the hub holds each change set of the site once');
    await converge();
    const journaled = await hubRows<{ n: number }>(hub, `SELECT COUNT(*) AS n FROM spokesync.journal WHERE from_peer = 'site'`);
    t.equal(Number(journaled[0]!.n), own.length, 'the hub journaled each once, to relay it');
    const dumps = await Promise.all([hubDump(), ca.dump(), cb.dump(), site.dump()]);
    t.same(dumps.slice(1), [dumps[0], dumps[0], dumps[0]], 'all four nodes hold the same rows');
  });

  await t.test('the daemon dies during an import: the import takes the node and ends; then the commands take it from the start', async (t) => {
    await registerPatients(site, 's', 1100, 150);
    await site.node.capture.caughtUp(60_000);
    await exportFile(site.node.usb(), { out: f('site-4.up') });
    const before = await fromSite();
    const running = importAtHub(f('site-4.up'), f('site-4.down'));
    while ((await fromSite()) === before) await pause(20);
    daemon.proc.kill('SIGKILL');
    await daemon.stop();
    const cut = await running;
    t.equal(cut.code, 0, cut.err);
    t.match(cut.err, /the daemon stopped: this command took the node and runs capture itself/);
    t.match(counts(cut), { applied: 150 });
    await importFile(site.node.usb(), { in: f('site-4.down') });

    // with no daemon, the commands run capture themselves from the start
    await registerPatients(site, 's', 1500, 20);
    const r = await usbRound('down');
    t.equal(r.code, 0, r.err);
    t.match(counts(r), { applied: 20, duplicates: 0 });
    const own = await site.own();
    const ledger = await hubRows<{ change_id: string }>(hub, `SELECT change_id FROM spokesync.ledger WHERE origin = 'site' ORDER BY change_id`);
    t.same(ledger.map((l) => l.change_id), own, 'the hub holds each change set of the site once');
    const journaled = await hubRows<{ n: number }>(hub, `SELECT COUNT(*) AS n FROM spokesync.journal WHERE from_peer = 'site'`);
    t.equal(Number(journaled[0]!.n), own.length, 'and journaled each once: nothing the import applied was missed by capture');
    t.same(await site.dump(), await hubDump(), 'the site and the hub hold the same rows');
  });
});
