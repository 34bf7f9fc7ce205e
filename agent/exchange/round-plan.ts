// What one exchange round sends, decided without I/O so that tests can ask:
// each POST's body and headers, the coding to fall back to when the parent
// refuses one, and what a probe's answer leads to. client.ts carries it out.
import type { Caps } from '../journal/reader.js';
import { batchBuffer } from './wire.js';
import { BROTLI_CODINGS, compress, type Encoding } from './compression.js';
import { CAP_BYTES_HEADER, CAP_RECORDS_HEADER, DEFAULT_CAPS, type OutgoingBatch } from './protocol.js';
import { OFFSET_HEADER, RESUMABLE_BYTES, RESUME_HEADER, UPLOAD_HEADER, uploadId } from './resume.js';

/** An upload in progress: its coding, its name, and the bytes the parent holds. */
export interface Upload {
  readonly enc: Encoding;
  readonly id: string;
  readonly held: number;
}

/** A round's batch as bytes: whole, and as the probe (acks, no entries) later attempts send. */
export class RoundBodies {
  private readonly coded = new Map<string, Buffer>();

  constructor(readonly entries: number, private readonly full: Buffer, private readonly probe: Buffer) {}

  static async of(out: OutgoingBatch): Promise<RoundBodies> {
    const full = await batchBuffer(out.header, out.entries, out.shapes ?? []);
    // without entries the batch is its own probe
    const probe = out.entries.length > 0 ? await batchBuffer({ ...out.header, more: true }, []) : full;
    return new RoundBodies(out.entries.length, full, probe);
  }

  /** The body in a coding, compressed once per round. */
  get(which: 'full' | 'probe', enc: Encoding): Buffer {
    const key = `${which}:${enc}`;
    let b = this.coded.get(key);
    if (!b) this.coded.set(key, (b = compress(which === 'probe' ? this.probe : this.full, enc)));
    return b;
  }
}

export interface PostState {
  readonly bodies: RoundBodies;
  readonly enc: Encoding;
  /** a later attempt: the batch may have arrived and only its answer been lost, so a probe goes */
  readonly probing: boolean;
  readonly upload: Upload | null;
  readonly caps: Caps;
  /** the header naming the answer held in part (AnswerPart.header()) */
  readonly answerHave: Readonly<Record<string, string>>;
}

export interface PostPlan {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  /** the upload this POST carries on (a new one when the body is named in another coding) */
  readonly upload: Upload | null;
}

/** One POST of a round: a large whole batch is named so that a cut upload can resume where the parent's copy ends. */
export function planPost(s: PostState): PostPlan {
  const whole = s.bodies.get(s.probing ? 'probe' : 'full', s.enc);
  const named = !s.probing && whole.length >= RESUMABLE_BYTES;
  const upload = named && s.upload?.enc !== s.enc ? { enc: s.enc, id: uploadId(whole), held: 0 } : s.upload;
  const offset = named && upload ? upload.held : 0;
  return {
    body: offset > 0 ? whole.subarray(offset) : whole,
    upload,
    headers: {
      // no Accept-Encoding: the answer comes in the request's coding (headers cost seconds at 1 kbps)
      ...(s.enc === 'identity' ? { 'accept-encoding': 'identity' } : { 'content-encoding': s.enc }),
      // the parent answers within the same caps (the protocol's defaults are not sent: every byte counts on 1 kbps)
      ...(s.caps.records === DEFAULT_CAPS.records ? {} : { [CAP_RECORDS_HEADER]: String(s.caps.records) }),
      ...(s.caps.bytes === DEFAULT_CAPS.bytes ? {} : { [CAP_BYTES_HEADER]: String(s.caps.bytes) }),
      ...(named && upload ? { [UPLOAD_HEADER]: upload.id } : {}),
      ...(offset > 0 ? { [OFFSET_HEADER]: String(offset) } : {}),
      ...(s.probing && upload ? { [RESUME_HEADER]: upload.id } : {}),
      ...(s.probing ? s.answerHave : {}),
    },
  };
}

/** The coding to try next when the parent refused `enc` (415), or null: brotli children step down coding by coding. */
export function fallbackCoding(enc: Encoding, status: number): Encoding | null {
  if (status !== 415) return null;
  const at = BROTLI_CODINGS.indexOf(enc);
  return at < 0 ? null : (BROTLI_CODINGS[at + 1] ?? null);
}

export interface Answered {
  readonly bodies: RoundBodies;
  /** the answer came to a probe */
  readonly probing: boolean;
  readonly upload: Upload | null;
  /** bytes of the upload the parent says it holds */
  readonly have: number;
  /** passes of the round so far, this one included, and the most allowed */
  readonly passes: number;
  readonly maxPasses: number;
  readonly aborted: boolean;
}

/** After an answer: the round ends (with the entries the parent got), or the upload resumes from what the parent holds. */
export function afterAnswer(a: Answered): { readonly sent: number } | { readonly resume: Upload } {
  if (!a.probing) return { sent: a.bodies.entries };
  const u = a.upload;
  const size = u ? a.bodies.get('full', u.enc).length : 0;
  // a batch the parent holds none of is sent whole in the next round
  if (!u || a.have <= 0 || a.have >= size || a.passes >= a.maxPasses || a.aborted) return { sent: 0 };
  return { resume: { ...u, held: a.have } };
}
