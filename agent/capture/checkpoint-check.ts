// Whether the capture checkpoint belongs to this server's binlog. A node
// restored from a backup (a new disk, a new server) holds a checkpoint taken on
// a binlog that is gone: the file it names is missing, or is another file of the
// same name whose content differs, and reading from it would capture the restore
// itself as new changes. The same server loaded with an older dump of the state
// schema keeps its binlog, but that binlog then shows the state schema's
// checkpoint table dropped and made again after the checkpoint.
import type { Queryable } from '../../apply/core/db.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { getMeta, setMeta } from '../routing/cursors.js';
import { fileIndex, formatPosition, type BinlogPosition } from './position.js';

export type CheckpointVerdict = { readonly restored: false } | { readonly restored: true; readonly reason: string };

/** meta key: the checkpoint table's creation time when last checked (a reload of the state schema makes it anew) */
const CREATED_KEY = 'checkpoint.created';

interface Gtid { readonly domain: string; readonly server: string; readonly seq: bigint }

/** '0-1-5,1-2-7' → GTIDs (anything else is left out). */
export function parseGtids(list: string | null | undefined): Gtid[] {
  const out: Gtid[] = [];
  for (const part of (list ?? '').split(',')) {
    const m = /^\s*(\d+)-(\d+)-(\d+)\s*$/.exec(part);
    if (m) out.push({ domain: m[1]!, server: m[2]!, seq: BigInt(m[3]!) });
  }
  return out;
}

/**
 * Checks the checkpoint `cp` against the server: restored when the server's
 * binlog never held the checkpoint's transaction, when the file it names is
 * missing yet newer than every file the server has, when the position is not the
 * start of an event of that file, or when the binlog there is behind the
 * checkpoint's GTID; or when the state schema was loaded again since (its
 * checkpoint table is newer than the one the checkpoint was written in, and the
 * binlog after the checkpoint shows it made anew). A missing file older than the
 * server's oldest is not a restore: capture reports it as purged.
 */
export async function checkCheckpoint(db: Queryable, stateSchema: string, cp: { position: BinlogPosition; gtid: string }): Promise<CheckpointVerdict> {
  const at = formatPosition(cp.position);
  const files = await db.query<{ Log_name: string; File_size: string | number }>('SHOW BINARY LOGS');
  // MariaDB's GTIDs (MySQL has neither the variable nor BINLOG_GTID_POS: those checks are left out there)
  const st = await mariadbOnly(db.query<{ s: string | null }>('SELECT @@GLOBAL.gtid_binlog_state AS s'));
  const state = new Map(parseGtids(st?.[0]?.s).map((g) => [`${g.domain}-${g.server}`, g.seq]));
  const wanted = st === null ? [] : parseGtids(cp.gtid);
  const never = wanted.find((g) => (state.get(`${g.domain}-${g.server}`) ?? -1n) < g.seq);
  const neverReason = never && `this server's binlog never held transaction ${never.domain}-${never.server}-${never.seq} of the checkpoint (its GTID state is '${st?.[0]?.s ?? ''}')`;
  const file = files.find((f) => f.Log_name === cp.position.file);
  if (!file) {
    if (neverReason) return restored(`the checkpoint ${at} is not on this server: ${neverReason}`);
    const newest = files[files.length - 1]?.Log_name;
    if (newest && fileIndex(cp.position.file) > fileIndex(newest)) {
      return restored(`the checkpoint ${at} names a binlog file newer than every file of this server (the newest is ${newest}): the binlog was started anew`);
    }
    return { restored: false };
  }
  if (cp.position.pos > Number(file.File_size)) {
    return restored(`the checkpoint ${at} is beyond the end of that binlog file (${String(file.File_size)} bytes) on this server`);
  }
  const gp = await mariadbOnly(db.query<{ g: string | null }>('SELECT BINLOG_GTID_POS(?, ?) AS g', [cp.position.file, cp.position.pos]));
  if (gp === null) return reloaded(db, stateSchema, cp.position);
  const g = gp[0];
  if (g?.g === null || g?.g === undefined) return restored(`the checkpoint ${at} is not the start of an event in that binlog file on this server`);
  if (neverReason) return restored(`the checkpoint ${at} is not on this server: ${neverReason}`);
  const there = new Map(parseGtids(g.g).map((x) => [x.domain, x.seq]));
  const behind = wanted.find((w) => (there.get(w.domain) ?? -1n) < w.seq);
  if (behind) {
    return restored(`the binlog of this server at the checkpoint ${at} is at GTID '${g.g}', before the checkpoint's transaction ${behind.domain}-${behind.server}-${behind.seq}`);
  }
  return reloaded(db, stateSchema, cp.position);
}

