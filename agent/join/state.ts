// Where a join stands at the site, kept in the state schema's meta table (k =
// 'join') so that an interrupted join is finished by running it again, and
// what makes a site unfit to join: a join is a first contact only.
//   started: this node's cursor toward the parent is set (its journal up to
//            `journalFrom` is not sent: those rows are compared instead); rows
//            are being compared, brought down and carried up
//   applied: every table is done; what is left is the first ordinary sync
//   done:    the first sync went through; from here the node syncs as usual
import type { Db, Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { stateTable } from '../../apply/core/state-schema.js';
import { CLONE_KEY } from '../provision/load.js';
import { PARENT_ID_KEY, getMeta, setMeta } from '../routing/cursors.js';

export const JOIN_KEY = 'join';

export type Prefer = 'parent' | 'here';

export interface JoinMark {
  readonly state: 'started' | 'applied' | 'done';
  readonly parent: string;
  /** this node's journal seq at the start: what was journaled up to it is compared, not sent */
  readonly journalFrom: string;
  /** where the parent started its cursor for this node (its journal seq), once it has */
  readonly parentSeq?: string;
  readonly at: string;
}

export async function readJoinMark(db: Queryable, stateSchema: string): Promise<JoinMark | null> {
  const v = await getMeta(db, stateSchema, JOIN_KEY);
  if (v === null) return null;
  try {
    return JSON.parse(v) as JoinMark;
  } catch {
    throw new SpokesyncError('SPOKESYNC_E_JOIN', `the join state in ${stateSchema}.meta cannot be read`, {
      fix: `Someone edited it: put back what was there, or delete the row k = 'join' only if no join was ever started here.`,
    });
  }
}

export async function writeJoinMark(db: Queryable, stateSchema: string, mark: JoinMark): Promise<void> {
  await setMeta(db, stateSchema, JOIN_KEY, JSON.stringify(mark));
}

/** Whether a join began here and has not had its first sync (sync waits for it then). */
export async function joinUnfinished(db: Queryable, stateSchema: string): Promise<boolean> {
  return (await readJoinMark(db, stateSchema))?.state === 'started';
}

/** The refusal of a sync while a join is half done: what it has not carried up yet would stay behind. */
export function joinPending(node: string): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_JOIN', `${node} began joining its parent and has not finished: nothing is exchanged before it has`, {
    fix: 'Run `spokesync join --config F` again (with the daemon stopped): it goes on where it stopped.',
  });
}

/**
 * Refuses a first join of a node that has been cloned or has exchanged with
 * `parent` (by network or file): its rows are known to the parent already.
 */
export async function refuseIfSynced(db: Queryable, stateSchema: string, node: string, parent: string): Promise<void> {
  const fix = 'Compare it with its parent with `spokesync verify`, and make differing rows equal with `spokesync repair`.';
  if ((await getMeta(db, stateSchema, CLONE_KEY)) !== null) {
    throw new SpokesyncError('SPOKESYNC_E_JOIN', `${node} was provisioned by a clone: join is for a site that has never been cloned or synced`, { fix });
  }
  const known = await getMeta(db, stateSchema, PARENT_ID_KEY);
  const [row] = await db.query<{ sent_seq: string | number; received_seq: string | number; batch_seq: string | number }>(
    `SELECT sent_seq, received_seq, batch_seq FROM ${stateTable(stateSchema, 'peers')} WHERE peer = ?`, [parent],
  );
  const exchanged = row !== undefined && (BigInt(row.sent_seq) > 0n || BigInt(row.received_seq) > 0n || BigInt(row.batch_seq) > 0n);
  if (known !== null || exchanged) {
    throw new SpokesyncError('SPOKESYNC_E_JOIN', `${node} has exchanged with ${known ?? parent} before: join is for a site's first contact with its parent`, { fix });
  }
}

/** The highest seq of this node's journal ('0' when empty). */
export async function journalTop(db: Queryable, stateSchema: string): Promise<string> {
  const [r] = await db.query<{ m: string | number | null }>(`SELECT MAX(seq) AS m FROM ${stateTable(stateSchema, 'journal')}`);
  return String(r?.m ?? 0);
}

/**
 * The start of a join: this node's cursor toward the parent at `journalFrom`
 * (its journal up to there is compared instead of sent), and the mark.
 */
export async function beginJoin(db: Db, stateSchema: string, parent: string, journalFrom: string): Promise<JoinMark> {
  const mark: JoinMark = { state: 'started', parent, journalFrom, at: new Date().toISOString() };
  await db.transaction(async (tx) => {
    await tx.exec(
      `INSERT INTO ${stateTable(stateSchema, 'peers')} (peer, acked_seq, received_seq) VALUES (?, ?, 0)
       ON DUPLICATE KEY UPDATE acked_seq = VALUES(acked_seq), received_seq = 0`,
      [parent, journalFrom],
    );
    await writeJoinMark(tx, stateSchema, mark);
  });
  return mark;
}

/**
 * The parent has started its cursor for this node at its journal seq `parentSeq`:
 * this node acknowledges that much (those change sets are in the rows it compares).
 */
export async function parentJoined(db: Db, stateSchema: string, mark: JoinMark, parentSeq: string): Promise<JoinMark> {
  const next: JoinMark = { ...mark, parentSeq };
  await db.transaction(async (tx) => {
    await tx.exec(`UPDATE ${stateTable(stateSchema, 'peers')} SET received_seq = ? WHERE peer = ?`, [parentSeq, mark.parent]);
    await setMeta(tx, stateSchema, PARENT_ID_KEY, mark.parent);
    await writeJoinMark(tx, stateSchema, next);
  });
  return next;
}
