// Apply with the real capture running beside it: applied change sets come back
// out of the binlog into this node's journal with their original id, origin,
// hlc and the peer they came from (several per transaction included); capture's
// versions decide conflicts with local writes (apply waits for capture); and
// concurrent edits converge in any order with the versions capture records.
import t from 'tap';
import fc from 'fast-check';
import type { Capture } from '../../agent/capture/capture.js';
import { compareVersions } from '../../apply/core/hlc.js';
import type { ChangeSet, Op, Row } from '../../apply/core/model.js';
import type { Applier } from '../../apply/replay/applier.js';
import { journal, makeCapture } from '../helpers/capture-fixture.js';
import { APP, STATE, SYNCED, applyEnv, entries, personInsert, type ApplyEnv } from './apply-fixture.js';

interface Node {
  env: ApplyEnv;
  capture: Capture;
  applier: Applier;
}

async function node(): Promise<Node> {
  const env = await applyEnv();
  const capture = await makeCapture(env.server, env.db, APP, [...SYNCED], { node: 'here' });
  await capture.start();
  const applier = await env.applier({ waitForCapture: () => capture.caughtUp(), groupSize: 4 });
  return { env, capture, applier };
}

const hlcAt = (ms: number): string => (BigInt(ms) << 16n).toString();
const cs = (origin: string, ms: number, ops: Op[]): ChangeSet => ({ id: `${origin}:${hlcAt(ms)}`, origin, hlc: hlcAt(ms), time: '2026-01-02T03:04:05Z', ops });

let n: Node;
t.before(async () => {
  n = await node();
});
t.teardown(async () => {
  await n.capture.stop();
  await n.env.close();
});

void t.test('applied change sets are journaled here with their original id, origin, hlc and peer', async (t) => {
  const before = (await journal(n.env.db)).length;
  const p1 = 'c0000000-0000-0000-0000-000000000001';
  const p2 = 'c0000000-0000-0000-0000-000000000002';
  const batch = [
    cs('rubavu', 1_700_000_000_001, [personInsert(p1, 'One')]),
    cs('rubavu', 1_700_000_000_002, [{ kind: 'insert', table: 'person_name', id: 'n-missing', row: { uuid: 'n-missing', person_id: { ref: 'person', id: 'nobody' }, given: 'x', family: null } }]),
    cs('musanze', 1_700_000_000_003, [personInsert(p2, 'Two'), { kind: 'insert', table: 'patient', id: p2, row: { allergy: null } }]),
    cs('rubavu', 1_700_000_000_004, [{ kind: 'update', table: 'person', id: p1, set: { name: 'Uno' }, old: { name: 'One' } }]),
  ];
  t.match(await n.applier.applyBatch('kigali', entries(...batch)), { applied: 3, quarantined: 1 }, 'one transaction, four savepoints');
  await n.env.db.exec(`UPDATE ${APP}.person SET note = 'local' WHERE uuid = ?`, [p2]);
  await n.capture.caughtUp();
  const j = (await journal(n.env.db)).slice(before);
  t.same(j.map((e) => [e.changeId, e.origin, e.fromPeer, e.hlc]), [
    [batch[0]!.id, 'rubavu', 'kigali', batch[0]!.hlc],
    [batch[2]!.id, 'musanze', 'kigali', batch[2]!.hlc],
    [batch[3]!.id, 'rubavu', 'kigali', batch[3]!.hlc],
    [j[3]!.changeId, 'here', null, j[3]!.hlc],
  ], 'the quarantined change set left nothing; the local write is ours');
  t.same(j[1]!.cs.ops.map((o) => [o.kind, o.table, o.id]), [['insert', 'person', p2], ['insert', 'patient', p2]]);
  t.same(j[2]!.cs.ops, [{ kind: 'update', table: 'person', id: p1, set: { name: 'Uno' }, old: { name: 'One' } }]);
  t.ok(BigInt(j[3]!.hlc) > BigInt(batch[3]!.hlc), 'capture clock moved past the applied stamps');
  t.match(await n.applier.applyBatch('kigali', entries(batch[0]!)), { applied: 0, duplicates: 1 }, 'it does not apply twice');
  t.match(await n.applier.applyBatch('kigali', entries(j[3]!.cs)), { applied: 0, duplicates: 1 }, 'our own change coming back');
});

