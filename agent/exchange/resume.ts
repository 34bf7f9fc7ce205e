// Resumable uploads. On a 1 kbps link a batch takes minutes to send, and a
// connection cut near its end used to cost the whole batch again. A child names
// each large request body by its digest (UPLOAD_HEADER); when the connection
// closes before the body ends, the parent keeps the bytes it got under that
// name. The child's next attempt is a probe carrying RESUME_HEADER; the answer
// says how many bytes the parent holds (HAVE_HEADER), and the child sends only
// the rest (OFFSET_HEADER). The parent joins the two, checks the digest, and
// takes the batch as if it had come in one piece.
//
// Answers are resumed the same way, the other way round: the parent names each
// large answer (ANSWER_HEADER) and keeps it until the child's next request;
// a child that lost the connection part way through one says in its probe how
// much of it it holds (ANSWER_HAVE_HEADER), and the parent sends only the rest
// (OFFSET_HEADER in the answer). The child joins the two and checks the digest.
//
// Partial uploads and last answers live in memory only (after a restart the
// whole body goes again), one of each per child, each at most the body limit,
// all of them within a byte budget, and for at most `ttlMs`.
import { createHash } from 'node:crypto';

export const UPLOAD_HEADER = 'x-spokesync-upload';
export const OFFSET_HEADER = 'x-spokesync-offset';
export const RESUME_HEADER = 'x-spokesync-resume';
export const HAVE_HEADER = 'x-spokesync-have';
/** on an answer: its name; the child's probe names the answer it holds part of in ANSWER_HAVE_HEADER, `ID N` */
export const ANSWER_HEADER = 'x-spokesync-answer';
export const ANSWER_HAVE_HEADER = 'x-spokesync-answer-have';

/** Bodies smaller than this are not named: resending them costs less than the headers. */
export const RESUMABLE_BYTES = 2048;

const ID = /^[A-Za-z0-9_-]{22}$/;

/** What one store holds at most by default: one body of the default listen.maxBodyBytes, or many batches as they usually travel (tens of KB compressed). */
export const DEFAULT_STORE_BYTES = 8 * 1024 * 1024;

/** The name of a body fed piece by piece: 128 bits of its SHA-256, base64url (22 characters). */
export function uploadDigest(): { update(piece: Buffer): void; id(): string } {
  const h = createHash('sha256');
  return { update: (piece) => h.update(piece), id: () => h.digest().subarray(0, 16).toString('base64url') };
}

/** The name of a whole body (uploadDigest). */
export function uploadId(body: Buffer): string {
  const d = uploadDigest();
  d.update(body);
  return d.id();
}

/** A header's value when it is a well-formed upload id, else null. */
export function parseUploadId(v: string | string[] | undefined): string | null {
  return typeof v === 'string' && ID.test(v) ? v : null;
}

/** A header's value as a byte offset (decimal, at most 12 digits), else null. */
export function parseOffset(v: string | string[] | undefined): number | null {
  return typeof v === 'string' && /^[0-9]{1,12}$/.test(v) ? Number(v) : null;
}

/** `ID N` of ANSWER_HAVE_HEADER: a part of answer ID of N bytes (N > 0), else null. */
export function parseAnswerHave(v: string | string[] | undefined): { id: string; have: number } | null {
  const m = typeof v === 'string' ? /^([A-Za-z0-9_-]{22}) ([1-9][0-9]{0,11})$/.exec(v) : null;
  return m ? { id: m[1]!, have: Number(m[2]) } : null;
}

interface Partial<M> {
  readonly id: string;
  readonly bytes: Buffer;
  readonly meta: M;
  readonly at: number;
}

export interface UploadStoreOptions {
  /** all partial bodies together (default DEFAULT_STORE_BYTES); the oldest go first */
  readonly maxBytes?: number;
  /** how long a partial body is kept (default one hour) */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

/** Bodies kept per child (the parent's partial uploads, its last answers), one per child; `meta` travels with each. */
export class UploadStore<M = undefined> {
  private readonly partials = new Map<string, Partial<M>>();
  private total = 0;
  private readonly maxBytes: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(o: UploadStoreOptions = {}) {
    this.maxBytes = o.maxBytes ?? DEFAULT_STORE_BYTES;
    this.ttlMs = o.ttlMs ?? 60 * 60_000;
    this.now = o.now ?? Date.now;
  }

  /** The bytes held of body `id` of `child`, or null. */
  get(child: string, id: string): Buffer | null {
    return this.entry(child, id)?.bytes ?? null;
  }

  /** Body `id` of `child` with what was kept with it, or null. */
  entry(child: string, id: string): { readonly bytes: Buffer; readonly meta: M } | null {
    const p = this.partials.get(child);
    if (!p || p.id !== id) return null;
    if (this.now() - p.at > this.ttlMs) {
      this.delete(child);
      return null;
    }
    return p;
  }

  /** Keeps body `id` (replacing whatever the child had before). */
  set(child: string, id: string, bytes: Buffer, ...meta: M extends undefined ? [] : [M]): void {
    this.delete(child);
    if (bytes.length === 0 || bytes.length > this.maxBytes) return;
    // Map order is insertion order: the first entries are the oldest
    for (const [c, p] of this.partials) {
      if (this.total + bytes.length <= this.maxBytes && this.now() - p.at <= this.ttlMs) break;
      this.delete(c);
    }
    this.partials.set(child, { id, bytes, meta: meta[0] as M, at: this.now() });
    this.total += bytes.length;
  }

  delete(child: string): void {
    const p = this.partials.get(child);
    if (!p) return;
    this.total -= p.bytes.length;
    this.partials.delete(child);
  }

  /** Bytes held, all children together. */
  get bytes(): number {
    return this.total;
  }
}
