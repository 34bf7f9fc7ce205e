// The exchange between two peers, whatever carries it (HTTP or a USB file):
// take a batch from a peer (apply it, move our cursors), and build the next
// batch toward a peer (our acks plus what is pending for it). Both sides run the
// same code; the ledger and monotonic cursors make every step safe to repeat.
import type { BatchEntry, BatchHeader } from '../../apply/core/model.js';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { advanceCursor, getCursor, markSent, maxSeq, nextBatchSeq, recordContact, seqOf, type PeerCursor } from '../routing/cursors.js';
import type { Route } from '../routing/filters.js';
import type { Caps, JournalReader, Outgoing } from '../journal/reader.js';
import { Origins } from './origins.js';
import { Recovery, resendOf } from './recovery.js';
import { tablesOfBody, type TableShape } from '../../apply/codec/shape.js';

export const EXCHANGE_PATH = '/v1/exchange';
export const PEER_PATH = '/v1/peer';
export const HEALTH_PATH = '/v1/health';
/** request headers carrying the child's batch caps, so the parent's answers fit the same link */
export const CAP_RECORDS_HEADER = 'x-spokesync-batch-records';
export const CAP_BYTES_HEADER = 'x-spokesync-batch-bytes';
/** a request or answer header: the sender reads table shapes (<s>) in batches, so they may be sent to it */
export const SHAPES_HEADER = 'x-spokesync-shapes';
/** an answer header: the parent reads incarnations (`inc`, `rinc`) in batches (recovery.ts) */
export const INCARNATION_HEADER = 'x-spokesync-incarnation';
/** an answer header of GET /v1/peer: the parent keeps its children's status reports, so they may be sent to it */
export const REPORTS_HEADER = 'x-spokesync-reports';
/** a request header: the child's status report and its subtree's (agent/admin/report-wire.ts), with its last batch of an exchange */
export const REPORT_HEADER = 'x-spokesync-report';
/** a request header: the node id the child says it is, so that a parent can name a child whose token it refused */
export const NODE_HEADER = 'x-spokesync-node';

/** One exchange round with a peer, as either side records it (agent/admin/history.ts). Up is toward the parent. */
export interface RoundRecord {
  readonly peer: string;
  readonly role: 'parent' | 'child';
  readonly startedAt: Date;
  readonly durationMs: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly setsUp: number;
  readonly setsDown: number;
  /** 'ok', or `CODE: message` */
  readonly result: string;
}

/** The caps a request without cap headers asks for (the config defaults of releases before 1 MiB batches): wire protocol, not a config default. */
export const DEFAULT_CAPS: Caps = { records: 200, bytes: 64 * 1024 };

/** What apply/replay/applier.ts does for a batch: the part of it the exchange needs. */
export interface BatchApplier {
  /** `ownBack`: ids of this node's own change sets that apply (lost in a restore from a backup, sent back by a peer) */
  applyBatch(fromPeer: string, entries: readonly BatchEntry[], shapes?: readonly TableShape[], opts?: { ownBack?: ReadonlySet<string> }): Promise<ApplyCounts>;
}

export interface ApplyCounts {
  readonly applied: number;
  readonly duplicates: number;
  readonly quarantined: number;
  readonly conflicts: number;
  /** held because a table differs (apply/replay/held.ts) */
  readonly held?: number;
}

export interface TakeResult extends ApplyCounts {
  /** entries in the batch */
  readonly received: number;
  /** entries at or below our received cursor (taken before; the ledger keeps them from applying twice) */
  readonly replayed: number;
}

export interface OutgoingBatch {
  readonly header: BatchHeader;
  readonly entries: Outgoing[];
  /** the shapes of the tables the entries write (only toward a peer that reads them) */
  readonly shapes?: TableShape[];
}

/** Runs tasks with the same key one at a time (one peer's batches never interleave). */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

export interface ExchangeCoreOptions {
  readonly db: Queryable;
  readonly stateSchema: string;
  /** this node's id */
  readonly node: string;
  readonly applier: BatchApplier;
  readonly reader: JournalReader;
  readonly log: Logger;
  /** one-way tables that may not come from `peer` (routing/filters.ts refusedFrom); none when absent */
  readonly refused?: (peer: string) => (table: string) => 'up' | 'down' | null;
  /** the configured children's ids: each stands for itself (origins.ts); none when absent */
  readonly children?: readonly string[];
  /** this node's shapes of the named tables (every synced table when null); none sent when absent */
  readonly shapes?: (tables: ReadonlySet<string> | null) => TableShape[];
  /** rejects when this process may not take batches now (the node lock is lost): nothing is applied, no cursor moves */
  readonly gate?: () => Promise<void>;
}

