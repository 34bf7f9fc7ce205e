// Rails on the provisioning commands that can lose data. A snapshot for a site
// moves that site's cursor to the snapshot: a site that has exchanged before, or
// has change sets pending, misses them unless it loads that snapshot. A clone
// replaces this node's data: what its parent has not acknowledged never reaches
// anyone. Each is refused (SPOKESYNC_E_WOULD_LOSE) unless forced, and each
// forced loss is recorded in the state table `losses`, shown by `spokesync status`.
import { userInfo } from 'node:os';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { JournalReader } from '../journal/reader.js';
import { trimChangeSet } from '../exchange/wire.js';
import { PARENT_ID_KEY, getCursor, getMeta } from '../routing/cursors.js';
import { routeTo, type PeerRole, type Route } from '../routing/filters.js';

/** Who runs this command, for the record (the user behind sudo when there is one). */
export function operatorName(): string {
  return process.env.SUDO_USER ?? userInfo().username;
}

export interface Loss {
  readonly command: string;
  /** snapshot: the site that misses the change sets; clone: the parent they never reached */
  readonly peer: string;
  readonly changeSets: number;
  readonly by: string;
  readonly detail: string;
}

export interface LossEntry extends Loss {
  readonly at: string;
}

export async function recordLoss(db: Queryable, stateSchema: string, loss: Loss): Promise<void> {
  await db.exec(
    `INSERT INTO ${stateTable(stateSchema, 'losses')} (at, command, peer, change_sets, by_user, detail) VALUES (UTC_TIMESTAMP(6), ?, ?, ?, ?, ?)`,
    [loss.command.slice(0, 200), loss.peer.slice(0, 64), loss.changeSets, loss.by.slice(0, 255), loss.detail.slice(0, 1000)],
  );
}

