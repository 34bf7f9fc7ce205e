// What `spokesync status` reports: capture position against the binlog end,
// the journal, each peer's cursors and pending count, conflicts, quarantine.
// Read-only; works whether or not the daemon is running.
import { listDiscards, quarantineSummary, type DiscardEntry, type QuarantineSummary } from '../../apply/replay/quarantine.js';
import { heldSummary, type HeldGroup } from '../../apply/replay/held.js';
import { binlogEnd } from '../capture/binlog-server.js';
import { binlogBehind, type NeededEvents } from '../capture/binlog-lag.js';
import { filterTables } from '../config/tables.js';
import { isoOf, whenText } from '../admin/time.js';
import type { Config } from '../config/types.js';
import type { Queryable } from '../../apply/core/db.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { PARENT_ID_KEY, getCursor, getMeta, type PeerRestore } from './cursors.js';
import { readRestore, type RestoreRecord } from './restore.js';
import { resendOf } from '../exchange/recovery.js';
import { routeTo, type PeerRole } from './filters.js';
import type { JournalReader } from '../journal/reader.js';
import { nodeLockName } from '../node-lock.js';
import { listLosses, type LossEntry } from '../provision/rails.js';
import { hostname } from 'node:os';

/** meta key a process that lost the node lock writes while it cannot take it again */
export const LOCK_LOST_KEY = 'lock.lost';

/** What a process that lost the node lock leaves for status. */
export interface LockLost {
  readonly since: string;
  readonly pid: number;
  readonly host: string;
}

export function lockLostNote(since: Date): string {
  return JSON.stringify({ since: since.toISOString(), pid: process.pid, host: hostname() } satisfies LockLost);
}

function readLockLost(v: string | null): LockLost | null {
  if (v === null) return null;
  try {
    return JSON.parse(v) as LockLost;
  } catch {
    return { since: '?', pid: 0, host: '?' };
  }
}

export interface PeerStatus {
  readonly peer: string;
  readonly role: PeerRole;
  /** our journal rows still to go to this peer */
  readonly pending: number;
  readonly ackedSeq: string;
  readonly receivedSeq: string;
  /** the last exchange attempt (ISO 8601, UTC) and how it ended */
  readonly lastContact: string | null;
  readonly lastResult: string | null;
  /** the last exchange that ended well (ISO 8601, UTC) */
  readonly lastSuccess: string | null;
  /** the peer was restored from a backup: when this node saw it, how its cursor was rewound */
  readonly restore: PeerRestore | null;
  /** a child with row filters: the ops they kept from it so far (pending then counts what may go); null otherwise */
  readonly rowsFiltered: number | null;
}

export interface NodeStatus {
  readonly node: string;
  readonly capture: {
    readonly file: string | null;
    readonly pos: number | null;
    readonly binlogEnd: { readonly file: string; readonly pos: number };
    /**
     * binlog bytes from the checkpoint to the end of the last transaction capture
     * still has to journal (0 when caught up: spokesync's own state writes and
     * other schemas after the checkpoint do not count); null when the
     * checkpoint's file is gone
     */
    readonly behindBytes: number | null;
    /** false when the binlog's events could not be read: behindBytes is then the raw distance to its end */
    readonly behindExact: boolean;
    /** seconds since the checkpoint last moved */
    readonly checkpointAgeSeconds: number | null;
    /** another spokesync process (the daemon) holds this node */
    readonly daemon: boolean;
    /** a process (the daemon) lost the node lock and has not taken it again: it captures and applies nothing meanwhile */
    readonly lockLost: LockLost | null;
  };
  readonly journal: { readonly lastSeq: string; readonly rows: number };
  readonly peers: readonly PeerStatus[];
  readonly conflicts: number;
  readonly quarantine: QuarantineSummary;
  /** quarantined change sets given up here (node = this node) or at a child that reported it, newest first */
  readonly discards: { readonly count: number; readonly entries: readonly DiscardEntry[] };
  /** change sets held because a table differs here from the peer's, per peer and table */
  readonly held: readonly HeldGroup[];
  /** losses forced by an operator (snapshot --force, clone --discard-local), newest first */
  readonly losses: { readonly count: number; readonly entries: readonly LossEntry[] };
  /** this node's last restore from a backup, with its own change sets that came back from peers since */
  readonly restore: (RestoreRecord & { readonly ownBack: number }) | null;
}

