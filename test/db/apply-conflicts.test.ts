// Convergence: the same concurrent change sets applied in any order on two
// servers end identical, equal to per-column last-writer-wins, and every
// conflict is logged. Between change sets, the versions capture would record
// (from what each transaction changed) are written as capture would.
import t from 'tap';
import fc from 'fast-check';
import { rowDigest } from '../../apply/codec/digest.js';
import { compareVersions } from '../../apply/core/hlc.js';
import type { ChangeSet, Op, Row } from '../../apply/core/model.js';
import type { Applier } from '../../apply/replay/applier.js';
import { APP, STATE, applyEnv, entries, type ApplyEnv } from './apply-fixture.js';

const ID = '11111111-2222-3333-4444-555555555555';
const RUNS = Number(process.env.SPOKESYNC_PROPERTY_RUNS ?? 60);
const COLS = ['name', 'gender', 'note'] as const;
type Col = (typeof COLS)[number];
type State = Record<Col, string | null> | null;
const INITIAL: Record<Col, string | null> = { name: 'n0', gender: 'g0', note: 'x0' };
const VALUES = ['p', 'q', 'n0', null] as const;

interface Spec {
  origin: string;
  ms: number;
  kind: 'update' | 'delete';
  set: Partial<Record<Col, string | null>>;
  /** old values: what the origin saw (the initial row, or a stale guess) */
  old: Partial<Record<Col, string | null>>;
}

const specArb = (origin: string): fc.Arbitrary<Spec> =>
  fc.record({
    ms: fc.integer({ min: 1, max: 4 }),
    kind: fc.constantFrom<'update' | 'delete'>('update', 'update', 'update', 'update', 'delete'),
    cols: fc.subarray([...COLS], { minLength: 1 }),
    vals: fc.array(fc.constantFrom(...VALUES), { minLength: 3, maxLength: 3 }),
    stale: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
  }).map(({ ms, kind, cols, vals, stale }) => {
    const set: Spec['set'] = {};
    const old: Spec['old'] = {};
    cols.forEach((c, i) => {
      set[c] = vals[i]!;
      old[c] = stale[i] ? 'stale' : INITIAL[c];
    });
    return { origin, ms, kind, set, old };
  });

function toChangeSet(s: Spec): ChangeSet {
  const hlc = (BigInt(1_800_000_000_000 + s.ms) << 16n).toString();
  const op: Op = s.kind === 'delete'
    ? { kind: 'delete', table: 'person', id: ID, digest: rowDigest({ uuid: ID, ...INITIAL } as Row) }
    : { kind: 'update', table: 'person', id: ID, set: s.set as Row, old: s.old as Row };
  return { id: `${s.origin}:${hlc}`, origin: s.origin, hlc, time: '2026-01-02T03:04:05Z', ops: [op] };
}

