// What `spokesync status` reports: capture position against the binlog end,
// the journal, each peer's cursors and pending count, conflicts, quarantine.
// Read-only; works whether or not the daemon is running.
import { listDiscards, quarantineSummary, type DiscardEntry, type QuarantineSummary } from '../../apply/replay/quarantine.js';
import { heldSummary, type HeldGroup } from '../../apply/replay/held.js';
import { binlogEnd } from '../capture/binlog-server.js';
import type { Config } from '../config/types.js';
import type { Queryable } from '../../apply/core/db.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { PARENT_ID_KEY, getCursor, getMeta, type PeerRestore } from './cursors.js';
import { readRestore, type RestoreRecord } from './restore.js';
import { resendOf } from '../exchange/recovery.js';
import { routeTo, type PeerRole } from './filters.js';
import type { JournalReader } from '../journal/reader.js';

export interface PeerStatus {
  readonly peer: string;
  readonly role: PeerRole;
  /** our journal rows still to go to this peer */
  readonly pending: number;
  readonly ackedSeq: string;
  readonly receivedSeq: string;
  readonly lastContact: string | null;
  readonly lastResult: string | null;
  /** the peer was restored from a backup: when this node saw it, how its cursor was rewound */
  readonly restore: PeerRestore | null;
}

export interface NodeStatus {
  readonly node: string;
  readonly capture: {
    readonly file: string | null;
    readonly pos: number | null;
    readonly binlogEnd: { readonly file: string; readonly pos: number };
    /**
     * binlog bytes after the checkpoint, when in the same file (when spokesync's
     * own state writes are binlogged, i.e. without BINLOG ADMIN, they follow the
     * checkpoint, so a few KiB is caught up)
     */
    readonly behindBytes: number | null;
    /** seconds since the checkpoint last moved */
    readonly checkpointAgeSeconds: number | null;
    /** another spokesync process (the daemon) holds this node */
    readonly daemon: boolean;
  };
  readonly journal: { readonly lastSeq: string; readonly rows: number };
  readonly peers: readonly PeerStatus[];
  readonly conflicts: number;
  readonly quarantine: QuarantineSummary;
  /** quarantined change sets given up here (node = this node) or at a child that reported it, newest first */
  readonly discards: { readonly count: number; readonly entries: readonly DiscardEntry[] };
  /** change sets held because a table differs here from the peer's, per peer and table */
  readonly held: readonly HeldGroup[];
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
  const [lock] = await db.query<{ who: unknown }>('SELECT IS_USED_LOCK(?) AS who', [`spokesync:${ss}`]);
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
  for (const p of peers) {
    const cur = await getCursor(db, ss, p.id);
    peerStatus.push({
      peer: p.id,
      role: p.role,
      pending: await reader.count(routeTo(config, p.id, p.role), cur.ackedSeq, resendOf(cur)),
      ackedSeq: cur.ackedSeq,
      receivedSeq: cur.receivedSeq,
      lastContact: cur.lastContact,
      lastResult: cur.lastResult,
      restore: cur.restore,
    });
  }
  const file = cp?.binlog_file ?? null;
  const pos = cp ? Number(cp.binlog_pos) : null;
  return {
    node: config.node.id,
    capture: {
      file,
      pos,
      binlogEnd: end,
      behindBytes: file === end.file && pos !== null ? Math.max(0, end.pos - pos) : null,
      checkpointAgeSeconds: cp?.age === null || cp?.age === undefined ? null : Number(cp.age),
      daemon: lock?.who !== null && lock?.who !== undefined,
    },
    journal: { lastSeq: String(j?.last ?? 0), rows: Number(j?.n ?? 0) },
    peers: peerStatus,
    conflicts: Number(c?.n ?? 0),
    quarantine: await quarantineSummary(db, ss),
    discards: await listDiscards(db, ss, 10),
    held: await heldSummary(db, ss),
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

/** The human form of a status. */
export function formatStatus(s: NodeStatus): string {
  const cap = s.capture;
  const lines = [
    `node        ${s.node}${cap.daemon ? ' (daemon running)' : ''}`,
    `capture     ${cap.file === null ? 'not started' : `${cap.file}:${String(cap.pos)}`}` +
      ` of ${cap.binlogEnd.file}:${cap.binlogEnd.pos}` +
      (cap.behindBytes !== null ? `, ${cap.behindBytes} bytes behind` : ', in an older binlog file') +
      (cap.checkpointAgeSeconds === null ? '' : `, checkpoint ${cap.checkpointAgeSeconds} s old`),
    `journal     ${s.journal.rows} change sets (last seq ${s.journal.lastSeq})`,
    `conflicts   ${s.conflicts}`,
    `quarantine  ${s.quarantine.count}${s.quarantine.oldest ? ` (oldest ${s.quarantine.oldest})` : ''}`,
    `discarded   ${s.discards.count}`,
  ];
  if (s.peers.length === 0) lines.push('peers       none yet');
  else {
    lines.push('', 'peer                 role    pending  acked      received   last contact                result');
    for (const p of s.peers) {
      lines.push(
        `${p.peer.padEnd(20)} ${p.role.padEnd(7)} ${String(p.pending).padEnd(8)} ${p.ackedSeq.padEnd(10)} ` +
        `${p.receivedSeq.padEnd(10)} ${(p.lastContact ?? 'never').padEnd(27)} ${p.lastResult ?? ''}`,
      );
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
  return lines.join('\n');
}