export async function nodeStatus(db: Queryable, config: Config, reader: JournalReader): Promise<NodeStatus> {
  const ss = config.database.stateSchema;
  const [cp] = await db.query<{ binlog_file: string; binlog_pos: string | number; age: string | number | null }>(
    `SELECT binlog_file, binlog_pos, TIMESTAMPDIFF(SECOND, updated_at, UTC_TIMESTAMP(6)) AS age
       FROM ${stateTable(ss, 'checkpoint')} WHERE id = 1`,
  );
  const end = (await binlogEnd(db)).position;
  const [lock] = await db.query<{ who: unknown }>('SELECT IS_USED_LOCK(?) AS who', [nodeLockName(ss)]);
  const [j] = await db.query<{ last: string | number | null; n: string | number }>(
    `SELECT MAX(seq) AS last, COUNT(*) AS n FROM ${stateTable(ss, 'journal')}`,
  );
  const [c] = await db.query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM ${stateTable(ss, 'conflicts')}`);

  const peers: { id: string; role: PeerRole }[] = config.children.map((ch) => ({ id: ch.id, role: 'child' as const }));
  if (config.parent) {
    const parent = await getMeta(db, ss, PARENT_ID_KEY);
    if (parent) peers.unshift({ id: parent, role: 'parent' });
  }
  const peerStatus: PeerStatus[] = [];
  const filtered = new Map((await db.query<{ peer: string; n: string | number }>(
    `SELECT peer, rows_filtered AS n FROM ${stateTable(ss, 'peers')}`)).map((r) => [r.peer, Number(r.n)]));
  for (const p of peers) {
    const cur = await getCursor(db, ss, p.id);
    const rows = p.role === 'child' && config.children.some((c) => c.id === p.id && c.rows !== undefined);
    peerStatus.push({
      peer: p.id,
      role: p.role,
      pending: await reader.count(routeTo(config, p.id, p.role), cur.ackedSeq, { resend: resendOf(cur) }),
      ackedSeq: cur.ackedSeq,
      receivedSeq: cur.receivedSeq,
      lastContact: isoOf(cur.lastContact),
      lastResult: cur.lastResult,
      lastSuccess: isoOf(cur.lastSuccess),
      restore: cur.restore,
      rowsFiltered: rows ? filtered.get(p.id) ?? 0 : null,
    });
  }
  const file = cp?.binlog_file ?? null;
  const pos = cp ? Number(cp.binlog_pos) : null;
  const behind = file !== null && pos !== null ? await binlogBehind(db, { file, pos }, neededEvents(config)) : null;
  return {
    node: config.node.id,
    capture: {
      file,
      pos,
      binlogEnd: end,
      behindBytes: behind?.bytes ?? null,
      behindExact: behind?.exact ?? false,
      checkpointAgeSeconds: cp?.age === null || cp?.age === undefined ? null : Number(cp.age),
      daemon: lock?.who !== null && lock?.who !== undefined,
      lockLost: readLockLost(await getMeta(db, ss, LOCK_LOST_KEY)),
    },
    journal: { lastSeq: String(j?.last ?? 0), rows: Number(j?.n ?? 0) },
    peers: peerStatus,
    conflicts: Number(c?.n ?? 0),
    quarantine: await quarantineSummary(db, ss),
    discards: await listDiscards(db, ss, 10),
    held: await heldSummary(db, ss),
    losses: await listLosses(db, ss, 10),
    restore: await restoreStatus(db, ss, config.node.id),
  };
}

/** The last restore, and how many of this node's own change sets peers sent back since (they are in the ledger). */
async function restoreStatus(db: Queryable, ss: string, node: string): Promise<NodeStatus['restore']> {
  const rec = await readRestore(db, ss);
  if (!rec) return null;
  const [r] = await db.query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM ${stateTable(ss, 'ledger')} WHERE origin = ?`, [node]);
  return { ...rec, ownBack: Number(r?.n ?? 0) };
}

