// The parent's store of partial uploads: one per child, keyed by the body's
// name, within a byte budget (oldest out first) and a time to live.
import t from 'tap';
import { UploadStore, parseAnswerHave, parseOffset, parseUploadId, uploadId } from '../../agent/exchange/resume.js';

void t.test('upload ids and offsets', async (t) => {
  const id = uploadId(Buffer.from('a batch'));
  t.match(id, /^[A-Za-z0-9_-]{22}$/);
  t.not(uploadId(Buffer.from('a batcH')), id, 'another body, another name');
  t.equal(parseUploadId(id), id);
  for (const bad of [undefined, '', 'short', `${id}x`, 'A'.repeat(21) + '=', [id]]) t.equal(parseUploadId(bad), null, `refused: ${String(bad)}`);
  t.equal(parseOffset('0'), 0);
  t.equal(parseOffset('4096'), 4096);
  for (const bad of [undefined, '', '-1', '1e3', '1234567890123', ' 5']) t.equal(parseOffset(bad), null, `refused: ${String(bad)}`);
});

void t.test('store: per child and per name, budget, time to live', async (t) => {
  let now = 1000;
  const s = new UploadStore({ maxBytes: 100, ttlMs: 50, now: () => now });
  s.set('a', 'id-a', Buffer.alloc(40, 1));
  s.set('b', 'id-b', Buffer.alloc(40, 2));
  t.equal(s.get('a', 'id-a')?.length, 40);
  t.equal(s.get('a', 'id-b'), null, 'another name is not served');
  t.equal(s.get('c', 'id-a'), null, 'nor another child');
  t.equal(s.bytes, 80);
  s.set('a', 'id-a2', Buffer.alloc(30, 3));
  t.equal(s.get('a', 'id-a'), null, 'a child holds one upload');
  t.equal(s.bytes, 70);
  s.set('c', 'id-c', Buffer.alloc(50, 4));
  t.equal(s.get('b', 'id-b'), null, 'over budget: the oldest went');
  t.equal(s.get('a', 'id-a2')?.length, 30);
  t.equal(s.bytes, 80);
  s.set('d', 'id-d', Buffer.alloc(101));
  t.equal(s.get('d', 'id-d'), null, 'larger than the whole budget: not kept');
  now += 51;
  t.equal(s.get('c', 'id-c'), null, 'expired');
  s.delete('a');
  t.equal(s.bytes, 0);
});

void t.test('the part of an answer a probe holds', async (t) => {
  const id = uploadId(Buffer.from('an answer'));
  t.same(parseAnswerHave(`${id} 3000`), { id, have: 3000 });
  for (const bad of [undefined, '', id, `${id} 0`, `${id} 012`, `${id}  5`, `${id} 5 `, `${id}x 5`, `${id} 1234567890123`, [`${id} 5`]]) {
    t.equal(parseAnswerHave(bad), null, `refused: ${String(bad)}`);
  }
});

void t.test('store: what is kept with a body', async (t) => {
  const s = new UploadStore<string>({ maxBytes: 100 });
  s.set('a', 'id-a', Buffer.alloc(10, 1), 'br');
  t.match(s.entry('a', 'id-a'), { bytes: Buffer.alloc(10, 1), meta: 'br' });
  t.equal(s.entry('a', 'id-b'), null, 'another name');
  s.set('a', 'id-c', Buffer.alloc(5, 2), 'gzip');
  t.same(s.entry('a', 'id-c')?.meta, 'gzip', 'replaced, with its own');
  t.equal(s.bytes, 5);
});

void t.test('by default a store holds at most 8 MiB, however many children leave bodies behind', async (t) => {
  const s = new UploadStore();
  for (let i = 0; i < 40; i++) s.set(`child-${i}`, uploadId(Buffer.from(String(i))), Buffer.alloc(1024 * 1024, i));
  t.ok(s.bytes <= 8 * 1024 * 1024, `${s.bytes} bytes held`);
  t.ok(s.get('child-39', uploadId(Buffer.from('39'))), 'the newest is kept');
  t.equal(s.get('child-0', uploadId(Buffer.from('0'))), null, 'the oldest went first');
});
