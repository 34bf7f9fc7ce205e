// A parent exchange server and child-side cores on one real MariaDB server, each
// node in its own state schema, with a recording applier: for exchange tests
// that are about HTTP, cursors and routing rather than replay.
import { request } from 'node:http';
import type { BatchEntry, ChangeSet } from '../../apply/core/model.js';
import { encodeChangeSet } from '../../apply/codec/encode.js';
import type { Config } from '../../agent/config/types.js';
import type { Db } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { silentLogger, type Logger } from '../../apply/core/log.js';
import { ExchangeCore, type ApplyCounts, type BatchApplier } from '../../agent/exchange/protocol.js';
import { trimChangeSet } from '../../agent/exchange/wire.js';
import { JournalReader } from '../../agent/journal/reader.js';
import { storedBody } from '../../agent/journal/body.js';
import { ensureStateSchema, stateTable } from '../../apply/core/state-schema.js';

/** Remembers what it was given; refuses ops on tables in `unknown` (as the real applier's validation does). */
export class RecordingApplier implements BatchApplier {
  readonly taken: { peer: string; entry: BatchEntry }[] = [];
  readonly seen = new Set<string>();
  constructor(private readonly unknown: ReadonlySet<string> = new Set(['no_such_table'])) {}
  async applyBatch(peer: string, entries: readonly BatchEntry[]): Promise<ApplyCounts> {
    for (const e of entries) {
      for (const op of e.cs.ops) {
        if (this.unknown.has(op.table)) throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_TABLE', `table ${op.table} is not synced here`);
      }
    }
    let applied = 0;
    let duplicates = 0;
    for (const e of entries) {
      if (this.seen.has(e.cs.id)) { duplicates++; continue; }
      this.seen.add(e.cs.id);
      this.taken.push({ peer, entry: e });
      applied++;
    }
    return { applied, duplicates, quarantined: 0, conflicts: 0 };
  }
}

export function changeSet(origin: string, hlc: number, tables: string[] = ['person']): ChangeSet {
  return {
    id: `${origin}:${hlc}`,
    origin,
    hlc: String(hlc),
    time: '2026-01-02T03:04:05Z',
    ops: tables.map((table, i) => ({ kind: 'insert', table, id: `${origin}-${hlc}-${i}`, row: { name: `n${hlc}`, note: null } })),
  };
}

/** Appends a change set to a node's journal as capture would (a large body compressed, journal/body.ts). */
export async function journal(db: Db, stateSchema: string, cs: ChangeSet, fromPeer: string | null = null): Promise<string> {
  const tables = [...new Set(cs.ops.map((o) => o.table))].join(',');
  const r = await db.exec(
    `INSERT INTO ${stateTable(stateSchema, 'journal')}
       (change_id, origin, from_peer, hlc, commit_time, tables, op_count, body, binlog_file, binlog_pos)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'mysql-bin.000001', 4)`,
    [cs.id, cs.origin, fromPeer, cs.hlc, cs.time.replace('T', ' ').replace('Z', ''), tables, cs.ops.length, storedBody(Buffer.from(encodeChangeSet(cs), 'utf8'))],
  );
  return String(r.insertId);
}

export interface RigNode {
  readonly id: string;
  readonly stateSchema: string;
  readonly applier: RecordingApplier;
  readonly core: ExchangeCore;
  readonly config: Config;
}

export function nodeConfig(id: string, over: Partial<Config> = {}): Config {
  return {
    file: '/dev/null',
    node: { id },
    database: { host: '127.0.0.1', port: 3306, user: 'root', schema: 'app', stateSchema: `${id.replace(/-/g, '_')}_state`, serverId: 1 },
    tables: { include: ['*'], exclude: [], keys: {}, direction: {} },
    children: [],
    capture: { memoryBytes: 32 * 1024 * 1024 },
    log: { level: 'info' },
    ...over,
  };
}

export async function rigNode(db: Db, config: Config, log: Logger = silentLogger): Promise<RigNode> {
  const stateSchema = config.database.stateSchema;
  await ensureStateSchema(db, stateSchema);
  const applier = new RecordingApplier();
  const reader = new JournalReader(db, stateSchema, trimChangeSet);
  const core = new ExchangeCore({ db, stateSchema, node: config.node.id, applier, reader, log, children: config.children.map((c) => c.id) });
  return { id: config.node.id, stateSchema, applier, core, config };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** One raw HTTP request; `body` as an array is sent chunked (no Content-Length). */
export async function raw(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | Buffer[] } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunked = Array.isArray(opts.body);
    const req = request(url, {
      method: opts.method ?? 'POST',
      headers: {
        ...(opts.body !== undefined && !chunked ? { 'content-length': String((opts.body as Buffer).length) } : {}),
        ...opts.headers,
      },
      agent: false,
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', (e) => {
      // the server may answer and close before the whole body went out
      reject(e);
    });
    if (Array.isArray(opts.body)) {
      const parts = opts.body;
      const write = (i: number): void => {
        if (i >= parts.length || req.destroyed) { req.end(); return; }
        if (req.write(parts[i]!)) write(i + 1);
        else req.once('drain', () => write(i + 1));
      };
      write(0);
    } else {
      req.end(opts.body);
    }
  });
}
