// What every request of a child to its parent shares (the exchange and the
// snapshot download): the pinned TLS trust, the headers, got's options, and
// the reading of a refusal's `CODE: message` body.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { ParentConfig } from '../config/types.js';
import { SpokesyncError, catalogue, type ErrorCode } from '../../apply/core/errors.js';

export interface PinnedTls {
  readonly certificateAuthority?: string;
  readonly checkServerIdentity?: typeof checkServerIdentity;
}

/** TLS options: trust the pinned PEM; a certificate identical to a pinned one is accepted whatever its name. */
export function pinnedTls(caFile: string | undefined): PinnedTls {
  if (!caFile) return {};
  const pem = readFileSync(caFile, 'utf8');
  const pinned = new Set(
    (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [])
      .map((c) => new X509Certificate(c).fingerprint256),
  );
  return {
    certificateAuthority: pem,
    checkServerIdentity: (host: string, cert: PeerCertificate) =>
      pinned.has(cert.fingerprint256) ? undefined : checkServerIdentity(host, cert),
  };
}

/** got's options for any request to the parent; the callers add the method, the body and the timeouts. */
export function parentRequestOptions(parent: ParentConfig, tls: PinnedTls = pinnedTls(parent.ca)) {
  return {
    headers: { authorization: `Bearer ${parent.token}`, 'user-agent': 'spokesync' },
    // the callers are the one retry layer
    retry: { limit: 0 },
    throwHttpErrors: false,
    decompress: false,
    followRedirect: false,
    https: tls,
  };
}

/** A response body as a Buffer (got hands bodies over as plain Uint8Arrays). */
export function bodyBytes(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/** The start of a refusal's body, as text. */
export function refusalText(body: Uint8Array): string {
  return bodyBytes(body).toString('utf8', 0, Math.min(body.length, REFUSAL_CHARS));
}

/** At most this much of a refusal's body is read: it is one line. */
export const REFUSAL_CHARS = 400;

/** What a child's log and status say when its parent answers 401: the fix is on both sides. */
export const TOKEN_REFUSED = "the parent refused this node's token: check children[].token at the parent and parent.token here";

/**
 * The error a parent's refusal stands for. Its body is `CODE: message`;
 * otherwise the error is `fallback` (SPOKESYNC_E_HTTP unless told). A 401 is
 * always the token (SPOKESYNC_E_AUTH), said with its fix.
 */
export function refusal(
  status: number | undefined,
  body: string,
  o: { readonly request?: string; readonly fallback?: ErrorCode; readonly fix?: string } = {},
): SpokesyncError {
  if (status === 401) {
    return new SpokesyncError('SPOKESYNC_E_AUTH', `${TOKEN_REFUSED} (401${o.request ? ` to ${o.request}` : ''})`, o.fix === undefined ? undefined : { fix: o.fix });
  }
  const m = /^(SPOKESYNC_E_[A-Z_]+): (.*)$/s.exec(body.slice(0, REFUSAL_CHARS).trim());
  const code = m?.[1] && m[1] in catalogue ? (m[1] as ErrorCode) : (o.fallback ?? 'SPOKESYNC_E_HTTP');
  const message = `the parent answered ${status ?? '?'}${o.request ? ` to ${o.request}` : ''}${m ? `: ${m[2] ?? ''}` : ''}`;
  return new SpokesyncError(code, message, o.fix === undefined ? undefined : { fix: o.fix });
}
