// Resumable uploads. On a 1 kbps link a batch takes minutes to send, and a
// connection cut near its end used to cost the whole batch again. A child names
// each large request body by its digest (UPLOAD_HEADER); when the connection
// closes before the body ends, the parent keeps the bytes it got under that
// name. The child's next attempt is a probe carrying RESUME_HEADER; the answer
// says how many bytes the parent holds (HAVE_HEADER), and the child sends only
// the rest (OFFSET_HEADER). The parent joins the two, checks the digest, and
// takes the batch as if it had come in one piece.
//
// Partial bodies live in memory only (a restarted parent asks for the whole
// batch again), one per child, each at most the body limit, all of them within
// a byte budget, and for at most `ttlMs`.
import { createHash } from 'node:crypto';

export const UPLOAD_HEADER = 'x-spokesync-upload';
export const OFFSET_HEADER = 'x-spokesync-offset';
export const RESUME_HEADER = 'x-spokesync-resume';
export const HAVE_HEADER = 'x-spokesync-have';

/** Bodies smaller than this are not named: resending them costs less than the headers. */
export const RESUMABLE_BYTES = 2048;

const ID = /^[A-Za-z0-9_-]{22}$/;

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

interface Partial {
  readonly id: string;
  readonly bytes: Buffer;
  readonly at: number;
}

export interface UploadStoreOptions {
  /** all partial bodies together (default 64 MiB); the oldest go first */
  readonly maxBytes?: number;
  /** how long a partial body is kept (default one hour) */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

/** The parent's partial bodies, one per child. */
export class UploadStore {
  private readonly partials = new Map<string, Partial>();
  private total = 0;
  private readonly maxBytes: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(o: UploadStoreOptions = {}) {
    this.maxBytes = o.maxBytes ?? 64 * 1024 * 1024;
    this.ttlMs = o.ttlMs ?? 60 * 60_000;
    this.now = o.now ?? Date.now;
  }

  /** The bytes held of upload `id` from `child`, or null. */
  get(child: string, id: string): Buffer | null {
    const p = this.partials.get(child);
    if (!p || p.id !== id) return null;
    if (this.now() - p.at > this.ttlMs) {
      this.delete(child);
      return null;
    }
    return p.bytes;
  }

  /** Keeps what arrived of upload `id` (replacing whatever the child had before). */
  set(child: string, id: string, bytes: Buffer): void {
    this.delete(child);
    if (bytes.length === 0 || bytes.length > this.maxBytes) return;
    // Map order is insertion order: the first entries are the oldest
    for (const [c, p] of this.partials) {
      if (this.total + bytes.length <= this.maxBytes && this.now() - p.at <= this.ttlMs) break;
      this.delete(c);
    }
    this.partials.set(child, { id, bytes, at: this.now() });
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
