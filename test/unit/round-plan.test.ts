// The plan of an exchange round, without a network or a database: what each
// POST carries (whole batch, probe, the rest of a cut upload), the coding to
// fall back to, and what a probe's answer leads to.
import t from 'tap';
import { createHash } from 'node:crypto';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import type { BatchHeader } from '../../apply/core/model.js';
import { decompress } from '../../agent/exchange/compression.js';
import { CAP_BYTES_HEADER, CAP_RECORDS_HEADER, DEFAULT_CAPS } from '../../agent/exchange/protocol.js';
import { OFFSET_HEADER, RESUMABLE_BYTES, RESUME_HEADER, UPLOAD_HEADER, uploadId } from '../../agent/exchange/resume.js';
import { RoundBodies, afterAnswer, fallbackCoding, planPost, type PostState } from '../../agent/exchange/round-plan.js';
import { collectBatch } from '../../agent/exchange/wire.js';

const header: BatchHeader = { version: 1, from: 'leaf', to: 'hub', seq: '3', ack: '7', more: false };
const entries = (n: number) => Array.from({ length: n }, (_, i) => ({
  seq: String(i + 1),
  body: encodeChangeSet({
    id: `leaf:${i + 1}`, origin: 'leaf', hlc: String(i + 1), time: '2026-01-02T03:04:05Z',
    ops: [{ kind: 'insert', table: 'person', id: `p-${i}`, row: { name: createHash('sha256').update(String(i)).digest('base64') } }],
  }),
}));

const state = (bodies: RoundBodies, o: Partial<PostState> = {}): PostState =>
  ({ bodies, enc: 'identity', probing: false, upload: null, caps: DEFAULT_CAPS, answerHave: {}, ...o });

void t.test('a small batch goes whole, unnamed; a probe carries acks only', async (t) => {
  const bodies = await RoundBodies.of({ header, entries: entries(2) });
  const first = planPost(state(bodies));
  const whole = await collectBatch([first.body]);
  t.same(whole.header, header);
  t.same(whole.entries.map((e) => e.seq), ['1', '2']);
  t.ok(first.body.length < RESUMABLE_BYTES);
  t.same(first.headers, { 'accept-encoding': 'identity' }, 'no upload name, no caps when they are the defaults');
  t.equal(first.upload, null);

  const probe = planPost(state(bodies, { probing: true, answerHave: { 'x-spokesync-answer-have': 'abc 10' } }));
  const p = await collectBatch([probe.body]);
  t.same(p.entries, [], 'no entries');
  t.same(p.header, { ...header, more: true }, 'the same acks, and more: the entries may not have arrived');
  t.same(probe.headers, { 'accept-encoding': 'identity', 'x-spokesync-answer-have': 'abc 10' }, 'asks for the rest of the answer held');

  const empty = await RoundBodies.of({ header, entries: [] });
  t.ok(planPost(state(empty, { probing: true })).body.equals(planPost(state(empty)).body), 'without entries the batch is its own probe');

  const gz = planPost(state(bodies, { enc: 'gzip', caps: { records: 3, bytes: 4096 } }));
  t.same(gz.headers, { 'content-encoding': 'gzip', [CAP_RECORDS_HEADER]: '3', [CAP_BYTES_HEADER]: '4096' });
  t.ok(decompress(gz.body, 'gzip', 1e6).equals(first.body), 'the same batch, compressed');
  t.equal(bodies.get('full', 'gzip'), gz.body, 'compressed once per round');
});

void t.test('a large batch is named; a cut upload goes on from what the parent holds', async (t) => {
  const bodies = await RoundBodies.of({ header, entries: entries(80) });
  const first = planPost(state(bodies));
  t.ok(first.body.length >= RESUMABLE_BYTES, `${first.body.length} bytes`);
  const id = uploadId(first.body);
  t.same(first.upload, { enc: 'identity', id, held: 0 });
  t.equal(first.headers[UPLOAD_HEADER], id);
  t.notOk(OFFSET_HEADER in first.headers);

  const probe = planPost(state(bodies, { probing: true, upload: first.upload }));
  t.equal(probe.headers[RESUME_HEADER], id, 'the probe asks how much of the upload arrived');
  t.notOk(UPLOAD_HEADER in probe.headers);
  t.ok(probe.body.length < 200);

  const rest = planPost(state(bodies, { upload: { ...first.upload!, held: 1000 } }));
  t.ok(rest.body.equals(first.body.subarray(1000)), 'only the rest goes up');
  t.equal(rest.headers[OFFSET_HEADER], '1000');
  t.equal(rest.headers[UPLOAD_HEADER], id);

  t.ok(bodies.get('full', 'br').length >= RESUMABLE_BYTES, 'named in br too');
  const br = planPost(state(bodies, { enc: 'br', upload: { ...first.upload!, held: 1000 } }));
  t.same(br.upload, { enc: 'br', id: uploadId(bodies.get('full', 'br')), held: 0 }, 'another coding: another upload, from the start');
  t.equal(br.body, bodies.get('full', 'br'));
});

void t.test('coding fallback: spokesync-vbr, spokesync-ubr, br, then no further', async (t) => {
  t.equal(fallbackCoding('spokesync-vbr', 415), 'spokesync-ubr');
  t.equal(fallbackCoding('spokesync-ubr', 415), 'br');
  t.equal(fallbackCoding('br', 415), null);
  t.equal(fallbackCoding('gzip', 415), null, 'gzip children do not change coding');
  t.equal(fallbackCoding('spokesync-vbr', 500), null, 'only a 415 is a refusal of the coding');
});

void t.test('after an answer: done, or resume the upload', async (t) => {
  const bodies = await RoundBodies.of({ header, entries: entries(80) });
  const upload = planPost(state(bodies)).upload;
  const size = bodies.get('full', 'identity').length;
  const base = { bodies, probing: true, upload, have: 1000, passes: 1, maxPasses: 5, aborted: false };
  t.same(afterAnswer({ ...base, probing: false }), { sent: 80 }, 'the batch itself was answered');
  t.same(afterAnswer(base), { resume: { ...upload!, held: 1000 } }, 'the parent holds part: resume');
  t.same(afterAnswer({ ...base, upload: null }), { sent: 0 }, 'nothing named: the batch goes whole next round');
  t.same(afterAnswer({ ...base, have: 0 }), { sent: 0 });
  t.same(afterAnswer({ ...base, have: size }), { sent: 0 }, 'a whole copy is not resumed');
  t.same(afterAnswer({ ...base, passes: 5 }), { sent: 0 }, 'no pass beyond maxTries');
  t.same(afterAnswer({ ...base, aborted: true }), { sent: 0 }, 'nor after an abort');
});