const restored = (reason: string): CheckpointVerdict => ({ restored: true, reason });

/** The result, or null when the server lacks the variable or function (MySQL: ER_UNKNOWN_SYSTEM_VARIABLE, ER_SP_DOES_NOT_EXIST). */
async function mariadbOnly<T>(q: Promise<T>): Promise<T | null> {
  try {
    return await q;
  } catch (e) {
    const errno = (e as { errno?: number }).errno;
    if (errno === 1193 || errno === 1305) return null;
    throw e;
  }
}

/** The checkpoint table's creation time now. */
async function createdNow(db: Queryable, stateSchema: string): Promise<string | null> {
  const [r] = await db.query<{ c: string | Date | null }>(
    `SELECT CREATE_TIME AS c FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'checkpoint'`, [stateSchema]);
  const c = r?.c;
  return c === null || c === undefined ? null : c instanceof Date ? c.toISOString() : String(c);
}

/** Notes the checkpoint table's creation time now, for the next start to compare. */
export async function noteCheckpointTable(db: Queryable, stateSchema: string): Promise<void> {
  const now = await createdNow(db, stateSchema);
  if (now !== null) await setMeta(db, stateSchema, CREATED_KEY, now);
}

/** The same server, its state schema loaded from a dump: the binlog after the checkpoint shows the checkpoint table made anew. */
async function reloaded(db: Queryable, stateSchema: string, from: BinlogPosition): Promise<CheckpointVerdict> {
  const noted = await getMeta(db, stateSchema, CREATED_KEY);
  const now = await createdNow(db, stateSchema);
  if (noted === null || now === null || noted === now) return { restored: false };
  const found = await findReload(db, stateSchema, from);
  return found
    ? restored(`the state schema was loaded again after the checkpoint ${formatPosition(from)} (its checkpoint table was made anew at ${formatPosition(found)})`)
    : { restored: false };
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The first statement in the binlog from `from` on that drops or creates the state schema's checkpoint table (not IF NOT EXISTS). */
async function findReload(db: Queryable, stateSchema: string, from: BinlogPosition): Promise<BinlogPosition | null> {
  const ss = escapeRe(stateSchema);
  const verb = String.raw`(?:DROP\s+TABLE(?:\s+IF\s+EXISTS)?|CREATE\s+TABLE(?!\s+IF\s+NOT\s+EXISTS))\s+`;
  const qualified = new RegExp(String.raw`${verb}\`?${ss}\`?\.\`?checkpoint\`?(?![\w$])`, 'i');
  const bare = new RegExp(String.raw`${verb}\`?checkpoint\`?(?![\w$])`, 'i');
  const used = new RegExp(String.raw`^use \`${ss}\`;`, 'i');
  const files = (await db.query<{ Log_name: string }>('SHOW BINARY LOGS')).map((f) => f.Log_name);
  const PAGE = 2000;
  for (const file of files.slice(Math.max(0, files.indexOf(from.file)))) {
    let pos = file === from.file ? from.pos : 4;
    for (;;) {
      const events = await db.query<{ Pos: string | number; End_log_pos: string | number; Event_type: string; Info: string | null }>(
        `SHOW BINLOG EVENTS IN ${quoteString(file)} FROM ${Math.floor(pos)} LIMIT ${PAGE}`);
      for (const e of events) {
        const info = e.Info ?? '';
        if (e.Event_type === 'Query' && (qualified.test(info) || (used.test(info) && bare.test(info)))) return { file, pos: Number(e.Pos) };
      }
      if (events.length < PAGE) break;
      pos = Number(events[events.length - 1]!.End_log_pos);
    }
  }
  return null;
}

const quoteString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** The checkpoint row's `updated_at` (when the checkpoint was written), for the record of a restore. */
export async function checkpointSavedAt(db: Queryable, stateSchema: string): Promise<string | null> {
  const [r] = await db.query<{ t: string | Date | null }>(`SELECT updated_at AS t FROM ${stateTable(stateSchema, 'checkpoint')} WHERE id = 1`);
  const t = r?.t;
  return t === null || t === undefined ? null : t instanceof Date ? t.toISOString() : String(t);
}
