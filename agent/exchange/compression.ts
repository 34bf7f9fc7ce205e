// Content encodings of exchange bodies (gzip, br, identity) with hard limits on
// both the bytes on the wire and the bytes after inflation (decompression bombs).
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import type { Compression } from '../config/types.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { packUuids, unpackUuids } from './uuid-coding.js';
import { packValues, unpackValues } from './value-coding.js';

/**
 * spokesync's own codings, offered by spokesync parents: `spokesync-ubr` is
 * brotli over packed UUIDs (uuid-coding.ts); `spokesync-vbr` packs repeated
 * values and number steps first (value-coding.ts), then UUIDs, then brotli.
 */
export type Encoding = 'gzip' | 'br' | 'identity' | 'spokesync-ubr' | 'spokesync-vbr';
export const UBR = 'spokesync-ubr';
export const VBR = 'spokesync-vbr';
/** codings that need the whole body (no streaming) */
export type WholeBody = typeof UBR | typeof VBR;
export const isWholeBody = (e: Encoding): e is WholeBody => e === UBR || e === VBR;
/** what a spokesync parent accepts in requests, best first */
export const ACCEPTED_CODINGS = `${VBR}, ${UBR}, br, gzip`;
/** what a brotli child offers, best first: on 415 it takes the next */
export const BROTLI_CODINGS: readonly Encoding[] = [VBR, UBR, 'br'];

export function encodingFor(c: Compression): Encoding {
  return c === 'none' ? 'identity' : c;
}

/** The Content-Encoding header value as spokesync understands it, or null when unsupported. */
export function parseContentEncoding(header: string | undefined): Encoding | null {
  const v = (header ?? '').trim().toLowerCase();
  if (v === '' || v === 'identity') return 'identity';
  if (v === 'gzip' || v === 'x-gzip') return 'gzip';
  if (v === 'br') return 'br';
  if (v === UBR) return UBR;
  if (v === VBR) return VBR;
  return null;
}

/**
 * The encoding of a response: the request's own encoding when the client
 * accepts it (no Accept-Encoding accepts any, RFC 9110), else spokesync-vbr,
 * spokesync-ubr, br, gzip, identity in that order of what it accepts.
 */
export function negotiate(acceptEncoding: string | undefined, requestEncoding: Encoding): Encoding {
  if (acceptEncoding === undefined || acceptEncoding.trim() === '') return requestEncoding;
  const accepted = new Set<string>();
  for (const part of (acceptEncoding ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (name && !(q && Number(q.slice(2)) === 0)) accepted.add(name === 'x-gzip' ? 'gzip' : name);
  }
  if (accepted.has(requestEncoding)) return requestEncoding;
  for (const e of [VBR, UBR, 'br', 'gzip'] as const) if (accepted.has(e)) return e;
  return 'identity';
}

const brotliParams = (size?: number): zlib.BrotliOptions => ({
  params: {
    [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
    [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
    ...(size === undefined ? {} : { [zlib.constants.BROTLI_PARAM_SIZE_HINT]: size }),
  },
});

/** Compresses a whole (capped) batch. */
export function compress(buf: Buffer, enc: Encoding): Buffer {
  if (enc === 'gzip') return zlib.gzipSync(buf, { level: 9, memLevel: 9 });
  if (enc === 'br') return zlib.brotliCompressSync(buf, brotliParams(buf.length));
  if (isWholeBody(enc)) {
    const packed = packUuids(enc === VBR ? packValues(buf) : buf);
    return zlib.brotliCompressSync(packed, brotliParams(packed.length));
  }
  return buf;
}

/** A streaming compressor (USB files); identity passes through; not for spokesync's own codings (whole buffers only). */
export function compressor(enc: Exclude<Encoding, WholeBody>): Transform {
  if (enc === 'gzip') return zlib.createGzip({ level: 9, memLevel: 9 });
  if (enc === 'br') return zlib.createBrotliCompress(brotliParams());
  return new Transform({ transform: (c: Buffer, _e, cb) => cb(null, c) });
}

/**
 * Inflates a whole buffer, refusing more than maxBytes of output at every
 * stage. UUID packing never grows a batch (the byte it escapes, 0x01, cannot
 * occur in XML 1.0); value packing grows it only by a 2-byte marker per number
 * step (each in a span of 6 bytes or more), so a packed body longer than that
 * cannot unpack to a batch and is refused while brotli is still inflating it.
 */
export function decompress(buf: Buffer, enc: Encoding, maxBytes: number): Buffer {
  try {
    if (enc === 'gzip') return zlib.gunzipSync(buf, { maxOutputLength: maxBytes });
    if (enc === 'br') return zlib.brotliDecompressSync(buf, { maxOutputLength: maxBytes });
    if (enc === UBR) return unpackUuids(zlib.brotliDecompressSync(buf, { maxOutputLength: maxBytes + 4 }), maxBytes);
    if (enc === VBR) {
      const stepped = Math.ceil(maxBytes * 1.5);
      const packed = unpackUuids(zlib.brotliDecompressSync(buf, { maxOutputLength: stepped + 4 }), stepped);
      return unpackValues(packed, maxBytes);
    }
  } catch (e) {
    throw inflateError(e, maxBytes);
  }
  if (buf.length > maxBytes) throw tooLarge(maxBytes);
  return buf;
}

/** A streaming decompressor; identity passes through; not for spokesync's own codings (whole buffers only). */
export function decompressor(enc: Exclude<Encoding, WholeBody>): Transform {
  if (enc === 'gzip') return zlib.createGunzip();
  if (enc === 'br') return zlib.createBrotliDecompress();
  return new Transform({ transform: (c: Buffer, _e, cb) => cb(null, c) });
}

export function tooLarge(max: number, what = 'body'): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_BATCH_TOO_LARGE', `the ${what} is larger than ${max} bytes`);
}

/** zlib failures as typed errors: too much output → BATCH_TOO_LARGE, anything else → XML (bad body). */
export function inflateError(e: unknown, max: number): SpokesyncError {
  if (e instanceof SpokesyncError) return e;
  const code = (e as { code?: string }).code;
  if (code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) return tooLarge(max, 'inflated body');
  return new SpokesyncError('SPOKESYNC_E_XML', `the body does not decompress (${code ?? 'zlib error'})`, { cause: e });
}

/** Passes bytes through and fails once more than `max` have gone by. */
export class ByteLimit extends Transform {
  private seen = 0;
  constructor(private readonly max: number, private readonly what: string) {
    super();
  }
  get bytes(): number {
    return this.seen;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) cb(tooLarge(this.max, this.what));
    else cb(null, chunk);
  }
}