/** What capture of this node has to journal (binlog-lag.ts). */
export function neededEvents(config: Config): NeededEvents {
  const { schema, stateSchema } = config.database;
  return { schema, stateSchema, syncs: (t) => filterTables([t], config.tables).length > 0 };
}

/** The human form of a status. */
export function formatStatus(s: NodeStatus): string {
  const cap = s.capture;
  const lines = [
    `node        ${s.node}${cap.daemon ? ' (daemon running)' : ''}`,
    `capture     ${cap.file === null ? 'not started' : `${cap.file}:${String(cap.pos)}`}` +
      ` of ${cap.binlogEnd.file}:${cap.binlogEnd.pos}` +
      (cap.behindBytes === null ? ', its binlog file is gone' : cap.behindBytes === 0 ? ', caught up'
        : `, ${cap.behindBytes} bytes behind${cap.behindExact ? '' : ' (at most: the binlog events could not be read)'}`) +
      (cap.checkpointAgeSeconds === null ? '' : `, checkpoint ${cap.checkpointAgeSeconds} s old`),
    `journal     ${s.journal.rows} change sets (last seq ${s.journal.lastSeq})`,
    `conflicts   ${s.conflicts}`,
    `quarantine  ${s.quarantine.count}${s.quarantine.oldest ? ` (oldest ${s.quarantine.oldest})` : ''}`,
    `discarded   ${s.discards.count}`,
    `lost        ${s.losses.count === 0 ? 0 : `${s.losses.count} forced (latest below)`}`,
  ];
  if (cap.lockLost) {
    lines.splice(1, 0, `node lock   LOST since ${cap.lockLost.since} by pid ${cap.lockLost.pid} on ${cap.lockLost.host}: it captures and applies ` +
      'nothing until it takes the lock again (SPOKESYNC_E_BUSY)');
  }
  if (s.peers.length === 0) lines.push('peers       none yet');
  else {
    lines.push('', 'peer                 role    pending  acked      received');
    for (const p of s.peers) {
      lines.push(`${p.peer.padEnd(20)} ${p.role.padEnd(7)} ${String(p.pending).padEnd(8)} ${p.ackedSeq.padEnd(10)} ${p.receivedSeq}`);
      lines.push(`  last success  ${whenText(p.lastSuccess)}`);
      if (p.rowsFiltered !== null) lines.push(`  row filters   ${p.rowsFiltered} ops kept from it (pending counts what may go)`);
      const failed = p.lastResult !== null && p.lastResult !== 'ok';
      lines.push(`  last attempt  ${whenText(p.lastContact)}${p.lastResult === null ? '' : failed ? `: FAILED ${p.lastResult}` : ': ok'}`);
    }
  }
  for (const q of s.quarantine.entries) lines.push(`  quarantined ${q.changeId} from ${q.fromPeer}: ${q.reason}`);
  for (const d of s.discards.entries) {
    const where = d.node === s.node ? (d.reportedAt ? 'here, reported to the parent' : 'here, not yet reported to the parent') : `at ${d.node}`;
    lines.push(`  discarded ${d.changeId} (${d.tables.join(', ')}) ${where}: ${d.discardedAt} by ${d.discardedBy}: ${d.why}`);
  }
  for (const h of s.held) lines.push(`  ${h.message}`);
  const r = s.restore;
  if (r) {
    lines.push(`  restored from a backup: found ${r.at} (${r.reason}); the backup's capture checkpoint was written ${r.from.savedAt ?? '(unknown)'}, ` +
      `journal seq ${r.journalTop}; capture started at ${r.to.file}:${r.to.pos}; ${r.ownBack} own change sets came back from peers`);
  }
  for (const p of s.peers) {
    if (p.restore) {
      lines.push(`  ${p.peer} was restored from a backup (seen ${p.restore.at}): its cursor went back from ${p.restore.rewoundFrom} to ` +
        `${p.restore.resendFrom}, and its own change sets since go back to it`);
    }
  }
  for (const l of s.losses.entries.slice(0, 3)) {
    lines.push(`  LOST ${l.changeSets} change set${l.changeSets === 1 ? '' : 's'} (${l.peer}) at ${l.at} by ${l.by}, forced by ${l.command}: ${l.detail}`);
  }
  return lines.join('\n');
}
