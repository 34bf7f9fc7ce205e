// USB transfer: export everything pending for a peer into a sealed file, and
// import a peer's file (authenticated whole before anything is applied), with
// an optional reply file. The same exchange core as the network, so any mix of
// USB and HTTP applies each change once.
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { Readable, pipeline as pipelineCb } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { BatchEntry, BatchHeader } from '../../apply/core/model.js';
import type { BatchItem } from '../../apply/codec/batch.js';
import type { TableShape } from '../../apply/codec/shape.js';
import type { Config } from '../config/types.js';
import type { Db } from '../../apply/core/db.js';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import { lockNameFor, takeLock, type HeldLock } from '../../apply/core/named-lock.js';
import type { Logger } from '../../apply/core/log.js';
import { compressor } from '../exchange/compression.js';
import type { ExchangeCore, RoundRecord, TakeResult } from '../exchange/protocol.js';
import { batchChunks, readBatch } from '../exchange/wire.js';
import { PARENT_ID_KEY, getMeta, recordContact, setMeta } from '../routing/cursors.js';
import type { PeerRole, Route } from '../routing/filters.js';
import { discardField, discardSubfield, fieldFor, takeField } from './discard-field.js';
import { ExtraReader, MAX_EXTRA, SUBFIELD_HEAD, withExtra, type Subfield } from './gzip-extra.js';
import { open, seal, usbError, type UsbHeader } from './usb-file.js';

export interface UsbDeps {
  readonly config: Config;
  readonly db: Db;
  readonly core: ExchangeCore;
  readonly routeFor: (peer: string, role: PeerRole) => Route;
  readonly log: Logger;
  /** resolves once every local commit so far is journaled (an export holds all of them); none: the journal as it is */
  readonly caughtUp?: () => Promise<void>;
  /** change sets per take while importing (default GROUP_RECORDS): beside the daemon, shorter turns under the apply lock */
  readonly groupRecords?: number;
  /** called before each take: beside the daemon, the catalogue is read again after DDL its capture recorded */
  readonly refresh?: () => Promise<void>;
  /** status reporting: a file to the parent carries the status report; every import is an exchange round */
  readonly reporting?: UsbReporting;
}

/** What files ask of status reporting (agent/admin/reporter.ts). */
export interface UsbReporting {
  /** the status report a file to the parent carries (report-wire.ts), at most `max` characters; null when none fits */
  fileReport(inFlight: number, max: number): Promise<{ readonly value: string; readonly nodes: number } | null>;
  /** an import ended, well or not; `report`: the status report in a child's file (its clock at export says nothing of its offset) */
  round(r: RoundRecord & { readonly report?: string; readonly clockKnown: false }): Promise<void>;
}

/** the gzip header's subfield carrying a child's status report (apply/FORMAT.md "Status reports") */
const REPORT_FIELD = 'SR';

interface Peer {
  readonly id: string;
  readonly role: PeerRole;
  readonly secret: string;
}

/** change sets applied per transaction group while importing a large file */
const GROUP_RECORDS = 500;
const GROUP_BYTES = 8 * 1024 * 1024;
/** how long a command waits while another one exchanges files with the same peer */
const PEER_WAIT_MS = 10 * 60_000;

/** One command at a time exchanges files with a peer (two imports of one file, an export during an import). */
function lockPeer(d: UsbDeps, peer: string): Promise<HeldLock> {
  return takeLock(d.db, lockNameFor(d.config.database.stateSchema, `peer:${peer}`), PEER_WAIT_MS, () => new SpokesyncError('SPOKESYNC_E_BUSY',
    `another spokesync command has been exchanging files with '${peer}' for ${PEER_WAIT_MS / 60_000} minutes; nothing was done`,
    { fix: 'Let the other export or import for that peer finish, then run this one again.' }));
}