/** Per-column last writer wins; any delete removes the row. */
function model(css: readonly ChangeSet[]): State {
  if (css.some((c) => c.ops[0]!.kind === 'delete')) return null;
  const out = { ...INITIAL };
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

async function readRow(env: ApplyEnv): Promise<State> {
  const rows = await env.rows<Record<Col, string | null>>(`SELECT name, gender, note FROM ${APP}.person WHERE uuid = ?`, [ID]);
  return rows[0] ?? null;
}

async function reset(env: ApplyEnv): Promise<void> {
  for (const tbl of [`${APP}.person`, `${STATE}.versions`, `${STATE}.ledger`, `${STATE}.conflicts`, `${STATE}.quarantine`]) await env.db.exec(`DELETE FROM ${tbl}`);
  await env.db.exec(`INSERT INTO ${APP}.person (uuid, name, gender, note) VALUES (?, ?, ?, ?)`, [ID, INITIAL.name, INITIAL.gender, INITIAL.note]);
}

/** What capture records for one applied transaction: the version of every column it changed, or the tombstone. */
async function simulateCapture(env: ApplyEnv, cs: ChangeSet, before: State, after: State): Promise<void> {
  const put = (col: string): Promise<unknown> => env.db.exec(
    `REPLACE INTO ${STATE}.versions (tbl, identity, col, hlc, node) VALUES ('person', ?, ?, ?, ?)`, [ID, col, cs.hlc, cs.origin]);
  if (before && !after) await put('*');
  if (before && after) for (const c of COLS) if (before[c] !== after[c]) await put(c);
}

/** Applies the change sets one by one; returns the ids that should have logged a conflict. */
async function run(env: ApplyEnv, applier: Applier, css: readonly ChangeSet[]): Promise<Set<string>> {
  const expected = new Set<string>();
  for (const cs of css) {
    const before = await readRow(env);
    const versions = new Map((await env.rows<{ col: string; hlc: string; node: string }>(
      `SELECT col, hlc, node FROM ${STATE}.versions WHERE identity = ?`, [ID])).map((v) => [v.col, v]));
    const op = cs.ops[0]!;
    if (!before) expected.add(cs.id);
    else if (op.kind === 'delete') {
      if (COLS.some((c) => before[c] !== INITIAL[c])) expected.add(cs.id);
    } else if (op.kind === 'update') {
      for (const c of Object.keys(op.set) as Col[]) {
        const v = versions.get(c);
        const localNewer = v !== undefined && compareVersions(v, { hlc: cs.hlc, node: cs.origin }) > 0;
        if (before[c] !== op.old[c] || localNewer) expected.add(cs.id);
      }
    }
    const r = await applier.applyBatch('peer', entries(cs));
    if (r.applied !== 1) throw new Error(`change set not applied: ${JSON.stringify(r)}`);
    await simulateCapture(env, cs, before, await readRow(env));
  }
  return expected;
}

let a: ApplyEnv;
let b: ApplyEnv;
t.before(async () => {
  a = await applyEnv();
  b = await applyEnv();
});
t.teardown(async () => {
  await Promise.all([a.close(), b.close()]);
});

void t.test('concurrent edits converge in any order, per column, and every conflict is logged', async (t) => {
  let runs = 0;
  let conflicts = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 2, max: 3 }).chain((n) =>
        fc.tuple(...['x', 'y', 'z'].slice(0, n).map(specArb)).chain((specs) => {
          const css = specs.map(toChangeSet);
          return fc.tuple(fc.constant(css), fc.shuffledSubarray(css, { minLength: n }), fc.shuffledSubarray(css, { minLength: n }));
        }),
      ),
      async ([css, orderA, orderB]) => {
        await Promise.all([reset(a), reset(b)]);
        // the reset rewrote the tables behind the appliers' backs: start them afresh
        const [applierA, applierB] = await Promise.all([a.applier(), b.applier()]);
        const [expA, expB] = await Promise.all([run(a, applierA, orderA), run(b, applierB, orderB)]);
        const [rowA, rowB] = await Promise.all([readRow(a), readRow(b)]);
        const want = model(css);
        if (JSON.stringify(rowA) !== JSON.stringify(want) || JSON.stringify(rowB) !== JSON.stringify(want)) {
          throw new Error(`diverged: A=${JSON.stringify(rowA)} B=${JSON.stringify(rowB)} want=${JSON.stringify(want)}`);
        }
        for (const [env, exp] of [[a, expA], [b, expB]] as const) {
          const logged = await env.rows<{ change_id: string; local_version: string; remote_version: string }>(
            `SELECT change_id, local_version, remote_version FROM ${STATE}.conflicts`);
          const ids = new Set(logged.map((l) => l.change_id));
          if ([...exp].some((id) => !ids.has(id)) || [...ids].some((id) => !exp.has(id))) {
            throw new Error(`conflicts logged ${JSON.stringify([...ids])}, expected ${JSON.stringify([...exp])}`);
          }
          for (const l of logged) {
            JSON.parse(l.local_version);
            JSON.parse(l.remote_version);
          }
          conflicts += logged.length;
        }
        runs++;
      },
    ),
    { numRuns: RUNS, seed: Number(process.env.SPOKESYNC_SEED ?? Date.now() % 100000) },
  );
  t.equal(runs, RUNS);
  t.ok(conflicts > 0, `conflicts were exercised (${conflicts} logged)`);
});

