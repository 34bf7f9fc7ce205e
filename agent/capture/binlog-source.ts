// The binlog source: a thin adapter over zongji that reads from a position
// and hands capture's own SourceEvents (events.ts) to a handler. zongji has no
// pause of its own: pause() stops reading its connection's socket (the server
// waits, up to its net_write_timeout), resume() goes on where it stopped. For
// longer, stop() the source and start a new one later at the saved position.
import ZongJi from '@vlasky/zongji';
import type { AnyBinlogEvent, TableMapEntry } from '@vlasky/zongji';
import { connectionOptions, type DbSettings } from '../../apply/core/db.js';
import { queryMeaning, type RowChange, type RowImage, type SourceHandler } from './events.js';
import { isRawLatin1 } from './binlog-values.js';
import { attachPlan } from './row-plan.js';
import { time2Size } from './time2.js';
import type { RawInsert } from './raw-insert.js';
import type { RowDecoder } from './row-decoder.js';
import { hookRows, installCharsetFix, installSeam, rowsForm } from './zongji-seam.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import type { TableInfo } from '../../apply/core/catalog.js';
import type { BinlogPosition } from './position.js';

export interface SourceOptions {
  readonly settings: DbSettings;
  /** binlog client id, unique per server */
  readonly serverId: number;
  /** schema → tables whose row events are decoded (all others are skipped undecoded) */
  readonly include: Readonly<Record<string, readonly string[]>>;
  /** rows of the tables it knows (their catalogue entry) decoded by capture's own decoder (row-decoder.ts) */
  readonly rows?: { readonly decoder: RowDecoder; readonly tableInfo: (schema: string, table: string) => TableInfo | undefined };
}

/** The events capture asks zongji for. */
const EVENTS = [
  'rotate', 'mariadbgtid', 'mariadbgtidlist', 'binlogcheckpoint', 'heartbeat',
  'tablemap', 'writerows', 'updaterows', 'deleterows', 'xid', 'xaprepare', 'query', 'unknown',
];

const TYPE_BIT = 16;
const TYPE_TIME2 = 19;
const TYPE_BLOB = 252;
const TYPE_GEOMETRY = 255;

/** Opens one binlog stream; use once (start, then stop). */
export class BinlogSource {
  private zongji: ZongJi | undefined;
  private file: string;
  private stopped = false;

  constructor(private readonly opts: SourceOptions, private readonly from: BinlogPosition) {
    this.file = from.file;
  }

  /** Resolves when the stream is open. Events and errors go to the handler from then on. */
  async start(handler: SourceHandler): Promise<void> {
    const s = this.opts.settings;
    const rows = this.opts.rows;
    if (!(await installCharsetFix())) {
      throw new SpokesyncError('SPOKESYNC_E_CAPTURE', 'this version of @vlasky/zongji does not fit capture (its TableMap event): text after a spatial column would be read wrong');
    }
    // installed whatever decodes the rows: zongji's own reading is checked against the event's end there too
    const seam = await installSeam();
    const decoding = rows !== undefined && seam;
    if (rows && !decoding && !rows.decoder.warned) {
      rows.decoder.warned = true;
      handler.warn("capture decodes every row through zongji: its own row decoder does not fit this version of @vlasky/zongji (slower, same values)");
    }
    const z = new ZongJi(connectionOptions(s, 'binlog'));
    this.zongji = z;
    if (decoding) hookRows(z, rows.decoder);
    await new Promise<void>((resolve, reject) => {
      let ready = false;
      z.on('ready', () => {
        ready = true;
        resolve();
      });
      z.on('error', (err: Error) => {
        if (this.stopped) return;
        if (!ready) reject(err);
        else handler.error(err);
      });
      z.on('binlog', (ev: AnyBinlogEvent) => {
        if (this.stopped) return;
        try {
          this.dispatch(z, ev, handler);
        } catch (e) {
          handler.error(e instanceof Error ? e : new Error(String(e)));
        }
      });
      z.start({
        serverId: this.opts.serverId,
        filename: this.from.file,
        position: this.from.pos,
        includeEvents: EVENTS,
        includeSchema: Object.fromEntries(Object.entries(this.opts.include).map(([k, v]) => [k, [...v]])),
      });
    });
  }

  /**
   * Stops reading: events already received may still arrive, then none until
   * resume(). Meant for short waits (the server drops a reader that does not
   * read for net_write_timeout, 60 s by default, which the handler sees as an error).
   */
  pause(): void {
    if (!this.stopped) this.zongji?.connection?.pause();
  }

  resume(): void {
    if (!this.stopped) this.zongji?.connection?.resume();
  }

