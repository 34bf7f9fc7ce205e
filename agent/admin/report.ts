// A node's own status report: what its parent, and every node above it, shows
// of it (status.json, the status page). Counts, positions, versions and error
// codes with their messages; never a row value.
import { createHash } from 'node:crypto';
import type { Queryable } from '../../apply/core/db.js';
import { stateTable } from '../../apply/core/state-schema.js';
import type { TableShape } from '../../apply/codec/shape.js';
import { countConflicts } from '../../apply/replay/conflict-rules.js';
import { heldSummary } from '../../apply/replay/held.js';
import { version } from '../cli/version.js';
import type { Config } from '../config/types.js';
import type { JournalReader } from '../journal/reader.js';
import { getCursor, getMeta } from '../routing/cursors.js';
import { routeTo } from '../routing/filters.js';
import { isoOf } from './time.js';

/** Most held tables a report names. */
const MAX_HELD_TABLES = 20;
/** Most tables whose digests a report lists (the first by name). */
export const MAX_SCHEMA_TABLES = 200;
/** How long the state schema's size is taken as known (it is read from information_schema). */
const SIZE_TTL_MS = 60_000;

export interface NodeReport {
  readonly node: string;
  /** the node it reports to; null for the root */
  readonly parent: string | null;
  /** when it was made, by this node's clock (ISO 8601, UTC) */
  readonly at: string;
  /** spokesync's version */
  readonly software: string;
  /** the state schema's version */
  readonly stateVersion: number;
  /**
   * the synced tables' columns: a digest of all their shapes, how many tables, and a short digest of each
   * table's shape by name (the first MAX_SCHEMA_TABLES; absent in reports of older nodes)
   */
  readonly schema: { readonly hash: string; readonly tables: number; readonly byTable?: Readonly<Record<string, string>> };
  readonly capture: {
    readonly running: boolean;
    /** 'file:offset' capture has journaled up to */
    readonly position: string | null;
    /** binlog bytes it still has to journal (capture/binlog-lag.ts) */
    readonly behindBytes: number | null;
    /** seconds the oldest change it holds waits, 0 when it holds none */
    readonly lagSeconds: number | null;
    /** the error that stops or slows it, while it stands */
    readonly error: string | null;
  };
  /** change sets waiting: toward its parent (null for the root), toward all its children */
  readonly pending: { readonly up: number | null; readonly down: number };
  readonly quarantined: number;
  readonly held: { readonly count: number; readonly tables: readonly string[] };
  /** conflicts recorded */
  readonly conflicts: number;
  /** of them, those nobody has reviewed yet (null: an older node that does not say) */
  readonly conflictsUnreviewed: number | null;
  /** its last exchange with its parent that ended well, and its last one that did not */
  readonly lastSuccess: string | null;
  readonly lastError: { readonly at: string; readonly error: string } | null;
  /** bytes the state schema takes on disk (data and indexes) */
  readonly stateBytes: number | null;
}

export interface CaptureView {
  readonly running: boolean;
  readonly file: string;
  readonly pos: number;
  readonly lagSeconds: number | null;
  readonly error: string | null;
}

/** What a report is made from (agent/node.ts). */
export interface ReportSource {
  readonly config: Config;
  readonly db: Queryable;
  readonly reader: JournalReader;
  /** capture as it runs (in this process, or in the one that holds the node) */
  capture(): CaptureView | Promise<CaptureView>;
  /** binlog bytes capture still has to journal from where it is, null when unknown */
  behindBytes(): Promise<number | null>;
  /** the synced tables' shapes */
  shapes(): readonly TableShape[];
  /** the parent's node id, when known */
  parentId(): Promise<string | null>;
}

/** A short digest of table shapes: nodes whose synced columns match have the same. Pure. */
export function schemaHash(shapes: readonly TableShape[]): string {
  const sorted = [...shapes].sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 16);
}

/** A short digest of each table's shape, by table name: the first MAX_SCHEMA_TABLES by name. Pure. */
export function tableDigests(shapes: readonly TableShape[]): Record<string, string> {
  const sorted = [...shapes].sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0)).slice(0, MAX_SCHEMA_TABLES);
  return Object.fromEntries(sorted.map((s) => [s.table, createHash('sha256').update(JSON.stringify(s)).digest('hex').slice(0, 8)]));
}

const clip = (s: string, n: number): string => (s.length > n ? s.slice(0, n - 1) + '…' : s);

/** Makes this node's reports; the state schema's size is read at most once a minute. */
export class OwnReport {
  private size: { at: number; bytes: number | null } | null = null;

  constructor(private readonly src: ReportSource, private readonly now: () => number = Date.now) {}

  /** This node's report now; `inFlight` of its entries toward the parent are in a batch on its way. */
  async make(inFlight = 0): Promise<NodeReport> {
    const { config, db, reader } = this.src;
    const ss = config.database.stateSchema;
    const parent = await this.src.parentId();
    let up: number | null = null;
    let lastSuccess: string | null = null;
    let lastError: NodeReport['lastError'] = null;
    if (parent !== null) {
      const cur = await getCursor(db, ss, parent);
      up = Math.max(0, (await reader.count(routeTo(config, parent, 'parent'), cur.ackedSeq)) - inFlight);
      lastSuccess = isoOf(cur.lastSuccess);
      const [failed] = await db.query<{ started_at: string; result: string }>(
        `SELECT started_at, result FROM ${stateTable(ss, 'exchanges')} WHERE peer = ? AND result <> 'ok' ORDER BY id DESC LIMIT 1`, [parent]);
      if (failed) lastError = { at: isoOf(failed.started_at) ?? '', error: clip(failed.result, 300) };
    }
    let down = 0;
    for (const c of config.children) {
      const cur = await getCursor(db, ss, c.id);
      down += await reader.count(routeTo(config, c.id, 'child'), cur.ackedSeq);
    }
    const [q] = await db.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${stateTable(ss, 'quarantine')}`);
    const conflicts = await countConflicts(db, ss);
    const held = await heldSummary(db, ss);
    const shapes = this.src.shapes();
    const cap = await this.src.capture();
    return {
      node: config.node.id,
      parent,
      at: new Date(this.now()).toISOString(),
      software: version(),
      stateVersion: Number(await getMeta(db, ss, 'version')) || 0,
      schema: { hash: schemaHash(shapes), tables: shapes.length, byTable: tableDigests(shapes) },
      capture: {
        running: cap.running,
        position: cap.file === '' ? null : `${cap.file}:${cap.pos}`,
        behindBytes: await this.src.behindBytes(),
        lagSeconds: cap.lagSeconds === null ? null : Math.round(cap.lagSeconds),
        error: cap.error === null ? null : clip(cap.error, 300),
      },
      pending: { up, down },
      quarantined: Number(q?.n ?? 0),
      held: { count: held.reduce((n, h) => n + h.count, 0), tables: [...new Set(held.map((h) => h.table))].sort().slice(0, MAX_HELD_TABLES) },
      conflicts: conflicts.total,
      conflictsUnreviewed: conflicts.unreviewed,
      lastSuccess,
      lastError,
      stateBytes: await this.stateBytes(),
    };
  }

  private async stateBytes(): Promise<number | null> {
    const t = this.now();
    if (this.size && t - this.size.at < SIZE_TTL_MS) return this.size.bytes;
    const [r] = await this.src.db.query<{ n: number | string | null }>(
      'SELECT SUM(DATA_LENGTH + INDEX_LENGTH) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [this.src.config.database.stateSchema]);
    this.size = { at: t, bytes: r?.n === null || r?.n === undefined ? null : Number(r.n) };
    return this.size.bytes;
  }
}
