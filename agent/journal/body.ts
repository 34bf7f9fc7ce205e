// How a change set's body is kept in the journal. A small body is its <cs>
// element as it is; a large one is brotli-compressed (quality 1), behind a NUL
// byte (no XML text starts with one) and the element's length in bytes:
//
//   0x00 | length (uint32, big-endian) | brotli stream
//
// Why: the server's cost of a journal row grows with its bytes, and capture's
// rows are mostly markup that brotli shrinks many times over. Below
// COMPRESS_FROM the saving is worth less than the work. Readers
// (journal/reader.ts) take either form; batches on the wire are unchanged.
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { SpokesyncError } from '../../apply/core/errors.js';

/** Bodies of this many bytes and more are stored compressed. */
export const COMPRESS_FROM = 2048;
const MARK = 0x00;
const HEAD = 5;

const OPTIONS = (size: number): { params: Record<number, number> } => ({
  params: {
    [constants.BROTLI_PARAM_QUALITY]: 1,
    [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
    [constants.BROTLI_PARAM_SIZE_HINT]: size,
  },
});

/**
 * The journal's form of a <cs> element (UTF-8): compressed when large and when
 * that is smaller. In this thread: at quality 1 a hand-off to the thread pool
 * costs more CPU than the compression.
 */
export function storedBody(xml: Buffer): Buffer {
  if (xml.length < COMPRESS_FROM || xml.length > 0xffffffff) return xml;
  const packed = brotliCompressSync(xml, OPTIONS(xml.length));
  if (packed.length + HEAD >= xml.length) return xml;
  const out = Buffer.allocUnsafe(HEAD + packed.length);
  out[0] = MARK;
  out.writeUInt32BE(xml.length, 1);
  packed.copy(out, HEAD);
  return out;
}

/** The <cs> element (UTF-8) of a body as the journal holds it. */
export function bodyXml(stored: Buffer): Buffer {
  if (stored.length === 0 || stored[0] !== MARK) return stored;
  const bad = (why: string, cause?: unknown): SpokesyncError =>
    new SpokesyncError('SPOKESYNC_E_JOURNAL_BODY', `a compressed journal body is damaged: ${why}`, cause === undefined ? undefined : { cause });
  if (stored.length < HEAD) throw bad('it is shorter than its header');
  const length = stored.readUInt32BE(1);
  let xml: Buffer;
  try {
    xml = brotliDecompressSync(stored.subarray(HEAD), { maxOutputLength: Math.max(1, length) });
  } catch (e) {
    throw bad('it does not decompress', e);
  }
  if (xml.length !== length) throw bad(`it holds ${xml.length} bytes, its header says ${length}`);
  return xml;
}

/** SQL for the length in bytes of the <cs> element a body column holds (without reading a compressed body). */
export function bodyLengthSql(column: string): string {
  return `IF(LEFT(${column}, 1) = X'00', CAST(CONV(HEX(SUBSTRING(${column}, 2, 4)), 16, 10) AS UNSIGNED), LENGTH(${column}))`;
}
