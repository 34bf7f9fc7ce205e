// A journal write whose commit answer is lost (the connection drops after the
// server committed it): capture starts again after what was written, from the
// stored checkpoint, instead of replaying it into the journal's key again and again.
import t from 'tap';
import { appServer, journal, makeCapture } from '../helpers/capture-fixture.js';

void t.test('a write that committed although its answer was lost is not replayed', async (t) => {
  const { s, db } = await appServer(t);
  await db.exec('CREATE TABLE app.visit (id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(36) NOT NULL UNIQUE) ENGINE=InnoDB');
  const capture = await makeCapture(s, db, 'app', ['visit'], { sleep: async () => undefined });
  await capture.start();
  t.teardown(() => capture.stop());

  // the next journal write commits, then reports the connection lost
  const writer = (capture as unknown as { writer: { write: (...a: unknown[]) => Promise<void> } }).writer;
  const write = writer.write.bind(writer);
  let lost = 0;
  writer.write = async (...a: unknown[]) => {
    await write(...a);
    if (lost++ === 0) throw Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST' });
  };
  await db.exec(`INSERT INTO app.visit (uuid) VALUES ('v-1')`);
  await db.exec(`INSERT INTO app.visit (uuid) VALUES ('v-2')`);
  await capture.caughtUp(30_000);
  const rows = await journal(db);
  t.same(rows.map((r) => r.opCount), [1, 1], 'each transaction journaled once');
  const failures = (capture as unknown as { failures: number }).failures;
  t.equal(failures, 0, 'capture went on after the lost answer without failing again');
  t.notOk(capture.status().error?.includes('already in the journal'), `no replay into the journal (last error: ${capture.status().error ?? 'none'})`);
});
