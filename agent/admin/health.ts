// GET /health: 200 only while this node's database answers and capture runs,
// 503 with the reason (`CODE: message`) otherwise. No token: load balancers,
// monitors and systemd probes read it.
import type { Queryable } from '../../apply/core/db.js';

export interface Health {
  readonly ok: boolean;
  /** 'ok', or `CODE: message` */
  readonly reason: string;
}

export interface HealthSource {
  readonly db: Queryable;
  capture(): { readonly running: boolean; readonly error: string | null };
  /** the error that stopped capture for good */
  fatal(): { readonly code: string; readonly message: string } | null;
  /** this process holds the node lock (it may capture and apply) */
  lockHeld(): boolean;
}

/** How long the database may take to answer SELECT 1. */
const PING_MS = 3000;

export async function nodeHealth(src: HealthSource, pingMs = PING_MS): Promise<Health> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      src.db.query('SELECT 1'),
      new Promise((_, reject) => { timer = setTimeout(() => reject(Object.assign(new Error('no answer'), { code: `no answer within ${pingMs} ms` })), pingMs); }),
    ]);
  } catch (e) {
    return { ok: false, reason: `SPOKESYNC_E_DB_CONNECT: the database does not answer (${(e as { code?: string }).code ?? (e as Error).message})` };
  } finally {
    clearTimeout(timer);
  }
  const fatal = src.fatal();
  if (fatal) return { ok: false, reason: `${fatal.code}: capture stopped for good: ${fatal.message}` };
  if (!src.lockHeld()) return { ok: false, reason: 'SPOKESYNC_E_BUSY: this process lost the node lock to another one; it captures and applies nothing until it has it again' };
  const cap = src.capture();
  if (!cap.running) return { ok: false, reason: 'SPOKESYNC_E_CAPTURE: capture is not running' };
  return { ok: true, reason: 'ok' };
}
