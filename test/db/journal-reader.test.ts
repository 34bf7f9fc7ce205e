// The journal reader over bodies kept both ways (journal/body.ts): large
// change sets stored compressed, small ones as they are. Batches carry the
// <cs> elements themselves, sized by their own length (read in SQL without
// decompressing), and a damaged compressed body stops the read with its code.
import t from 'tap';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import type { ChangeSet } from '../../apply/core/model.js';
import { openDb } from '../../apply/core/db.js';
import { trimChangeSet } from '../../agent/exchange/wire.js';
import { JournalReader } from '../../agent/journal/reader.js';
import type { Route } from '../../agent/routing/filters.js';
import { ensureStateSchema } from '../../apply/core/state-schema.js';
import { journal } from '../helpers/exchange-rig.js';
import { startServer } from '../../deploy/sandbox/mariadb.js';

function bigChangeSet(hlc: number, rows: number, tables = ['obs']): ChangeSet {
  return {
    id: `kigali:${hlc}`, origin: 'kigali', hlc: String(hlc), time: '2026-01-02T03:04:05Z',
    ops: Array.from({ length: rows }, (_, i) => ({
      kind: 'insert' as const, table: tables[i % tables.length]!, id: `kigali-${hlc}-${i}`, row: { value_text: `reading ${i} of ${hlc}: 37.5 °C`, note: null },
    })),
  };
}

void t.test('journal reader: compressed and plain bodies', async (t) => {
  const s = await startServer();
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(async () => {
    await db.close();
    await s.stop();
  });
  await ensureStateSchema(db, 'st');
  const sets = [bigChangeSet(1, 1), bigChangeSet(2, 80), bigChangeSet(3, 3), bigChangeSet(4, 200, ['obs', 'person']), bigChangeSet(5, 40)];
  for (const cs of sets) await journal(db, 'st', cs);
  const xml = sets.map((cs) => encodeChangeSet(cs));
  const stored = await db.query<{ packed: number }>(`SELECT LEFT(body, 1) = X'00' AS packed FROM st.journal ORDER BY seq`);
  t.same(stored.map((r) => Number(r.packed)), xml.map((x) => (Buffer.byteLength(x) >= 2048 ? 1 : 0)), 'large bodies stored compressed, small ones as they are');

  const reader = new JournalReader(db, 'st', trimChangeSet);
  const all: Route = { peer: 'huye', role: 'child', accepts: () => true, acceptsAll: true };
  const batch = await reader.read(all, '0', { records: 100, bytes: 10 * 1024 * 1024 });
  t.same(batch.entries.map((e) => e.body), xml, 'every body read back as its <cs> element');
  t.equal(batch.bytes, xml.reduce((n, x) => n + Buffer.byteLength(x), 0), 'the batch counts the elements\' bytes, not the stored ones');

  // a byte cap between the first two elements' sizes: the batch stops after the first
  const capped = await reader.read(all, '0', { records: 100, bytes: Buffer.byteLength(xml[0]!) + Buffer.byteLength(xml[1]!) - 1 });
  t.equal(capped.entries.length, 1, 'caps compare the element sizes');
  t.equal(capped.more, true);

  // a filter that drops one table: the compressed body is trimmed like any other
  const obsOnly: Route = { peer: 'huye', role: 'child', accepts: (tbl) => tbl === 'obs', acceptsAll: false };
  const trimmed = await reader.read(obsOnly, '3', { records: 1, bytes: 10 * 1024 * 1024 });
  t.same(trimmed.entries.map((e) => e.body), [trimChangeSet(xml[3]!, (tbl) => tbl === 'obs')], 'trimmed after decompressing');

  const streamed: string[] = [];
  for await (const e of reader.stream(all, '0')) streamed.push(e.body);
  t.same(streamed, xml, 'streamed (USB) the same');

  // a compressed body damaged in the table: the read fails with its code, nothing is passed on
  await db.exec(`UPDATE st.journal SET body = LEFT(body, LENGTH(body) - 20) WHERE seq = 2`);
  await t.rejects(reader.read(all, '0', { records: 100, bytes: 10 * 1024 * 1024 }), { code: 'SPOKESYNC_E_JOURNAL_BODY' });
});