void t.test('a local write not yet captured decides a conflict: apply waits for capture', async (t) => {
  const id = 'c0000000-0000-0000-0000-000000000010';
  await n.applier.applyBatch('kigali', entries(cs('rubavu', 1_700_000_000_010, [personInsert(id, 'Base', { note: 'base' })])));
  // local edits stamped now (capture's clock); apply runs at once, before capture has seen them
  await n.env.db.exec(`UPDATE ${APP}.person SET name = 'Local', note = 'local' WHERE uuid = ?`, [id]);
  const older = cs('rubavu', 1_700_000_000_011, [{ kind: 'update', table: 'person', id, set: { name: 'Old remote', gender: 'F' }, old: { name: 'Base', gender: null } }]);
  t.match(await n.applier.applyBatch('kigali', entries(older)), { applied: 1, conflicts: 1 });
  const newer = cs('rubavu', Date.now() + 60_000, [{ kind: 'update', table: 'person', id, set: { note: 'new remote' }, old: { note: 'base' } }]);
  t.match(await n.applier.applyBatch('kigali', entries(newer)), { applied: 1, conflicts: 1 });
  t.same(await n.env.rows(`SELECT name, gender, note FROM ${APP}.person WHERE uuid = ?`, [id]),
    [{ name: 'Local', gender: 'F', note: 'new remote' }], 'the newer side wins each column; the rest merges');
  const outcomes = await n.env.rows<{ change_id: string; outcome: string }>(`SELECT change_id, outcome FROM ${STATE}.conflicts WHERE identity = ? ORDER BY id`, [id]);
  t.same(outcomes, [{ change_id: older.id, outcome: 'local wins: name' }, { change_id: newer.id, outcome: 'remote wins: note' }]);
});

void t.test('the same row inserted here and remotely: the insert versions capture keeps (runs of local ids, idmap rows for reused keys) decide', async (t) => {
  const u = 'c0000000-0000-0000-0000-0000000000a1';
  const v = 'c0000000-0000-0000-0000-0000000000a2';
  const outcome = async (id: string): Promise<string[]> =>
    (await n.env.rows<{ outcome: string }>(`SELECT outcome FROM ${STATE}.conflicts WHERE identity = ? ORDER BY id`, [id])).map((r) => r.outcome);
  const nameOf = async (id: string): Promise<unknown> => (await n.env.rows<{ name: string }>(`SELECT name FROM ${APP}.person WHERE uuid = ?`, [id]))[0]?.name;
  // inserted here now: capture keeps its version in a run of insert_ranges, not in idmap
  await n.env.db.exec(`INSERT INTO ${APP}.person (uuid, name) VALUES (?, 'Here')`, [u]);
  await n.capture.caughtUp();
  const [pid] = await n.env.rows<{ person_id: number }>(`SELECT person_id FROM ${APP}.person WHERE uuid = ?`, [u]);
  t.same(await n.env.rows(`SELECT 1 FROM ${STATE}.idmap WHERE tbl = 'person' AND identity = ?`, [u]), [], 'no idmap row');
  let waits = 0;
  const applier = await n.env.applier({ waitForCapture: () => { waits++; return n.capture.caughtUp(); }, groupSize: 4 });
  const older = cs('rubavu', 1_700_000_100_000, [personInsert(u, 'Older remote')]);
  t.match(await applier.applyBatch('kigali', entries(older)), { applied: 1, conflicts: 1 });
  t.equal(await nameOf(u), 'Here', 'an older remote insert loses to the insert version read through the live row');
  t.equal(waits, 0, 'read once the row was found here, without waiting for capture');
  const newer = cs('rubavu', Date.now() + 60_000, [personInsert(u, 'Newer remote')]);
  t.match(await n.applier.applyBatch('kigali', entries(newer)), { applied: 1, conflicts: 1 });
  t.equal(await nameOf(u), 'Newer remote', 'a newer one wins');
  t.same(await outcome(u), ['local wins: name', 'remote wins: name']);

  // the key is given again to another row, by a transaction applied from a peer with an old
  // stamp: its version is in an idmap row, which stands for the key instead of the run
  await n.env.db.exec(`DELETE FROM ${APP}.person WHERE uuid = ?`, [u]);
  const old = hlcAt(1_700_000_200_000);
  const conn = await n.env.server.connect(APP);
  await conn.query('BEGIN');
  await conn.query(`INSERT INTO ${STATE}.ledger (change_id, origin, from_peer, hlc, commit_time, applied_at) VALUES (?, 'huye', 'kigali', ?, '2023-11-14 22:13:20', NOW(6))`, [`huye:${old}`, old]);
  await conn.query(`INSERT INTO ${APP}.person (person_id, uuid, name) VALUES (?, ?, 'Reused key')`, [pid!.person_id, v]);
  await conn.query('COMMIT');
  await conn.end();
  await n.capture.caughtUp();
  t.same(await n.env.rows(`SELECT hlc, node FROM ${STATE}.idmap WHERE tbl = 'person' AND local_id = ?`, [String(pid!.person_id)]),
    [{ hlc: old, node: 'huye' }], 'the reused key has an idmap row with its insert version');
  // newer than the reused row's insert, older than the run's (which belongs to the deleted row)
  const between = cs('rubavu', 1_700_000_300_000, [personInsert(v, 'Remote')]);
  t.match(await n.applier.applyBatch('kigali', entries(between)), { applied: 1, conflicts: 1 });
  t.equal(await nameOf(v), 'Remote', 'the idmap row, not the run, gives the version of the row that holds the key now');
  t.same(await outcome(v), ['remote wins: name']);
});

