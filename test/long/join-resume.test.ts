// `spokesync join` refusals, a join killed part way and run again, and writes at
// both sides while it runs: a site whose daemon captured (but never synced)
// joins a parent; bad usage, a running daemon and a table whose shape differs
// are refused with nothing changed; `sync` waits while a join is half done; the
// join run again finishes; every row written anywhere meanwhile reaches both,
// nothing the site journaled before the join goes up, and the parent refuses a
// second join of a child it has exchanged with.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { askToJoin } from '../../agent/join/route.js';
import { openDb } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { isSpokesyncError } from '../../apply/core/errors.js';
import { dumpServer, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';
import { register } from '../helpers/verify-rows.js';
import { spokesync, statusOf } from '../helpers/cli.js';
import { until } from '../../deploy/sandbox/until.js';
import type { Dump } from '../../deploy/sandbox/identity-dump.js';

const TOKEN = 'site-join-token-abcdef0123';

/** New people, and edits of older rows, until `until` resolves (or 300 of them); returns the uuids of the people it made. */
function writer(run: (sql: string, params: unknown[]) => Promise<unknown>, tag: string, edits: readonly string[], until: Promise<unknown>): Promise<string[]> {
  let going = true;
  void until.then(() => { going = false; });
  const made: string[] = [];
  return (async () => {
    for (let i = 1; going && i <= 300; i++) {
      const id = uuid(tag, i);
      await run(`START TRANSACTION;
        INSERT INTO person (uuid, name) VALUES (?, ?);
        INSERT INTO visit (uuid, person_id, note) VALUES (?, LAST_INSERT_ID(), 'during the join');
        UPDATE person SET name = CONCAT(?, ' edit ', ?) WHERE uuid = ?;
        COMMIT;`, [id, `${tag}-${i}`, uuid(`v${tag}`, i), tag, i, edits[i % edits.length]]);
      made.push(id);
      await new Promise((r) => setTimeout(r, 15));
    }
    return made;
  })();
}

/** The rows (table/identity) whose content differs between two dumps. */
function differences(a: Dump, b: Dump): string[] {
  const out: string[] = [];
  for (const table of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[table] ?? {};
    const y = b[table] ?? {};
    for (const id of new Set([...Object.keys(x), ...Object.keys(y)])) {
      if (JSON.stringify(x[id]) !== JSON.stringify(y[id])) out.push(`${table}/${id}: ${JSON.stringify(x[id])} / ${JSON.stringify(y[id])}`);
    }
  }
  return out;
}

void t.test('join: refusals, a join killed and run again, writes on both sides meanwhile', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-join-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hub = await startNode({ id: 'hub', listen: true, children: [{ id: 'site', token: TOKEN }] });
  t.teardown(() => stopNode(hub));
  const site: NetNode = await startNode({ id: 'site', parent: { url: `http://127.0.0.1:${hub.config.listen!.port}`, token: TOKEN } });
  t.teardown(() => stopNode(site));
  // each has its own rows; a person and a setting are at both with other content
  await register(hub, 'h', 300);
  await register(site, 's', 40);
  await hub.sql(`INSERT INTO person (uuid, name) VALUES (?, 'at the hub'); INSERT INTO setting (property, value) VALUES ('shared.flag', 'hub')`, [uuid('b', 1)]);
  await site.sql(`INSERT INTO person (uuid, name) VALUES (?, 'at the site'); INSERT INTO setting (property, value) VALUES ('shared.flag', 'site')`, [uuid('b', 1)]);
  await site.node.capture.caughtUp(60_000);
  const siteJournal = await site.own();
  t.ok(siteJournal.length > 40, 'the site\'s daemon journaled its rows (never sent)');
  const siteCfg = await site.writeConfig(dir);
  const hubCfg = await hub.writeConfig(dir);

  const bad = await spokesync(['join', '--config', siteCfg, '--prefer', 'nobody']);
  t.equal(bad.code, 2, 'bad usage');
  t.match(bad.err, /--prefer takes parent or here/);
  const root = await spokesync(['join', '--config', hubCfg]);
  t.equal(root.code, 2, 'a node without a parent');
  t.match(root.err, /no parent section/);
  const busy = await spokesync(['join', '--config', siteCfg]);
  t.equal(busy.code, 1, 'refused beside the daemon');
  t.match(busy.err, /daemon stopped[\s\S]*SPOKESYNC_E_BUSY/);
  await site.pause();

  const siteDb = openDb({ host: site.server.host, port: site.server.port, user: 'root' });
  t.teardown(() => siteDb.close());
  const untouched = async (what: string): Promise<void> => {
    t.same(await siteDb.query('SELECT v FROM spokesync.meta WHERE k = \'join\''), [], `${what}: no join begun at the site`);
    t.same(await hub.node.db.query('SELECT peer FROM spokesync.peers WHERE peer = \'site\''), [], `${what}: no cursor for the site at the hub`);
  };
  await site.server.query('ALTER TABLE app.visit ADD COLUMN extra INT NULL');
  const shape = await spokesync(['join', '--config', siteCfg]);
  t.equal(shape.code, 1, 'refused: a table differs in shape');
  t.match(shape.err, /differ in 1 synced table: the join stopped before changing anything: visit: column extra is only here[\s\S]*SPOKESYNC_E_JOIN/);
  await untouched('a shape that differs');
  await site.server.query('ALTER TABLE app.visit DROP COLUMN extra');

  // killed once it has brought the first rows down
  const firstApplied = until('a join change set applied', async () => {
    const r = await siteDb.query<{ n: number }>('SELECT COUNT(*) AS n FROM spokesync.ledger WHERE origin = \'hub--join\'').catch(() => []);
    return Number(r[0]?.n ?? 0) > 0 ? true : undefined;
  }, 60_000, 5);
  const killed = await spokesync(['join', '--config', siteCfg], {}, { killWhen: firstApplied });
  t.equal(killed.code, null, `the join was killed part way (${killed.out})`);
  const early = await spokesync(['sync', '--config', siteCfg]);
  t.equal(early.code, 1, 'sync waits for the join');
  t.match(early.err, /began joining its parent and has not finished[\s\S]*SPOKESYNC_E_JOIN/);
  t.match((await statusOf(siteCfg)).peers.find((p) => p.peer === 'hub')?.lastResult, /^SPOKESYNC_E_JOIN: site began joining/, 'status says why');

  // run again while both sides write, until every table is joined (the first sync drains once they stop)
  const tablesDone = until('every table joined', async () => {
    const r = await siteDb.query<{ v: string }>('SELECT v FROM spokesync.meta WHERE k = \'join\'').catch(() => []);
    return r[0] && (JSON.parse(r[0].v) as { state: string }).state !== 'started' ? true : undefined;
  }, 120_000, 20);
  const hubWrites = writer((sql, p) => hub.sql(sql, p), 'hw', [uuid('h', 5), uuid('h', 6), uuid('b', 1)], tablesDone);
  const siteWrites = writer((sql, p) => site.server.query(`USE app; ${sql}`, p), 'sw', [uuid('s', 5), uuid('s', 6), uuid('b', 1)], tablesDone);
  const again = await spokesync(['join', '--config', siteCfg]);
  const made = [...await hubWrites, ...await siteWrites];
  t.equal(again.code, 0, again.out + again.err);
  t.match(again.out, /^site joined hub \(going on from an earlier run\): hub's journal after seq \d+ and site's after seq \d+ travel by ordinary sync/);
  t.match(again.out, /person +\d+ +\d+ +\d+ \(\d+ \/ \d+\)/);
  t.match(again.out, /site and hub hold the same rows/);
  await hub.node.applier.retryQuarantine({ all: true });
  t.ok(made.length > 4, `${made.length} people written during the join`);

  const synced = await spokesync(['sync', '--config', siteCfg]);
  t.equal(synced.code, 0, synced.out + synced.err);
  await hub.node.capture.caughtUp(60_000);
  const [h, s] = [await hub.dump(), await dumpServer(site.server)];
  t.same(differences(h, s), [], 'identical');
  t.comment(again.out);
  t.comment(killed.out + killed.err);
  const v2 = await spokesync(['verify', '--config', siteCfg, '--json']);
  t.comment(v2.out);
  for (const id of made) t.ok(h.person?.[id] && s.person?.[id], `${id} written during the join is at both`);
  t.equal(Object.keys(h.person ?? {}).length, 300 + 40 + 1 + made.length, 'every person once');
  t.equal(s.setting?.['shared.flag']?.value, 'hub', 'the hub\'s version of the setting at both (although the site wrote it later)');
  const verify = await spokesync(['verify', '--config', siteCfg]);
  t.equal(verify.code, 0, verify.out + verify.err);

  const conflicts = await siteDb.query<{ tbl: string; identity: string }>('SELECT DISTINCT tbl, identity FROM spokesync.conflicts WHERE kind = \'insert\'');
  t.ok(conflicts.some((c) => c.tbl === 'setting' && c.identity === 'shared.flag'), 'the setting at both is in the conflicts log');
  const hubLedger = new Set(await hub.ledger());
  t.same(siteJournal.filter((id) => hubLedger.has(id)), [], 'nothing the site journaled before the join went up');
  t.same([...hubLedger].filter((id) => id.startsWith('hub')), [], 'nothing of the hub came back to it');
  const waiting = async (db: typeof siteDb): Promise<string[]> => (await db.query<{ change_id: string }>('SELECT change_id FROM spokesync.quarantine')).map((r) => r.change_id);
  t.same(await waiting(hub.node.db), [], 'nothing waits at the hub');
  t.same(await waiting(siteDb), [], 'nothing waits at the site');

  const refused = await askToJoin(site.config.parent!, silentLogger).then(() => null, (e: unknown) => e);
  t.ok(isSpokesyncError(refused, 'SPOKESYNC_E_JOIN'), 'the hub refuses to join a child it has exchanged with');
  t.match((refused as Error).message, /site has exchanged with hub before/);
});
