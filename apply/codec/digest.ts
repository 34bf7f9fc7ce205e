// rowDigest: a short, deterministic fingerprint of a row, carried by deletes so
// the receiver can tell whether its copy of the row is the one that was deleted.
//
// Canonical serialisation (documented in apply/FORMAT.md for other consumers),
// fed to SHA-256 after the tag "spokesync-row-1\n":
//   columns sorted by UTF-16 code unit order (JS default sort), each as
//     len(name) ":" name, then one of
//     "z"                                  null
//     "s" len ":" utf8                     string (well-formed Unicode)
//     "w" len ":" utf16le                  string holding a lone surrogate
//     "b" len ":" bytes                    Buffer
//     "r" len ":" table len ":" identity   Ref (both UTF-8)
//   where len is the decimal byte length. The digest is the first 22
//   characters of the base64url hash (132 bits).

import { createHash } from 'node:crypto';
import type { Row } from '../core/model.js';
import { hasLoneSurrogate, xmlError } from './xml-text.js';

const TAG = 'spokesync-row-1\n';

export function rowDigest(row: Row): string {
  const h = createHash('sha256');
  h.update(TAG);
  const cols = Object.keys(row).sort();
  for (const col of cols) {
    h.update(lenPrefixed(col));
    const v = row[col]!;
    if (v === null) {
      h.update('z');
    } else if (typeof v === 'string') {
      if (hasLoneSurrogate(v)) {
        const b = Buffer.from(v, 'utf16le');
        h.update(`w${b.length}:`);
        h.update(b);
      } else {
        h.update('s' + lenPrefixed(v));
      }
    } else if (Buffer.isBuffer(v)) {
      h.update(`b${v.length}:`);
      h.update(v);
    } else if (typeof v === 'object' && typeof v.ref === 'string' && typeof v.id === 'string') {
      h.update('r' + lenPrefixed(v.ref) + lenPrefixed(v.id));
    } else {
      throw xmlError(`cannot digest column: a value must be a string, Buffer, Ref or null, not ${typeof v}`);
    }
  }
  return h.digest('base64url').slice(0, 22);
}

/** len ":" s, with len in UTF-8 bytes (names and identities are well-formed, as the encoder demands). */
function lenPrefixed(s: string): string {
  return `${Buffer.byteLength(s, 'utf8')}:${s}`;
}
