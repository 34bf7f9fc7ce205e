// Recovery after a node was restored from a backup. The restored node has a new
// incarnation (routing/restore.ts) and says so in every batch (`inc`); each batch
// also names the receiver's incarnation its ack refers to (`rinc`). A peer that
// sees a new incarnation knows the node lost what it had after the backup: it
// rewinds its cursor to what the node now acknowledges (so everything sent since
// goes again), and sends back the node's own change sets it had taken from it.
// The restored node ignores acks of its earlier incarnation (its journal seqs
// after the backup were lost and are given again), and takes back its own change
// sets stamped between the backup's clock and the restore. A node's incarnation
// changes only when its own capture finds the restore: a peer cannot claim it,
// and a child that presents a new incarnation only has its own route sent again.
import type { BatchEntry, BatchHeader } from '../../apply/core/model.js';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { checkChangeId } from '../../apply/replay/validate.js';
import type { Logger } from '../../apply/core/log.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { seqOf, type PeerCursor } from '../routing/cursors.js';
import { incarnation, lostInRestore, readRestore } from '../routing/restore.js';
import type { Resend } from '../journal/reader.js';

export interface RecoveryOptions {
  readonly db: Queryable;
  readonly stateSchema: string;
  readonly node: string;
  readonly log: Logger;
  readonly now?: () => number;
}

/** A batch as take() goes on with it. */
export interface Incoming {
  /** the batch's ack refers to an earlier incarnation of this node: it moves nothing and is not refused */
  readonly ackVoid: boolean;
  /** the peer has a new incarnation: it was restored from a backup */
  readonly peerRestored: boolean;
  /** the entries to apply */
  readonly entries: BatchEntry[];
  /** ids of this node's own change sets among them, lost in its restore and now back */
  readonly ownBack: ReadonlySet<string>;
  /** entries left out as duplicates here */
  readonly dropped: number;
}

const sqlTime = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

/** The journal rows that go back to a restored peer, for the reader. */
export function resendOf(cursor: PeerCursor): Resend | undefined {
  return cursor.restore ? { from: cursor.restore.resendFrom, hlc: cursor.restore.hlc } : undefined;
}

export class Recovery {
  private readonly now: () => number;
  constructor(private readonly o: RecoveryOptions) {
    this.now = o.now ?? Date.now;
  }

  /** This node's incarnation. */
  incarnation(): Promise<string> {
    return incarnation(this.o.db, this.o.stateSchema);
  }

  /**
   * Sorts a batch out before it applies: whether its ack is of an earlier
   * incarnation of this node, whether its sender was restored; this node's own
   * change sets are left out when they are here already, kept when this node
   * lost them in a restore, and refused otherwise (SPOKESYNC_E_ORIGIN); a
   * restored peer's change sets that it had sent before are duplicates,
   * whatever their content now (it applied them again since).
   */
  async sort(peer: string, header: BatchHeader, cursor: PeerCursor, entries: readonly BatchEntry[]): Promise<Incoming> {
    const mine = header.rinc === undefined ? null : await this.incarnation();
    const ackVoid = mine !== null && header.rinc !== mine;
    const peerRestored = header.inc !== undefined && cursor.incarnation !== null && header.inc !== cursor.incarnation;
    const { here: drop, back: ownBack } = await this.vetOwn(peer, entries);
    const since = peerRestored ? sqlTime(this.now()) : cursor.restore?.at;
    if (since !== undefined) {
      for (const id of await this.takenBefore(peer, entries.filter((e) => e.cs.origin !== this.o.node).map((e) => e.cs.id), since)) drop.add(id);
    }
    const kept = entries.filter((e) => !drop.has(e.cs.id));
    return { ackVoid, peerRestored, entries: kept, ownBack, dropped: entries.length - kept.length };
  }

