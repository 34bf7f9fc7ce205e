// A quarantine reason names the table, the column and the op's position in
// its change set, never the value (some server messages quote it).
import t from 'tap';
import { quarantineSummary } from '../../apply/replay/quarantine.js';
import { STATE, applyEnv, changeSet, entries, personInsert, uuid } from './apply-fixture.js';

void t.test('reasons name table, column and position, never the value', async (t) => {
  const env = await applyEnv();
  t.teardown(() => env.close());
  const applier = await env.applier();
  const long = 'Nyiramasuhuko-Long-Value';
  const [p1, p2, p3] = [uuid(), uuid(), uuid()];
  // one multi-row insert: the server says which row
  const wide = changeSet('musha', [personInsert(p1, 'A'), personInsert(p2, 'B', { gender: long }), personInsert(p3, 'C')]);
  const item = uuid();
  // an update: one statement, the column named by the server
  const seed = changeSet('musha', [{ kind: 'insert', table: 'item', id: item, row: { uuid: item, marker: 'm', k: '1', note: null } }]);
  const upd = changeSet('musha', [{ kind: 'update', table: 'item', id: item, set: { k: '99999999999' }, old: { k: '1' } }]);
  t.match(await applier.applyBatch('kigali', entries(wide, seed, upd)), { applied: 1, quarantined: 2 });
  const q = await quarantineSummary(env.db, STATE);
  const reasons = new Map(q.entries.map((e) => [e.changeId, e.reason]));
  t.equal(reasons.get(wide.id), 'a value is too long for its column: table person, column gender, op 2 of 3 (server error 1406)');
  t.equal(reasons.get(upd.id), 'a value is out of range for its column: table item, column k, op 1 of 1 (server error 1264)');
  for (const r of reasons.values()) {
    t.notMatch(r, /Nyiramasuhuko|99999999999/, 'no value in the reason');
  }
});
