// How far capture is behind in the binlog, counting only what it has to
// journal: the binlog also holds spokesync's own state writes (always those of
// the exchange, and capture's own without BINLOG ADMIN) and other schemas'
// changes, which capture reads past. An idle node is then 0 bytes behind,
// not the size of its own bookkeeping written after the checkpoint.
import type { Queryable } from '../../apply/core/db.js';
import type { BinlogPosition } from './position.js';

/** What capture needs from the binlog: rows of synced tables and of its ledger and carry, and DDL on the application schema. */
export interface NeededEvents {
  readonly schema: string;
  readonly stateSchema: string;
  /** whether an application table syncs */
  readonly syncs: (table: string) => boolean;
}

export interface BinlogBehind {
  /** bytes from the position to the end of the last transaction capture needs; 0 when it needs none */
  readonly bytes: number;
  /** false when the events could not be read (privilege, too many): `bytes` is then the raw distance to the end */
  readonly exact: boolean;
}

interface EventRow {
  Event_type: string;
  End_log_pos: string | number;
  Info: string | null;
}

const PAGE = 1000;
const QUIET_QUERY = /^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|XA )/i;
const STATE_TABLES = new Set(['ledger', 'carry']);

/** Whether one event of the binlog matters to capture. Pure. */
export function isNeeded(type: string, info: string, n: NeededEvents): boolean {
  if (type === 'Table_map') {
    const m = /\(([^.()]+)\.([^()]+)\)\s*$/.exec(info);
    if (!m) return true;
    const [, schema, table] = m;
    if (schema === n.schema) return n.syncs(table!);
    return schema === n.stateSchema && STATE_TABLES.has(table!);
  }
  if (type === 'Query') {
    if (QUIET_QUERY.test(info)) return false;
    // DDL names the application schema (in `use` or in the statement) when it can touch a synced table
    const escaped = n.schema.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return new RegExp(`(^|[^A-Za-z0-9_$])${escaped}([^A-Za-z0-9_$]|$)`, 'i').test(info);
  }
  return false;
}

/**
 * Bytes of binlog between `from` and the end of the last transaction capture
 * needs (reading at most `maxEvents` events; past them, or without the
 * privilege to read events, the raw distance to the end, marked inexact).
 */
export async function binlogBehind(db: Queryable, from: BinlogPosition, needed: NeededEvents, maxEvents = 20_000): Promise<BinlogBehind | null> {
  const logs = await db.query<{ Log_name: string; File_size: string | number }>('SHOW BINARY LOGS');
  const at = logs.findIndex((l) => l.Log_name === from.file);
  if (at < 0) return null;
  const files = logs.slice(at).map((l, i) => ({ name: l.Log_name, start: i === 0 ? from.pos : 4, size: Number(l.File_size) }));
  const raw = files.reduce((sum, f) => sum + Math.max(0, f.size - f.start), 0);
  let before = 0;
  let behind = 0;
  let read = 0;
  try {
    for (const f of files) {
      let pos = f.start;
      let open = false;
      while (pos < f.size) {
        const events = await db.query<EventRow>(`SHOW BINLOG EVENTS IN ${quote(f.name)} FROM ${pos} LIMIT ${PAGE}`);
        for (const e of events) {
          const end = Number(e.End_log_pos);
          const info = e.Info ?? '';
          const commits = e.Event_type === 'Xid' || (e.Event_type === 'Query' && /^\s*(COMMIT|ROLLBACK)/i.test(info));
          if (isNeeded(e.Event_type, info, needed)) {
            behind = before + end - f.start;
            // rows need their transaction's commit; DDL is its own transaction
            open = e.Event_type !== 'Query';
          } else if (open && commits) {
            behind = before + end - f.start;
            open = false;
          }
          if (end > pos) pos = end;
        }
        read += events.length;
        if (read > maxEvents) return { bytes: raw, exact: false };
        if (events.length < PAGE) break;
      }
      before += Math.max(0, f.size - f.start);
    }
  } catch {
    return { bytes: raw, exact: false };
  }
  return { bytes: behind, exact: true };
}

function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