  /** Closes the stream; no event is delivered after this resolves. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const z = this.zongji;
    if (!z) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 3000);
      z.once('stopped', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        z.stop();
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
    z.removeAllListeners('binlog');
  }

  private dispatch(z: ZongJi, ev: AnyBinlogEvent, h: SourceHandler): void {
    const at = (pos: number): BinlogPosition => ({ file: this.file, pos });
    switch (ev.getEventName()) {
      case 'rotate': {
        const r = ev as Extract<AnyBinlogEvent, { getEventName(): 'rotate' }>;
        this.file = r.binlogName;
        h.event({ kind: 'position', end: { file: r.binlogName, pos: r.position } });
        return;
      }
      case 'mariadbgtid': {
        const g = ev as Extract<AnyBinlogEvent, { getEventName(): 'mariadbgtid' }>;
        h.event({ kind: 'begin', gtid: g.gtid, timestamp: g.timestamp });
        return;
      }
      case 'tablemap': {
        const t = ev as Extract<AnyBinlogEvent, { getEventName(): 'tablemap' }>;
        const entry = z.tableMap[t.tableId];
        if (entry) {
          // (the plan first: rawColumns changes the entry for zongji's own decoding)
          if (this.opts.rows) attachPlan(entry, this.opts.rows.tableInfo(entry.parentSchema, entry.tableName));
          rawColumns(entry);
        }
        return;
      }
      case 'writerows':
      case 'updaterows':
      case 'deleterows': {
        const r = ev as Extract<AnyBinlogEvent, { getEventName(): 'writerows' | 'deleterows' | 'updaterows' }>;
        const entry = z.tableMap[(r as unknown as { tableId: number }).tableId];
        if (!entry || !r.rows) return;
        const schema = entry.parentSchema;
        const table = entry.tableName;
        const changes: RowChange[] = [];
        const name = ev.getEventName();
        const form = rowsForm(r);
        const canon = form !== 'zongji';
        if (form === 'raw-insert') {
          for (const raw of r.rows as unknown as RawInsert[]) changes.push({ op: 'insert', schema, table, raw, canon: true });
        } else if (name === 'writerows') {
          for (const row of r.rows as RowImage[]) changes.push({ op: 'insert', schema, table, after: row, canon });
        } else if (name === 'deleterows') {
          for (const row of r.rows as RowImage[]) changes.push({ op: 'delete', schema, table, before: row, canon });
        } else {
          for (const row of r.rows as { before: RowImage; after: RowImage }[]) {
            changes.push({ op: 'update', schema, table, before: row.before, after: row.after, canon });
          }
        }
        h.event({ kind: 'rows', changes, bytes: ev.size, timestamp: ev.timestamp });
        return;
      }
      case 'xaprepare':
        // XA PREPARE: its rows commit later under XA COMMIT, which this version does not capture
        h.warn('an XA transaction was passed over: spokesync does not capture XA transactions');
        h.event({ kind: 'rollback', end: at(ev.nextPosition) });
        return;
      case 'xid':
        h.event({ kind: 'commit', end: at(ev.nextPosition), timestamp: ev.timestamp });
        return;
      case 'query': {
        const q = ev as Extract<AnyBinlogEvent, { getEventName(): 'query' }>;
        const sql = q.query.trim();
        const m = queryMeaning(sql);
        if (m.kind === 'begin') h.event({ kind: 'begin', gtid: '', timestamp: q.timestamp });
        else if (m.kind === 'commit') h.event({ kind: 'commit', end: at(q.nextPosition), timestamp: q.timestamp });
        else if (m.kind === 'rollback') h.event({ kind: 'rollback', end: at(q.nextPosition) });
        else if (m.kind === 'savepoint') h.event(m);
        else h.event({ kind: 'statement', schema: q.schema, sql, end: at(q.nextPosition), timestamp: q.timestamp });
        return;
      }
      default:
        if (ev.nextPosition > 0) h.event({ kind: 'position', end: at(ev.nextPosition) });
    }
  }
}

/**
 * Makes the decoder hand over raw bytes where its own decoding would lose
 * them: latin1 text (its Windows-1252 table differs from MariaDB's in five
 * bytes; binlog-values.ts decodes), GEOMETRY (decoded into objects otherwise; the
 * value is the server's bytes, like a SELECT through apply/core/db.ts) and TIME
 * (its text of negative whole seconds is wrong: binlog-values.ts decodes the bytes,
 * which it hands over as those of a BIT of the same size).
 */
function rawColumns(entry: TableMapEntry): void {
  for (const col of entry.columns ?? []) {
    if (col.type === TYPE_TIME2) {
      const meta = (col as { metadata?: Record<string, number> }).metadata;
      col.type = TYPE_BIT;
      (col as { metadata?: Record<string, number> }).metadata = { bits: time2Size(meta?.decimals ?? 0) * 8 };
    } else if (col.type === TYPE_GEOMETRY) {
      col.type = TYPE_BLOB;
      col.charset = null;
    } else if (isRawLatin1(col.charset)) {
      col.charset = 'binary';
    }
  }
}