function checkOrder(entries: readonly BatchEntry[]): void {
  let prev = -1n;
  for (const e of entries) {
    const s = /^[0-9]{1,20}$/.test(e.seq) ? BigInt(e.seq) : -1n;
    if (s <= prev) throw new SpokesyncError('SPOKESYNC_E_XML', 'batch entries are not in increasing seq order');
    prev = s;
  }
}

/** An ack must be of something we sent the peer (or that its provisioning gave it): the refusal when it is not. */
function ackOutOfRange(peer: string, ack: string, cursor: PeerCursor): SpokesyncError | null {
  const given = seqOf(ack);
  const top = maxSeq(cursor.sentSeq, cursor.ackedSeq);
  if (BigInt(given) <= BigInt(top) && (given !== '0' || /^0+$/.test(ack))) return null;
  return new SpokesyncError('SPOKESYNC_E_ACK',
    `'${peer}' acknowledges our journal up to ${given === '0' ? JSON.stringify(ack.slice(0, 24)) : given}, but at most ${top} was sent to it; no cursor moved`);
}

export class ExchangeCore {
  readonly node: string;
  private readonly mutex = new KeyedMutex();
  private readonly origins: Origins;
  private readonly recovery: Recovery;
  private readonly children: ReadonlySet<string>;
  constructor(private readonly o: ExchangeCoreOptions) {
    this.node = o.node;
    this.children = new Set(o.children ?? []);
    this.origins = new Origins({ db: o.db, stateSchema: o.stateSchema, node: o.node, children: o.children ?? [] });
    this.recovery = new Recovery({ db: o.db, stateSchema: o.stateSchema, node: o.node, log: o.log });
  }

  /** Checks, registering nothing, that `peer` may send these change sets (a USB file is checked whole first). */
  async checkOrigins(peer: string, entries: readonly BatchEntry[]): Promise<void> {
    await this.recovery.vetOwn(peer, entries);
    await this.origins.check(peer, entries.filter((e) => e.cs.origin !== this.node));
  }

  /**
   * Takes a batch from `peer`: the header must name it as sender and us as
   * receiver, its ack must be of entries we sent, its change sets of origins
   * the peer stands for; then they are applied (all or nothing per change set,
   * ledger first: one applied before is a duplicate), then our cursors move.
   */
  async take(peer: string, header: BatchHeader, entries: readonly BatchEntry[], shapes: readonly TableShape[] = []): Promise<TakeResult> {
    await this.o.gate?.();
    if (header.from !== peer) {
      throw new SpokesyncError('SPOKESYNC_E_PEER', `the batch claims sender '${header.from}', but it came from '${peer}'`);
    }
    if (header.to !== this.node) {
      throw new SpokesyncError('SPOKESYNC_E_PEER', `the batch is for '${header.to}', this node is '${this.node}'`);
    }
    checkOrder(entries);
    const refused = this.o.refused?.(peer);
    if (refused) {
      for (const e of entries) {
        for (const op of e.cs.ops) {
          const dir = refused(op.table);
          if (dir) {
            throw new SpokesyncError('SPOKESYNC_E_UNKNOWN_TABLE',
              `a change set from '${peer}' writes table ${JSON.stringify(op.table)}, which flows only ${dir === 'up' ? 'up (child to parent)' : 'down (parent to child)'} here; ` +
              'the two nodes disagree on tables.direction', { fix: 'Give both nodes the same tables.direction for this table; nothing was applied, and the sender keeps the change.' });
          }
        }
      }
    }
    return this.mutex.run(peer, async () => {
      const { db, stateSchema } = this.o;
      const cursor = await getCursor(db, stateSchema, peer);
      const incoming = await this.recovery.sort(peer, header, cursor, entries);
      // an ack of this node's journal before it was restored means nothing now: it moves nothing and is not refused
      const badAck = incoming.ackVoid ? null : ackOutOfRange(peer, header.ack, cursor);
      // the parent's answer is still taken, without its ack: refusing it would cut an idle child off from its parent
      if (badAck && this.children.has(peer)) throw badAck;
      if (badAck) this.o.log.warn('ack refused', { peer, code: badAck.code, error: badAck.message });
      if (incoming.ackVoid) this.o.log.info('ack of this node before its restore from a backup ignored', { peer, ack: seqOf(header.ack) });
      await this.origins.admit(peer, incoming.entries.filter((e) => !incoming.ownBack.has(e.cs.id)));
      await this.recovery.noteIncarnation(peer, header, cursor, incoming);
      const restarted = incoming.peerRestored ? '0' : cursor.receivedSeq;
      // entries at or below the received cursor go to the ledger check too: a forged high seq cannot hide later ones
      const replayed = incoming.entries.filter((e) => BigInt(e.seq) <= BigInt(restarted)).length;
      const counts: ApplyCounts = incoming.entries.length > 0
        ? await this.o.applier.applyBatch(peer, incoming.entries, shapes, { ownBack: incoming.ownBack })
        : { applied: 0, duplicates: 0, quarantined: 0, conflicts: 0 };
      if (incoming.ownBack.size > 0) this.o.log.info('own change sets back from a peer after the restore from a backup', { peer, count: incoming.ownBack.size });
      const top = entries.reduce((m, e) => maxSeq(m, e.seq), '0');
      await advanceCursor(db, stateSchema, peer, {
        ...(badAck || incoming.ackVoid ? {} : { acked: header.ack }), ...(entries.length > 0 ? { received: top } : {}),
      });
      const result: TakeResult = {
        applied: counts.applied,
        // replayed entries are ledger duplicates as a rule: counted once, as replayed
        duplicates: Math.max(0, counts.duplicates - replayed) + incoming.dropped,
        quarantined: counts.quarantined,
        conflicts: counts.conflicts,
        received: entries.length,
        replayed,
      };
      this.o.log.debug('batch taken', { peer, ...result });
      return result;
    });
  }

