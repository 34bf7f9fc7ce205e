// Splits a byte stream into lines (without the newline), holding at most one
// line plus one chunk in memory. Lines longer than maxLineBytes are refused.
import { SpokesyncError } from '../../apply/core/errors.js';

export const MAX_LINE_BYTES = 512 * 1024 * 1024;

export async function* splitLines(source: AsyncIterable<Buffer | string>, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const chunk of source) {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (;;) {
      const nl = buf.indexOf(10);
      if (nl < 0) break;
      const piece = buf.subarray(0, nl);
      if (parts.length === 0) {
        yield piece;
      } else {
        parts.push(piece);
        yield Buffer.concat(parts, held + piece.length);
        parts = [];
        held = 0;
      }
      buf = buf.subarray(nl + 1);
    }
    if (buf.length > 0) {
      held += buf.length;
      if (held > maxLineBytes) {
        throw new SpokesyncError('SPOKESYNC_E_SNAPSHOT', `a snapshot line is longer than ${maxLineBytes} bytes`);
      }
      parts.push(buf);
    }
  }
  if (held > 0) yield Buffer.concat(parts, held);
}