  /**
   * This node's own change sets among `entries`: after a restore, those here
   * already, and those lost in the restore (they may apply); any other is
   * refused (SPOKESYNC_E_ORIGIN), and every one on a node never restored.
   */
  async vetOwn(peer: string, entries: readonly BatchEntry[]): Promise<{ here: Set<string>; back: Set<string> }> {
    const back = new Set<string>();
    const own = entries.filter((e) => e.cs.origin === this.o.node);
    if (own.length === 0) return { here: new Set(), back };
    const rec = await readRestore(this.o.db, this.o.stateSchema);
    // a node never restored takes its own origin from no one, known or not
    const here = rec === null ? new Set<string>() : await this.known(own.map((e) => e.cs.id), 'journal');
    if (rec !== null) for (const id of await this.known(own.map((e) => e.cs.id), 'ledger')) here.add(id);
    for (const e of own) {
      checkChangeId(e.cs);
      if (here.has(e.cs.id)) continue;
      if (!lostInRestore(rec, e.cs.hlc)) {
        throw new SpokesyncError('SPOKESYNC_E_ORIGIN',
          `'${peer}' sent a change set of origin ${JSON.stringify(e.cs.origin)}, which is this node: no peer speaks for it (and it is not one this node ` +
          'lost in a restore from a backup); nothing of the batch was applied');
      }
      back.add(e.cs.id);
    }
    return { here, back };
  }

  /** Which of `ids` the table (journal or ledger) holds. */
  private async known(ids: readonly string[], table: 'journal' | 'ledger'): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      const rows = await this.o.db.query<{ id: string }>(
        `SELECT change_id AS id FROM ${stateTable(this.o.stateSchema, table)} WHERE change_id IN (${part.map(() => '?').join(', ')})`, part);
      for (const r of rows) out.add(r.id);
    }
    return out;
  }

  /** Which of `ids` were applied here from `peer` before `since`. */
  private async takenBefore(peer: string, ids: readonly string[], since: string): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      const rows = await this.o.db.query<{ id: string }>(
        `SELECT change_id AS id FROM ${stateTable(this.o.stateSchema, 'ledger')}
          WHERE change_id IN (${part.map(() => '?').join(', ')}) AND from_peer = ? AND applied_at < ?`, [...part, peer, since]);
      for (const r of rows) out.push(r.id);
    }
    return out;
  }

  /**
   * Notes the peer's incarnation; when it is a new one, the peer was restored:
   * its cursor goes back to what it acknowledges now (everything sent since goes
   * again), what we took from it is forgotten (its seqs are given again), and its
   * own change sets that we took go back to it.
   */
  async noteIncarnation(peer: string, header: BatchHeader, cursor: PeerCursor, incoming: Incoming): Promise<void> {
    if (header.inc === undefined || header.inc === cursor.incarnation) return;
    const peers = stateTable(this.o.stateSchema, 'peers');
    if (!incoming.peerRestored) {
      await this.o.db.exec(`INSERT INTO ${peers} (peer, incarnation) VALUES (?, ?) ON DUPLICATE KEY UPDATE incarnation = VALUES(incarnation)`, [peer, header.inc]);
      return;
    }
    const ack = incoming.ackVoid ? cursor.ackedSeq : seqOf(header.ack);
    const to = BigInt(ack) < BigInt(cursor.ackedSeq) ? ack : cursor.ackedSeq;
    const [m] = await this.o.db.query<{ h: string | number | null }>(
      `SELECT MAX(hlc) AS h FROM ${stateTable(this.o.stateSchema, 'ledger')} WHERE origin = ?`, [peer]);
    const hlc = String(m?.h ?? 0);
    await this.o.db.exec(
      `UPDATE ${peers} SET incarnation = ?, restored_at = ?, rewound_from = acked_seq, acked_seq = ?, received_seq = 0,
              resend_from = ?, resend_hlc = ? WHERE peer = ?`,
      [header.inc, sqlTime(this.now()), to, to, hlc, peer]);
    const [back] = await this.o.db.query<{ n: string | number }>(
      `SELECT COUNT(*) AS n FROM ${stateTable(this.o.stateSchema, 'journal')} WHERE seq > ? AND from_peer = ? AND origin = ? AND hlc <= ?`,
      [to, peer, peer, hlc]);
    this.o.log.warn('peer restored from a backup: what it had after the backup is sent to it again', {
      peer, rewoundFrom: cursor.ackedSeq, rewoundTo: to, ownChangeSetsBack: Number(back?.n ?? 0),
    });
  }
}