/** The peer `id` (default: the parent), with the secret both sides hold. */
async function resolvePeer(d: UsbDeps, id: string | undefined): Promise<Peer> {
  const { config } = d;
  const child = id === undefined ? undefined : config.children.find((c) => c.id === id);
  if (child) return { id: child.id, role: 'child', secret: child.token };
  if (!config.parent) {
    throw new SpokesyncError('SPOKESYNC_E_USAGE', id === undefined
      ? 'this node has no parent: name a child with --peer ID'
      : `'${id}' is not a child of this node and this node has no parent`);
  }
  const known = await getMeta(d.db, config.database.stateSchema, PARENT_ID_KEY);
  const parentId = id ?? known;
  if (!parentId) {
    throw new SpokesyncError('SPOKESYNC_E_USAGE', "the parent's node id is not known yet: pass --peer <parent id>");
  }
  if (known && parentId !== known) {
    throw new SpokesyncError('SPOKESYNC_E_USAGE', `'${parentId}' is neither a child nor the parent ('${known}') of this node`);
  }
  return { id: parentId, role: 'parent', secret: config.parent.token };
}

export interface ExportResult {
  readonly peer: string;
  readonly entries: number;
  readonly bytes: number;
  /** discard reports carried (to the parent) */
  readonly discards: number;
  /** discards of the peer this file acknowledges as recorded (to a child) */
  readonly acknowledged: number;
  /** nodes the status report in the file speaks of (to the parent: itself and the nodes below it); 0 without one */
  readonly reported: number;
}

/** Writes everything pending for `peer` (acks and discard reports included) into a sealed file. */
export async function exportFile(d: UsbDeps, opts: { peer?: string; out: string }): Promise<ExportResult> {
  const peer = await resolvePeer(d, opts.peer);
  const lock = await lockPeer(d, peer.id);
  try {
    return await exportLocked(d, peer, opts.out);
  } finally {
    await lock.release();
  }
}

