// Text rules of the wire format: which strings XML 1.0 can carry as they are,
// how they are escaped, and the strict base64 used for everything else.
// Pure functions; the encoder calls them once per value, so the common case
// (nothing to escape) is a single regex test.

import { SpokesyncError } from '../core/errors.js';

/**
 * A character XML 1.0 cannot hold, not even as a character reference
 * (C0 controls other than tab/LF/CR, U+FFFE, U+FFFF, lone surrogates).
 * With the u flag a well-formed surrogate pair is one code point and passes.
 */
const ILLEGAL = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
/** Fast first pass without the u flag: anything but BMP-legal characters (surrogates included). */
const NOT_PLAIN_BMP = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD]/;
/** A surrogate that is not part of a pair (the u flag consumes pairs whole). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

const TEXT_SPECIAL = /[&<>\r]/;
const TEXT_SPECIAL_G = /[&<>\r]/g;
const ATTR_SPECIAL = /[&<"\t\n\r]/;
const ATTR_SPECIAL_G = /[&<"\t\n\r]/g;

const REPLACEMENTS: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  // character references survive end-of-line and attribute-value normalisation
  '\r': '&#13;',
  '\n': '&#10;',
  '\t': '&#9;',
};
const replace = (c: string): string => REPLACEMENTS[c]!;

/** True when XML 1.0 can carry the string (escaped) as text or attribute value. */
export function isXmlSafe(s: string): boolean {
  return !NOT_PLAIN_BMP.test(s) || !ILLEGAL.test(s);
}

export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

/** Escape for element content: & < > (so "]]>" cannot occur) and CR. Tab and LF stay literal. */
export function escapeText(s: string): string {
  return TEXT_SPECIAL.test(s) ? s.replace(TEXT_SPECIAL_G, replace) : s;
}

/** Escape for a double-quoted attribute value: & < " and tab, LF, CR as character references. */
export function escapeAttr(s: string): string {
  return ATTR_SPECIAL.test(s) ? s.replace(ATTR_SPECIAL_G, replace) : s;
}

/**
 * One attribute that can hold any well-formed string: ` name="escaped"` when XML
 * can carry it, else ` NAME="base64 of UTF-8"` (the upper-case twin).
 * `what` names the field for the error (never the value).
 */
export function nameAttr(lower: string, upper: string, s: string, what: string): string {
  if (isXmlSafe(s)) return ` ${lower}="${escapeAttr(s)}"`;
  if (LONE_SURROGATE.test(s)) {
    throw new SpokesyncError('SPOKESYNC_E_XML', `cannot encode ${what}: it holds a lone UTF-16 surrogate`, {
      fix: 'Table names, column names and identities must be well-formed Unicode.',
    });
  }
  return ` ${upper}="${Buffer.from(s, 'utf8').toString('base64')}"`;
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const XML_SPACE = /[ \t\n\r]/;
const XML_SPACE_G = /[ \t\n\r]+/g;

/**
 * Strict base64 (xs:base64Binary): whitespace allowed, otherwise only canonical
 * padded base64. Node's decoder silently skips junk, so re-encode and compare.
 */
export function decodeBase64(s: string, what: string): Buffer {
  const t = XML_SPACE.test(s) ? s.replace(XML_SPACE_G, '') : s;
  if (t.length % 4 !== 0 || !B64.test(t)) throw xmlError(`${what} is not valid base64`);
  const b = Buffer.from(t, 'base64');
  if (b.toString('base64') !== t) throw xmlError(`${what} is not canonical base64`);
  return b;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 bytes to a string; invalid sequences are an error, never U+FFFD. */
export function decodeUtf8(b: Uint8Array, what: string): string {
  try {
    return utf8.decode(b);
  } catch (e) {
    throw xmlError(`${what} is not valid UTF-8`, e);
  }
}

/** base64 of UTF-16LE code units to a string (the encoding for strings with lone surrogates). */
export function decodeUtf16(b: Buffer, what: string): string {
  if (b.length % 2 !== 0) throw xmlError(`${what} has an odd number of UTF-16 bytes`);
  return b.toString('utf16le');
}

export function xmlError(message: string, cause?: unknown): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_XML', message, cause === undefined ? undefined : { cause });
}

const UINT64_MAX = 18446744073709551615n;
const DECIMAL = /^(?:0|[1-9][0-9]{0,19})$/;

/** A decimal uint64 without leading zeros (hlc stamps, journal and batch sequence numbers). */
export function isUint64(s: string): boolean {
  return DECIMAL.test(s) && (s.length < 20 || BigInt(s) <= UINT64_MAX);
}

export const NODE_ID = /^[a-z0-9-]+$/;
export const COMMIT_TIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$/;
/** Row digests are base64url (rowDigest gives 22 characters). */
export const DIGEST = /^[A-Za-z0-9_-]{1,128}$/;
/** A column name that may travel in an insert's z (null list) or u (column = identity) attribute. */
export const LIST_NAME = /^[A-Za-z0-9_$]+$/;
/** The z attribute of <i>: such names separated by single spaces. */
export const NAME_LIST = /^[A-Za-z0-9_$]+(?: [A-Za-z0-9_$]+)*$/;
