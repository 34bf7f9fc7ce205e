// An idle node with quarantined change sets: retries back off per change set,
// and a retry that fails again adds nothing to the binlog (its bookkeeping is
// written with sql_log_bin = 0, the way capture keeps its state out).
import t from 'tap';
import type { ApplierOptions } from '../../apply/replay/applier.js';
import { quarantineSummary } from '../../apply/replay/quarantine.js';
import { APP, STATE, applyEnv, changeSet, entries, uuid } from './apply-fixture.js';

const HOUR = 3_600_000;
/** doubling from 10 s, at most an hour (agent/backoff.ts QUARANTINE_BACKOFF) */
const delay = (tries: number): number => Math.min(HOUR, 10_000 * 2 ** (tries - 1));

async function binlogEnd(db: { query<T>(sql: string): Promise<T[]> }): Promise<string> {
  const logs = await db.query<{ Log_name: string; File_size: number | string }>('SHOW BINARY LOGS');
  return logs.map((l) => `${l.Log_name}:${l.File_size}`).join(',');
}

void t.test('12 quarantined change sets on an idle node: backoff, and no byte added to the binlog', async (t) => {
  const env = await applyEnv();
  t.teardown(() => env.close());
  let now = Date.parse('2026-05-01T00:00:00Z');
  const applier = await env.applier({ now: () => now, retryDelayMs: delay } as Partial<ApplierOptions>);
  // names of a person that never arrives: each waits for it
  const missing = uuid();
  const css = Array.from({ length: 12 }, (_, i) => {
    const id = uuid();
    return changeSet(`o${i}`, [{ kind: 'insert', table: 'person_name', id, row: { uuid: id, person_id: { ref: 'person', id: missing }, given: `G${i}`, family: 'F' } }]);
  });
  t.match(await applier.applyBatch('kigali', entries(...css)), { quarantined: 12 });
  const before = await binlogEnd(env.db);

  // the daemon's ticks with nothing changing: once due, each is tried again and fails again
  const tries: number[] = [];
  for (let tick = 0; tick < 6; tick++) {
    const r = await applier.retryQuarantine();
    tries.push(r.retried);
    now += 15_000;
  }
  t.same(tries, [0, 12, 0, 12, 0, 0], 'a change set is tried again only once its delay has passed (10 s, then 20 s, ...)');
  const q = await quarantineSummary(env.db, STATE);
  t.same(q.entries.map((e) => e.tries), Array(10).fill(3), 'each failed try is counted');
  const after = await binlogEnd(env.db);
  t.comment(`binlog over six idle ticks: ${before} -> ${after}`);
  t.equal(after, before, 'the binlog did not grow while the node was idle');

  // an hour later, many tries later: delays stop at an hour
  for (let i = 0; i < 12; i++) {
    now += HOUR;
    await applier.retryQuarantine();
  }
  const [row] = await env.rows<{ tries: number; gap: number }>(
    `SELECT tries, TIMESTAMPDIFF(SECOND, last_try, next_try) AS gap FROM ${STATE}.quarantine LIMIT 1`);
  t.equal(Number(row?.gap), 3600, 'the delay is capped at an hour');
  t.equal(await binlogEnd(env.db), before, 'still nothing in the binlog');

  // something changes (the person arrives): the next tick tries them all at once, and applies them
  await env.db.exec(`INSERT INTO ${APP}.person (uuid, name) VALUES (?, 'P')`, [missing]);
  const r = await applier.applyBatch('kigali', entries(changeSet('kigali', [{ kind: 'update', table: 'person', id: missing, set: { note: 'x' }, old: { note: null } }])));
  t.match(r, { applied: 1 });
  t.match(await applier.retryQuarantine(), { applied: 12, quarantined: 0 }, 'a batch that applied something makes every quarantined change set due');
});