/** The recorded losses, newest first (at most `limit`), and how many there are. */
export async function listLosses(db: Queryable, stateSchema: string, limit: number): Promise<{ count: number; entries: LossEntry[] }> {
  const table = stateTable(stateSchema, 'losses');
  const [n] = await db.query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM ${table}`);
  const rows = await db.query<{ at: string; command: string; peer: string; change_sets: string | number; by_user: string; detail: string }>(
    `SELECT at, command, peer, change_sets, by_user, detail FROM ${table} ORDER BY id DESC LIMIT ?`, [limit],
  );
  return {
    count: Number(n?.n ?? 0),
    entries: rows.map((r) => ({ at: r.at, command: r.command, peer: r.peer, changeSets: Number(r.change_sets), by: r.by_user, detail: r.detail })),
  };
}

/** The route toward a peer when no table filter applies (every synced table goes). */
export function everyTable(peer: string, role: PeerRole): Route {
  return routeTo({ tables: { include: [], exclude: [], keys: {}, direction: {} }, children: [] }, peer, role);
}

/** The rails of a snapshot asked for from here, for `peer`, with every table going to it. */
export function plainRails(peer: string, force = false): SnapshotRails {
  return { route: everyTable(peer, 'child'), force, via: 'file', by: operatorName() };
}

const reader = (db: Queryable, stateSchema: string): JournalReader => new JournalReader(db, stateSchema, trimChangeSet);
const plural = (n: number): string => `${n} change set${n === 1 ? '' : 's'}`;

/** What this node knows of a site a snapshot is for. */
export interface SiteState {
  /** the site has a cursor here (a snapshot or an exchange made it) */
  readonly known: boolean;
  /** change sets have gone either way between the site and this node */
  readonly exchanged: boolean;
  readonly ackedSeq: string;
  /** change sets of this node's journal still to go to the site */
  readonly pending: number;
}

export async function siteState(db: Queryable, stateSchema: string, route: Route): Promise<SiteState> {
  const [row] = await db.query<{ acked_seq: string | number; received_seq: string | number; sent_seq: string | number }>(
    `SELECT acked_seq, received_seq, sent_seq FROM ${stateTable(stateSchema, 'peers')} WHERE peer = ?`, [route.peer],
  );
  if (!row) return { known: false, exchanged: false, ackedSeq: '0', pending: 0 };
  const ackedSeq = String(row.acked_seq);
  return {
    known: true,
    exchanged: BigInt(row.sent_seq) > 0n || BigInt(row.received_seq) > 0n,
    ackedSeq,
    pending: await reader(db, stateSchema).count(route, ackedSeq),
  };
}

/** How a snapshot for a site is asked for, and whether the loss is accepted. */
export interface SnapshotRails {
  /** the route toward the site (its table filter counts) */
  readonly route: Route;
  /** accept that the site misses what is pending for it (it is then re-cloned from this snapshot) */
  readonly force: boolean;
  /** 'file': `spokesync snapshot --peer SITE`; 'http': a clone over HTTP (GET /v1/snapshot) */
  readonly via: 'file' | 'http';
  /** recorded as who did it */
  readonly by: string;
}

/** Whether the site stands to lose anything by a snapshot. */
const atRisk = (s: SiteState): boolean => s.known && (s.exchanged || s.pending > 0);

function wouldLose(node: string, rails: SnapshotRails, s: SiteState): SpokesyncError {
  const site = rails.route.peer;
  const what = `${site} has ${s.exchanged ? `exchanged with ${node} before` : 'a cursor here'} and ${plural(s.pending)} ${s.pending === 1 ? 'is' : 'are'} pending for it`;
  if (rails.via === 'http') {
    return new SpokesyncError('SPOKESYNC_E_WOULD_LOSE',
      `${what}. A snapshot moves its cursor past them: ${site} gets them only by loading this snapshot, replacing its data. ` +
      'To re-provision it so, ask with force (spokesync clone --force).',
      { fix: `At ${site}, send its own changes first (spokesync sync), then run spokesync clone --config F --force; the parent records the loss.` });
  }
  return new SpokesyncError('SPOKESYNC_E_WOULD_LOSE',
    `${what}. A snapshot moves its cursor to the snapshot: ${site} would miss ${plural(s.pending)} (and anything else up to the snapshot) ` +
    'unless it is then re-cloned from this snapshot, which replaces its data',
    {
      fix: `Let ${site} send its own changes first (spokesync sync or export there). To re-provision it, run this again with --force ` +
        `(the loss is recorded and shown by spokesync status), then load the file at ${site} with spokesync clone --from FILE --force.`,
    });
}

/** Refuses a snapshot for the site before it starts, unless forced (the writer checks again at the cursor). */
export async function checkSnapshot(db: Queryable, stateSchema: string, node: string, rails: SnapshotRails): Promise<SiteState> {
  const s = await siteState(db, stateSchema, rails.route);
  if (atRisk(s) && !rails.force) throw wouldLose(node, rails, s);
  return s;
}

/**
 * Just before the site's cursor moves to `journalSeq`: refused unless forced;
 * when forced, the change sets the cursor passes over are recorded as lost.
 */
export async function admitSnapshotCursor(db: Queryable, stateSchema: string, node: string, rails: SnapshotRails, journalSeq: string): Promise<void> {
  const s = await checkSnapshot(db, stateSchema, node, rails);
  if (!atRisk(s)) return;
  const site = rails.route.peer;
  const skipped = BigInt(journalSeq) > BigInt(s.ackedSeq) ? await reader(db, stateSchema).count(rails.route, s.ackedSeq, { upTo: journalSeq }) : 0;
  await recordLoss(db, stateSchema, {
    command: rails.via === 'http' ? 'clone --force (GET /v1/snapshot?force=1)' : `snapshot --peer ${site} --force`,
    peer: site,
    changeSets: skipped,
    by: rails.by,
    detail: `the cursor of ${site} moved from journal seq ${s.ackedSeq} to the snapshot at ${journalSeq}` +
      (s.exchanged ? ` (${site} had exchanged with ${node} before)` : '') +
      `: ${plural(skipped)} pending for ${site} were not sent; ${site} has them only if it loads this snapshot`,
  });
}

/** Change sets of this node its parent has not acknowledged. */
export interface LocalChanges {
  /** the parent's node id, when known */
  readonly parent: string | null;
  readonly count: number;
  readonly ackedSeq: string;
}

export async function unacknowledged(db: Queryable, stateSchema: string, toParent: (parent: string) => Route): Promise<LocalChanges> {
  const parent = await getMeta(db, stateSchema, PARENT_ID_KEY);
  const ackedSeq = parent ? (await getCursor(db, stateSchema, parent)).ackedSeq : '0';
  return { parent, ackedSeq, count: await reader(db, stateSchema).count(toParent(parent ?? ''), ackedSeq) };
}

/** The refusal of a clone over changes its parent has not acknowledged. */
export function unsentError(node: string, local: LocalChanges): SpokesyncError {
  const parent = local.parent ?? 'its parent';
  return new SpokesyncError('SPOKESYNC_E_WOULD_LOSE',
    `${node} holds ${plural(local.count)} not yet acknowledged by ${parent} (journal after seq ${local.ackedSeq}): ` +
    `a clone replaces this node's data and ${local.count === 1 ? 'it' : 'they'} would never reach any other node`,
    {
      fix: 'Send them first: spokesync sync --config F (or spokesync export --config F --out FILE and import it at the parent), ' +
        'then clone again; or pass --discard-local to throw them away (the loss is recorded and shown by spokesync status).',
    });
}