async function exportLocked(d: UsbDeps, peer: Peer, out: string): Promise<ExportResult> {
  await d.caughtUp?.();
  const field = await fieldFor(d.db, d.config.database.stateSchema, d.config.node.id, peer);
  const discards = field.discards?.length ?? 0;
  const acknowledged = field.recorded?.length ?? 0;
  const route = d.routeFor(peer.id, peer.role);
  const subs: Subfield[] = [];
  const sd = discardSubfield(field);
  if (sd) subs.push(sd);
  const report = peer.role === 'parent' ? await fileReport(d, await d.core.pending(route), MAX_EXTRA - SUBFIELD_HEAD - (sd ? SUBFIELD_HEAD + sd[1].length : 0)) : null;
  if (report) subs.push([REPORT_FIELD, Buffer.from(report.value, 'ascii')]);
  const { header, entries } = await d.core.all(route);
  let count = 0;
  async function* counted(): AsyncGenerator<{ seq: string; body: string }> {
    for await (const e of entries) {
      count++;
      yield e;
    }
  }
  const tmp = `${out}.partial-${process.pid}`;
  const file = createWriteStream(tmp, { mode: 0o600 });
  try {
    await pipeline(
      Readable.from(batchChunks(header, counted(), d.core.allShapes())),
      compressor('gzip'),
      (src: AsyncIterable<Buffer>) => withExtra(src, subs),
      (src: AsyncIterable<Buffer>) => seal(src, { sender: d.config.node.id, receiver: peer.id, secret: peer.secret }),
      file,
    );
    await rename(tmp, out);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  const reported = report?.nodes ?? 0;
  d.log.info('usb export', { peer: peer.id, entries: count, bytes: file.bytesWritten, discards, acknowledged, reported });
  return { peer: peer.id, entries: count, bytes: file.bytesWritten, discards, acknowledged, reported };
}

/** The status report for the parent (all `inFlight` pending entries ride in the file); one that cannot be made never stops the export. */
async function fileReport(d: UsbDeps, inFlight: number, max: number): Promise<{ value: string; nodes: number } | null> {
  try {
    return (await d.reporting?.fileReport(inFlight, max)) ?? null;
  } catch (e) {
    d.log.warn('the status report could not be made; the file goes without it', { error: (e as Error).message });
    return null;
  }
}

/** The batch in a file, item by item, each chunk authenticated before it is used. */
async function* fileItems(
  path: string,
  secretFor: (h: UsbHeader) => string,
  onHeader: (h: UsbHeader) => void,
  extra?: ExtraReader,
): AsyncGenerator<BatchItem> {
  async function* plain(): AsyncGenerator<Buffer> {
    for await (const item of open(createReadStream(path), secretFor)) {
      if (item.type === 'header') onHeader(item.header);
      else {
        extra?.push(item.data);
        yield item.data;
      }
    }
  }
  // pipeline (not pipe) so a chunk that fails authentication fails the reader too
  const gunzip = createGunzip();
  pipelineCb(Readable.from(plain()), gunzip, () => undefined);
  try {
    yield* readBatch(gunzip as AsyncIterable<Buffer>);
  } catch (e) {
    if (isSpokesyncError(e)) throw e;
    throw usbError('the file does not hold a readable batch', e);
  }
}

export interface ImportResult extends TakeResult {
  readonly sender: string;
  /** a child's discard reports recorded here for the first time */
  readonly discards: number;
  /** this node's discards the parent's file acknowledged, now marked reported */
  readonly acknowledged: number;
  readonly reply?: { readonly entries: number; readonly bytes: number; readonly acknowledged: number };
}

/** What an import learned of its sender, for the exchange round it records. */
interface Seen {
  peer: Peer | null;
  /** change sets in the file */
  records: number;
  /** the status report of a child's file, once the whole file authenticated */
  report?: string;
}

/**
 * Imports a peer's file, recorded as an exchange round with it as the network's
 * are (a damaged or foreign file is none: its sender is not known for sure).
 */
export async function importFile(d: UsbDeps, opts: { in: string; reply?: string }): Promise<ImportResult> {
  const startedAt = new Date();
  const seen: Seen = { peer: null, records: 0 };
  let r: ImportResult;
  try {
    r = await importSealed(d, opts, seen);
  } catch (e) {
    if (seen.peer && !isSpokesyncError(e, 'SPOKESYNC_E_USB_FILE')) {
      const result = `${isSpokesyncError(e) ? e.code : 'SPOKESYNC_E_APPLY'}: ${(e as Error).message}`;
      await recordContact(d.db, d.config.database.stateSchema, seen.peer.id, result).catch(() => undefined);
      await recordImport(d, seen, seen.peer, startedAt, opts.in, undefined, result);
    }
    throw e;
  }
  await recordImport(d, seen, seen.peer!, startedAt, opts.in, r.reply, 'ok');
  return r;
}

/** Hands an import to status reporting as a round; its failure is logged, never the import's. */
async function recordImport(d: UsbDeps, seen: Seen, peer: Peer, startedAt: Date, path: string, reply: ImportResult['reply'], result: string): Promise<void> {
  if (!d.reporting) return;
  try {
    const bytes = (await stat(path)).size;
    // up is toward the parent: a child's file and the reply to it, or a parent's file and ours back
    const [got, sent] = [{ sets: seen.records, bytes }, { sets: reply?.entries ?? 0, bytes: reply?.bytes ?? 0 }];
    const [up, down] = peer.role === 'child' ? [got, sent] : [sent, got];
    await d.reporting.round({
      peer: peer.id, role: peer.role, startedAt, durationMs: Date.now() - startedAt.getTime(), bytesUp: up.bytes, bytesDown: down.bytes,
      setsUp: up.sets, setsDown: down.sets, result, clockKnown: false, ...(seen.report === undefined ? {} : { report: seen.report }),
    });
  } catch (e) {
    d.log.warn('the exchange round could not be recorded', { peer: peer.id, error: (e as Error).message });
  }
}

/**
 * Pass one authenticates every chunk and checks the batch inside; only then
 * pass two applies it, in groups, moving the cursors.
 */
async function importSealed(d: UsbDeps, opts: { in: string; reply?: string }, seen: Seen): Promise<ImportResult> {
  const { config, db } = d;
  const stateSchema = config.database.stateSchema;
  const groupRecords = d.groupRecords ?? GROUP_RECORDS;
  const knownParent = await getMeta(db, stateSchema, PARENT_ID_KEY);
  let peer: Peer | undefined;
  const secretFor = (h: UsbHeader): string => {
    if (h.receiver !== config.node.id) throw usbError(`the file is for '${h.receiver}', this node is '${config.node.id}'`);
    const child = config.children.find((c) => c.id === h.sender);
    if (child) peer = { id: child.id, role: 'child', secret: child.token };
    else if (config.parent && (knownParent === null || knownParent === h.sender)) {
      peer = { id: h.sender, role: 'parent', secret: config.parent.token };
    } else throw usbError(`the file comes from '${h.sender}', which is not a peer of this node`);
    seen.peer = peer;
    return peer.secret;
  };
  let sender = '';
  const check = (h: BatchHeader): void => {
    if (h.from !== sender || h.to !== config.node.id) throw usbError('the batch inside does not match the file header');
  };

  // pass one: authenticate all of it, check that the batch reads to the end and that the sender may send its change sets
  let records = 0;
  let vet: BatchEntry[] = [];
  const extra = new ExtraReader();
  for await (const item of fileItems(opts.in, secretFor, (h) => { sender = h.sender; }, extra)) {
    if (item.type === 'header') check(item.header);
    else if (item.type === 'entry') {
      records++;
      vet.push(item.entry);
      if (vet.length >= GROUP_RECORDS) {
        await d.core.checkOrigins(sender, vet);
        vet = [];
      }
    }
  }
  if (!peer) throw usbError('the file has no header');
  await d.core.checkOrigins(sender, vet);
  const from: Peer = peer;
  seen.records = records;
  // authenticated whole: a child's status report in it is taken as the network's are (a parent's files carry none)
  const report = extra.get(REPORT_FIELD);
  if (report !== null && from.role === 'child') seen.report = report.toString('latin1');
  // from here the peer's cursors move: no other command exchanges files with it meanwhile
  const lock = await lockPeer(d, from.id);
  try {
    if (from.role === 'parent' && knownParent === null) await setMeta(db, stateSchema, PARENT_ID_KEY, from.id);
    // the file is authenticated whole: its discard reports (or acknowledgements) can be taken
    const taken = await takeField(db, stateSchema, config.node.id, from, discardField(extra), d.log);
    const [discards, acknowledged] = from.role === 'child' ? [taken, 0] : [0, taken];

    // pass two: apply in groups (every chunk is authenticated again as it is read)
    const total = { applied: 0, duplicates: 0, quarantined: 0, conflicts: 0, received: 0, replayed: 0 };
    let header: BatchHeader | undefined;
    const shapes: TableShape[] = [];
    let group: BatchEntry[] = [];
    let groupBytes = 0;
    const flush = async (): Promise<void> => {
      if (!header) return;
      await d.refresh?.();
      const r = await d.core.take(from.id, header, group, shapes);
      for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += r[k];
      group = [];
      groupBytes = 0;
    };
    for await (const item of fileItems(opts.in, secretFor, () => undefined)) {
      if (item.type === 'header') {
        check(item.header);
        header = item.header;
        continue;
      }
      if (item.type === 'shape') {
        shapes.push(item.shape);
        continue;
      }
      group.push(item.entry);
      groupBytes += item.entry.cs.ops.length * 256;
      if (group.length >= groupRecords || groupBytes >= GROUP_BYTES) await flush();
    }
    await flush();
    // a file imported whole is a successful exchange with its sender, as a network round is
    await recordContact(db, stateSchema, from.id, 'ok');
    d.log.info('usb import', { peer: from.id, records, discards, acknowledged, ...total });
    const reply = opts.reply === undefined ? undefined : await exportLocked(d, from, opts.reply);
    return { sender: from.id, discards, acknowledged, ...total, ...(reply ? { reply: { entries: reply.entries, bytes: reply.bytes, acknowledged: reply.acknowledged } } : {}) };
  } finally {
    await lock.release();
  }
}
