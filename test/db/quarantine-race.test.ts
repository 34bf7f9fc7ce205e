// A discard and a retry of the same quarantined change set at once: the
// change set ends either applied or discarded, never both.
import t from 'tap';
import { APP, STATE, applyEnv, changeSet, entries, uuid } from './apply-fixture.js';

void t.test('a retry that meets a discard in progress leaves the change set unapplied', async (t) => {
  const env = await applyEnv();
  t.teardown(() => env.close());
  const applier = await env.applier();
  const person = uuid();
  const name = uuid();
  const cs = changeSet('o1', [{ kind: 'insert', table: 'person_name', id: name, row: { uuid: name, person_id: { ref: 'person', id: person }, given: 'G', family: 'F' } }]);
  t.match(await applier.applyBatch('kigali', entries(cs)), { quarantined: 1 }, 'waits for a person that is not here');
  // the person arrives: a retry would now apply the name
  await env.db.exec(`INSERT INTO ${APP}.person (uuid, name) VALUES (?, 'P')`, [person]);

  // a discard holds the quarantine row (its transaction is still open) while the retry runs
  let held!: () => void;
  let finish!: () => void;
  const lockHeld = new Promise<void>((r) => { held = r; });
  const mayCommit = new Promise<void>((r) => { finish = r; });
  const discarding = env.db.transaction(async (tx) => {
    await tx.exec(`DELETE FROM ${STATE}.quarantine WHERE change_id = ?`, [cs.id]);
    held();
    await mayCommit;
  });
  await lockHeld;
  const retry = applier.retryQuarantine();
  await new Promise((r) => setTimeout(r, 800));
  finish();
  await discarding;
  const report = await retry;
  t.equal(report.applied, 0, 'the retry applied nothing');
  const names = await env.rows<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${APP}.person_name WHERE uuid = ?`, [name]);
  t.equal(Number(names[0]!.n), 0, 'the discarded change set is not in the application tables');
  const ledger = await env.rows<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${STATE}.ledger WHERE change_id = ?`, [cs.id]);
  t.equal(Number(ledger[0]!.n), 0, 'nor in the ledger');
});
