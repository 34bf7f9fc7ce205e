// Power loss while a large batch applies: kill -9 of mariadbd at several
// moments. After restart and re-delivery the state equals a clean apply, every
// change set is there exactly once (its three rows and its ledger row), and
// at no moment is a change set half there.
import t from 'tap';
import { openDb, type Db } from '../../apply/core/db.js';
import { loadCatalog } from '../../apply/core/catalog.js';
import type { BatchEntry } from '../../apply/core/model.js';
import { Applier } from '../../apply/replay/applier.js';
import { APP, STATE, SYNCED, applyEnv, silentLogger, type ApplyEnv } from '../db/apply-fixture.js';

const N = 1500;

function batch(round: number): BatchEntry[] {
  return Array.from({ length: N }, (_, i) => {
    const hlc = (BigInt(1_800_000_000_000 + round * 10_000 + i) << 16n).toString();
    const marker = `r${round}-${i}`;
    return {
      seq: String(i + 1),
      cs: {
        id: `kigali:${hlc}`, origin: 'kigali', hlc, time: '2026-01-02T03:04:05Z',
        ops: [0, 1, 2].map((j) => ({
          kind: 'insert' as const, table: 'item', id: `${marker}-${j}`,
          row: { uuid: `${marker}-${j}`, marker, k: String(j), note: j === 1 ? null : `note ${i}/${j}` },
        })),
      },
    };
  });
}

async function applierFor(db: Db): Promise<Applier> {
  const catalog = await loadCatalog(db, APP);
  // stamps set in January 2027: clock.maxDrift widened so they apply now
  return new Applier({ db, catalog, schema: APP, stateSchema: STATE, node: 'here', tables: SYNCED, log: silentLogger, groupSize: 5, maxDriftMs: 366 * 86_400_000 });
}

/** Markers with their row counts, and the ledger. */
async function snapshot(db: Db): Promise<{ counts: Map<string, number>; ledger: Set<string>; rows: string }> {
  const per = await db.query<{ marker: string; n: number }>(`SELECT marker, COUNT(*) AS n FROM ${APP}.item GROUP BY marker`);
  const ledger = await db.query<{ change_id: string }>(`SELECT change_id FROM ${STATE}.ledger`);
  const rows = await db.query(`SELECT uuid, marker, k, note FROM ${APP}.item ORDER BY uuid`);
  return { counts: new Map(per.map((p) => [p.marker, Number(p.n)])), ledger: new Set(ledger.map((l) => l.change_id)), rows: JSON.stringify(rows) };
}

let env: ApplyEnv;
t.before(async () => {
  env = await applyEnv();
});
t.teardown(async () => env.close());

void t.test('clean apply, then kill -9 of the server mid-batch at several moments', async (t) => {
  // the reference: a clean apply of round 0's batch (markers differ per round; compare shapes)
  const clean = await applierFor(env.db);
  const started = Date.now();
  t.match(await clean.applyBatch('kigali', batch(0)), { applied: N });
  t.comment(`clean apply of ${N} change sets (${3 * N} rows): ${Date.now() - started} ms`);
  const reference = await snapshot(env.db);
  t.equal(reference.ledger.size, N);
  t.equal(reference.counts.size, N);

  for (const [round, delay] of [[1, 50], [2, 200], [3, 500]] as const) {
    await env.db.exec(`DELETE FROM ${APP}.item`);
    await env.db.exec(`DELETE FROM ${STATE}.ledger`);
    const db = openDb({ host: env.server.host, port: env.server.port, user: 'root' });
    const applier = await applierFor(db);
    const entries = batch(round);
    const running = applier.applyBatch('kigali', entries).then(() => 'finished', (e: unknown) => (e as { code?: string }).code ?? 'failed');
    await new Promise((r) => setTimeout(r, delay));
    await env.server.crashAndRestart();
    t.equal(await running, 'SPOKESYNC_E_APPLY', `killed after ${delay} ms: the batch failed`);
    await db.close().catch(() => undefined);

    const db2 = openDb({ host: env.server.host, port: env.server.port, user: 'root' });
    const after = await snapshot(db2);
    const partial = [...after.counts.values()].filter((n) => n !== 3).length;
    t.equal(partial, 0, `killed after ${delay} ms: no change set is half there`);
    const markers = new Set(entries.filter((e) => after.ledger.has(e.cs.id)).map((e) => String(e.cs.ops[0]!.id).replace(/-\d$/, '')));
    t.same([...after.counts.keys()].sort(), [...markers].sort(), 'rows are there exactly for the change sets in the ledger');
    t.ok(after.ledger.size < N, `killed after ${delay} ms: ${after.ledger.size} of ${N} change sets had committed`);

    const again = await applierFor(db2);
    const r = await again.applyBatch('kigali', entries);
    t.same([r.applied, r.duplicates], [N - after.ledger.size, after.ledger.size], 're-delivery applies the rest exactly once');
    const final = await snapshot(db2);
    t.equal(final.ledger.size, N);
    t.same([...final.counts.values()].every((n) => n === 3) && final.counts.size === N, true, 'every change set whole, once');
    t.equal(final.rows, reference.rows.replaceAll('"r0-', `"r${round}-`), 'the state equals a clean apply');
    await db2.close();
  }
});