void t.test('a conflict is logged with both versions and the outcome, values safely encoded', async (t) => {
  await reset(a);
  const applier = await a.applier();
  await a.db.exec(`REPLACE INTO ${STATE}.versions (tbl, identity, col, hlc, node) VALUES ('person', ?, 'name', ?, 'here')`, [ID, (5n << 16n).toString()]);
  await a.db.exec(`UPDATE ${APP}.person SET name = 'mine' WHERE uuid = ?`, [ID]);
  const cs: ChangeSet = {
    id: 'x:65536', origin: 'x', hlc: '65536', time: '2026-01-02T03:04:05Z',
    ops: [{ kind: 'update', table: 'person', id: ID, set: { name: 'theirs', note: 'merged' }, old: { name: 'n0', note: 'x0' } }],
  };
  t.match(await applier.applyBatch('x', entries(cs)), { applied: 1, conflicts: 1 });
  t.same(await readRow(a), { name: 'mine', gender: 'g0', note: 'merged' }, 'older remote loses its conflicting column; the other merges');
  const [c] = await a.rows<{ kind: string; outcome: string; local_version: string; remote_version: string }>(`SELECT * FROM ${STATE}.conflicts`);
  t.equal(c!.kind, 'update');
  t.equal(c!.outcome, 'local wins: name');
  t.same(JSON.parse(c!.local_version), { values: { name: 'mine' }, versions: { name: { hlc: '327680', node: 'here' } } });
  t.same(JSON.parse(c!.remote_version), { set: { name: 'theirs', note: 'merged' }, old: { name: 'n0', note: 'x0' }, version: { hlc: '65536', node: 'x' } });
});

void t.test('when the incoming side wins, the record still credits the value here to the node that wrote it', async (t) => {
  await reset(a);
  const applier = await a.applier();
  const here = (5n << 16n).toString();
  await a.db.exec(`REPLACE INTO ${STATE}.versions (tbl, identity, col, hlc, node) VALUES ('person', ?, 'name', ?, 'here'), ('person', ?, 'gender', ?, 'here')`, [ID, here, ID, here]);
  await a.db.exec(`UPDATE ${APP}.person SET name = 'mine', gender = 'same' WHERE uuid = ?`, [ID]);
  // newer than the edits here: name takes the incoming value, gender already holds it (won without a write, carried on)
  const cs: ChangeSet = {
    id: `x:${9n << 16n}`, origin: 'x', hlc: (9n << 16n).toString(), time: '2026-01-02T03:04:05Z',
    ops: [{ kind: 'update', table: 'person', id: ID, set: { name: 'theirs', gender: 'same' }, old: { name: 'n0', gender: 'g0' } }],
  };
  t.match(await applier.applyBatch('relay', entries(cs)), { applied: 1, conflicts: 1 });
  t.same(await readRow(a), { name: 'theirs', gender: 'same', note: 'x0' });
  const [c] = await a.rows<{ outcome: string; local_version: string; remote_version: string }>(`SELECT * FROM ${STATE}.conflicts`);
  t.equal(c!.outcome, 'remote wins: name, gender');
  t.same(JSON.parse(c!.local_version), {
    values: { name: 'mine', gender: 'same' },
    versions: { name: { hlc: here, node: 'here' }, gender: { hlc: here, node: 'here' } },
  }, 'the local side is the edit here, credited to this node, not to x nor to the relay that brought it');
  t.match(JSON.parse(c!.remote_version), { version: { hlc: cs.hlc, node: 'x' } });

  // an insert of a row that exists here with other values: the same
  await a.db.exec(`DELETE FROM ${STATE}.conflicts`);
  const ins: ChangeSet = {
    id: `y:${11n << 16n}`, origin: 'y', hlc: (11n << 16n).toString(), time: '2026-01-02T03:04:05Z',
    ops: [{ kind: 'insert', table: 'person', id: ID, row: { uuid: ID, name: 'born there', gender: 'same', note: 'x0' } }],
  };
  t.match(await applier.applyBatch('relay', entries(ins)), { applied: 1, conflicts: 1 });
  const [d] = await a.rows<{ outcome: string; local_version: string }>(`SELECT * FROM ${STATE}.conflicts`);
  t.equal(d!.outcome, 'remote wins: name');
  t.same(JSON.parse(d!.local_version), { values: { name: 'theirs' }, versions: { name: { hlc: cs.hlc, node: 'x' } } },
    'the value here came from x: credited to x, not to y');
});
