// The parent's answer to an exchange as it arrives, kept when the connection
// is lost part way so that the next probe asks for the rest only (resume.ts).
import type { Response } from 'got';
import { ANSWER_HAVE_HEADER, ANSWER_HEADER, OFFSET_HEADER, parseOffset, parseUploadId, uploadId } from './resume.js';
import { bodyBytes } from './parent-http.js';

/** The answer held in part, and the one arriving. */
export class AnswerPart {
  /** the named answer held in part, and its bytes so far */
  id: string | null = null;
  private pieces: Buffer[] = [];
  length = 0;
  /** the answer the response in flight carries, from which byte, and what came of it */
  private arriving: { id: string | null; from: number; pieces: Buffer[]; length: number } | null = null;

  /** A response began (status 200): named or not, from `from` (a continuation of the answer held) or whole. */
  begin(id: string | null, from: number): void {
    this.arriving = { id, from, pieces: [], length: 0 };
  }

  data(c: Buffer): void {
    if (!this.arriving) return;
    this.arriving.pieces.push(c);
    this.arriving.length += c.length;
  }

  /** The response failed: keep what came of a named answer (joined to the part held when it continued it). */
  lost(): void {
    const a = this.arriving;
    this.arriving = null;
    if (!a || a.id === null || a.length === 0) return;
    if (a.from === 0) {
      this.id = a.id;
      this.pieces = a.pieces;
      this.length = a.length;
    } else if (a.id === this.id && a.from === this.length) {
      this.pieces.push(...a.pieces);
      this.length += a.length;
    }
  }

  /** ANSWER_HAVE_HEADER for the next probe, or nothing. */
  header(): Record<string, string> {
    return this.id !== null && this.length > 0 ? { [ANSWER_HAVE_HEADER]: `${this.id} ${this.length}` } : {};
  }

  /**
   * The whole answer body of a response that arrived in full: a continuation is
   * joined to the part held and must match its name; null when it does not fit
   * (the part is forgotten and the exchange is tried again).
   */
  whole(res: Response<Uint8Array>): Buffer | null {
    this.arriving = null;
    const id = parseUploadId(res.headers[ANSWER_HEADER]);
    const from = parseOffset(res.headers[OFFSET_HEADER]) ?? 0;
    if (from === 0) {
      this.forget();
      return bodyBytes(res.body);
    }
    const ok = id !== null && id === this.id && from === this.length;
    const body = ok ? Buffer.concat([...this.pieces, bodyBytes(res.body)]) : null;
    this.forget();
    return body !== null && uploadId(body) === id ? body : null;
  }

  forget(): void {
    this.id = null;
    this.pieces = [];
    this.length = 0;
  }
}
