// The fault test's checks (test/chaos/verify.ts) on made-up node contents:
// each kind of damage is counted, and a healthy tree passes.
import t from 'tap';
import type { Dump } from '../../deploy/sandbox/identity-dump.js';
import { HOT, TABLES, seedSetting, seedUuid, seedValue } from '../chaos/schema.js';
import { Tracker } from '../chaos/tracker.js';
import { check, failures, type NodeView } from '../chaos/verify.js';

/** Node contents holding the seed rows plus `extra` rows (table → identity → name/note/value). */
function dump(extra: Record<string, Record<string, Record<string, string | null>>> = {}): Dump {
  const d: Dump = Object.fromEntries(TABLES.map((tb) => [tb, {}]));
  for (let i = 1; i <= HOT; i++) {
    d.person![seedUuid('person', i)] = { name: seedValue('person', i) };
    d.visit![seedUuid('visit', i)] = { note: seedValue('visit', i) };
    d.obs![seedUuid('obs', i)] = { value_numeric: seedValue('obs', i) };
    d.setting![seedSetting(i)] = { value: seedValue('setting', i) };
  }
  for (const [tb, rows] of Object.entries(extra)) Object.assign(d[tb]!, structuredClone(rows));
  return d;
}

const view = (node: string, d: Dump, more: Partial<NodeView> = {}): NodeView => ({
  node, dump: d, duplicates: { person: 0, visit: 0, encounter: 0, obs: 0 }, quarantined: 0, conflicts: 0, ...more,
});

/** One registration (person a1) committed at l1, an unknown one (person a2), a rolled-back one (person a3). */
function record(): Tracker {
  const tr = new Tracker();
  const reg = (id: string, outcome: 'committed' | 'unknown' | 'failed'): void => {
    const x = tr.begin('l1', 'register');
    x.inserts.push({ table: 'person', id }, { table: 'patient', id });
    tr.write(x, 'person', id, `name-${id}`, true);
    tr.end(x, outcome, [{ pool: 'person', id }]);
  };
  reg('a1', 'committed');
  reg('a2', 'unknown');
  reg('a3', 'failed');
  // l1 renames a1 twice, the second answer lost; p renames seed person 1, l2 too
  for (const [node, id, v, o] of [['l1', 'a1', 'a1-v2', 'committed'], ['l1', 'a1', 'a1-v3', 'unknown'], ['p', seedUuid('person', 1), 'p-1', 'committed'],
    ['l2', seedUuid('person', 1), 'l2-1', 'committed'], ['l2', seedUuid('person', 2), 'l2-2', 'failed']] as const) {
    const x = tr.begin(node, 'edit-person');
    tr.write(x, 'person', id, v);
    tr.end(x, o);
  }
  return tr;
}

const good = { person: { a1: { name: 'a1-v2' } }, patient: { a1: {} } };

void t.test('a healthy tree passes', async (t) => {
  const tr = record();
  const d = dump(good);
  d.person![seedUuid('person', 1)] = { name: 'l2-1' };
  const f = check(['p', 'm', 'l1'].map((n) => view(n, structuredClone(d))), tr);
  t.equal(failures(f), 0, f.details.join('\n'));
  // the commit-unknown rename may have happened, and the unknown registration may be everywhere
  const d2 = dump({ ...good, person: { a1: { name: 'a1-v3' }, a2: { name: 'name-a2' } }, patient: { a1: {}, a2: {} } });
  d2.person![seedUuid('person', 1)] = { name: 'p-1' };
  t.equal(failures(check(['p', 'm'].map((n) => view(n, structuredClone(d2))), tr)), 0);
});

void t.test('each kind of damage is counted', async (t) => {
  const tr = record();
  const base = dump(good);
  const lost = structuredClone(base);
  delete lost.patient!.a1;
  t.match(check([view('p', base), view('m', lost)], tr), { lost: 1, diverged: 1 }, 'a committed row missing on one node');

  t.match(check([view('p', base), view('m', base, { duplicates: { person: 0, visit: 0, encounter: 0, obs: 2 } })], tr),
    { duplicated: 2, diverged: 0 }, 'duplicates');

  const partial = dump({ ...good, person: { ...good.person, a2: { name: 'name-a2' } } });
  t.match(check([view('p', partial), view('m', structuredClone(partial))], tr), { partial: 1, diverged: 0 },
    'a commit-unknown registration only half there (person without patient)');

  const half = dump({ ...good, person: { ...good.person, a2: { name: 'name-a2' } }, patient: { a1: {}, a2: {} } });
  t.match(check([view('p', half), view('m', base)], tr), { partial: 1, diverged: 2 }, 'a commit-unknown registration on one node only');

  const phantom = dump({ ...good, person: { ...good.person, a3: { name: 'name-a3' } } });
  t.match(check([view('p', phantom), view('m', structuredClone(phantom))], tr), { wrong: 2 }, 'a rolled-back row present');

  const stale = dump({ ...good, person: { a1: { name: 'name-a1' } } });
  t.match(check([view('p', stale)], tr), { wrong: 1 }, 'one writer: an older value than its last committed one');

  const rolledBack = dump(good);
  rolledBack.person![seedUuid('person', 2)] = { name: 'l2-2' };
  t.match(check([view('p', rolledBack)], tr), { wrong: 1 }, 'a rolled-back edit');

  t.match(check([view('p', base, { quarantined: 3 })], tr), { quarantined: 3 }, 'quarantine');
  const f = check([view('p', base), view('m', lost)], tr);
  t.ok(f.details.some((l) => l.includes('lost: patient/a1') && l.includes('on m')), 'the detail names the row and the node');
});