  /**
   * The header of our next batch toward `route.peer`, with our current ack;
   * with our incarnation and the one the ack refers to toward a peer that sent
   * us its own (so it reads them), or when `incarnations` says it reads them.
   */
  private async header(peer: string, more: boolean, incarnations = false): Promise<BatchHeader> {
    const { db, stateSchema } = this.o;
    const cursor = await getCursor(db, stateSchema, peer);
    const seq = await nextBatchSeq(db, stateSchema, peer);
    const inc = incarnations || cursor.incarnation !== null
      ? { inc: await this.recovery.incarnation(), ...(cursor.incarnation === null ? {} : { rinc: cursor.incarnation }) }
      : {};
    return { version: 1, from: this.node, to: peer, seq, ack: cursor.receivedSeq, more, ...inc };
  }

  /** Our next batch toward `route.peer`: acks plus pending entries within the caps (`incarnations`: the peer reads them). */
  async next(route: Route, caps: Caps, withShapes = false, incarnations = false): Promise<OutgoingBatch> {
    const { db, stateSchema, reader } = this.o;
    const cursor = await getCursor(db, stateSchema, route.peer);
    const batch = await reader.read(route, cursor.ackedSeq, caps, resendOf(cursor));
    const sent = batch.entries.reduce((m, e) => maxSeq(m, e.seq), '0');
    if (sent !== '0') await markSent(db, stateSchema, route.peer, sent);
    if (BigInt(batch.skipTo) > BigInt(cursor.ackedSeq)) {
      await advanceCursor(db, stateSchema, route.peer, { acked: batch.skipTo });
    }
    return {
      header: await this.header(route.peer, batch.more, incarnations), entries: batch.entries, shapes: withShapes ? this.shapesOf(batch.entries) : [],
    };
  }

  /** Our shapes of the tables these entries write (read from the bodies' text). */
  shapesOf(entries: readonly Outgoing[]): TableShape[] {
    if (!this.o.shapes || entries.length === 0) return [];
    const tables = new Set<string>();
    for (const e of entries) tablesOfBody(e.body, tables);
    return this.o.shapes(tables);
  }

  /** Our shapes of every synced table (a USB file: its entries stream, and its size matters little). */
  allShapes(): TableShape[] {
    return this.o.shapes?.(null) ?? [];
  }

  /** Everything pending toward `route.peer`, streamed (USB files): the header and the entries. */
  async all(route: Route): Promise<{ header: BatchHeader; entries: AsyncGenerator<Outgoing> }> {
    const cursor = await getCursor(this.o.db, this.o.stateSchema, route.peer);
    return {
      header: await this.header(route.peer, false), entries: this.tracked(route.peer, this.o.reader.stream(route, cursor.ackedSeq, resendOf(cursor))),
    };
  }

  /** The entries as they go, noting the highest one sent when they end. */
  private async *tracked(peer: string, entries: AsyncGenerator<Outgoing>): AsyncGenerator<Outgoing> {
    let top = '0';
    try {
      for await (const e of entries) {
        top = maxSeq(top, e.seq);
        yield e;
      }
    } finally {
      if (top !== '0') await markSent(this.o.db, this.o.stateSchema, peer, top);
    }
  }

  /** Notes the end of an exchange with `peer`: 'ok', or `CODE: message` (never a secret). */
  async contact(peer: string, result: string): Promise<void> {
    await recordContact(this.o.db, this.o.stateSchema, peer, result);
  }

  /** How many of our journal rows are still to go to `route.peer`. */
  async pending(route: Route): Promise<number> {
    const cursor = await getCursor(this.o.db, this.o.stateSchema, route.peer);
    return this.o.reader.count(route, cursor.ackedSeq, { resend: resendOf(cursor) });
  }
}