// --- convergence with the real capture on two servers ---

const ID = 'c1111111-2222-3333-4444-555555555555';
const COLS = ['name', 'gender', 'note'] as const;
type Col = (typeof COLS)[number];
const INITIAL: Record<Col, string> = { name: 'n0', gender: 'g0', note: 'x0' };

async function reset(x: Node): Promise<void> {
  await x.env.db.exec(`DELETE FROM ${APP}.person WHERE uuid = ?`, [ID]);
  await x.env.db.exec(`INSERT INTO ${APP}.person (uuid, name, gender, note) VALUES (?, 'n0', 'g0', 'x0')`, [ID]);
  await x.capture.caughtUp();
  // as if both nodes were cloned with this row: no versions yet
  await x.env.db.exec(`DELETE FROM ${STATE}.versions WHERE identity = ?`, [ID]);
  await x.env.db.exec(`UPDATE ${STATE}.idmap SET hlc = NULL, node = NULL WHERE identity = ?`, [ID]);
  await x.env.db.exec(`DELETE FROM ${STATE}.insert_ranges WHERE tbl = 'person'`);
}

function model(css: readonly ChangeSet[]): Record<Col, string | null> {
  const out: Record<Col, string | null> = { ...INITIAL };
  for (const col of COLS) {
    let best: ChangeSet | undefined;
    for (const c of css) {
      const op = c.ops[0]!;
      if (op.kind === 'update' && col in op.set && (!best || compareVersions({ hlc: c.hlc, node: c.origin }, { hlc: best.hlc, node: best.origin }) > 0)) best = c;
    }
    if (best) out[col] = (best.ops[0] as { set: Row }).set[col] as string | null;
  }
  return out;
}

void t.test('concurrent edits converge in any order with the versions capture records', async (t) => {
  const m = await node();
  t.teardown(async () => {
    await m.capture.stop();
    await m.env.close();
  });
  let round = 0;
  const update = fc.record({
    ms: fc.integer({ min: 1, max: 3 }),
    cols: fc.subarray([...COLS], { minLength: 1 }),
    vals: fc.array(fc.constantFrom('p', 'q', 'n0', 'g0'), { minLength: 3, maxLength: 3 }),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.tuple(update, update, update).chain((specs) => {
        round++;
        const css = specs.map((s, i) => cs(['x', 'y', 'z'][i]!, 1_800_000_000_000 + round * 10 + s.ms, [{
          kind: 'update', table: 'person', id: ID,
          set: Object.fromEntries(s.cols.map((c, k) => [c, s.vals[k]!])), old: Object.fromEntries(s.cols.map((c) => [c, INITIAL[c]])),
        }]));
        return fc.tuple(fc.constant(css), fc.shuffledSubarray(css, { minLength: 3 }), fc.shuffledSubarray(css, { minLength: 3 }));
      }),
      async ([css, orderA, orderB]) => {
        await reset(n);
        await reset(m);
        for (const [x, order] of [[n, orderA], [m, orderB]] as const) {
          // the reset rewrote versions behind the applier's back: start it afresh
          const applier = await x.env.applier({ waitForCapture: () => x.capture.caughtUp(), groupSize: 4 });
          for (const c of order) {
            const r = await applier.applyBatch('peer', entries(c));
            if (r.applied !== 1) throw new Error(`not applied: ${JSON.stringify(r)}`);
          }
        }
        const [rowA] = await n.env.rows(`SELECT name, gender, note FROM ${APP}.person WHERE uuid = ?`, [ID]);
        const [rowB] = await m.env.rows(`SELECT name, gender, note FROM ${APP}.person WHERE uuid = ?`, [ID]);
        const want = model(css);
        if (JSON.stringify(rowA) !== JSON.stringify(want) || JSON.stringify(rowB) !== JSON.stringify(want)) {
          throw new Error(`diverged: A=${JSON.stringify(rowA)} B=${JSON.stringify(rowB)} want=${JSON.stringify(want)}`);
        }
      },
    ),
    { numRuns: Number(process.env.SPOKESYNC_PROPERTY_RUNS ?? 30) },
  );
  t.pass('converged in every run');
});
