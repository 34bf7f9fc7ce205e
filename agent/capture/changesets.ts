// Assembled source transactions → journal entries: resolve every referenced
// row of the group at once, then map transaction by transaction, in commit
// order, stamping change sets committed here with the node's clock.
import { encodeChangeSet } from '../../apply/codec/encode.js';
import type { Hlc } from '../../apply/core/hlc.js';
import type { ChangeSet, Op } from '../../apply/core/model.js';
import { readCarried, withCarried, withLocalCarried } from '../../apply/replay/carry.js';
import { decodeChangeSet } from '../../apply/codec/decode.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import type { Catalog } from '../../apply/core/catalog.js';
import { isoFromMs, type Assembled, type LedgerMark, type TxnPart } from './assembler.js';
import type { RowChange } from './events.js';
import { singlePk, type Lookup } from '../../apply/core/row-identity.js';
import { changeSetOpen, type XmlSink } from '../../apply/codec/xml-sink.js';
import { encodeInsert } from './insert-form.js';
import { insertLookups, insertPlan, type InsertFacts, type InsertPlan } from './insert-plan.js';
import { encodeRawInsert, rawInsertLookups } from './raw-insert-form.js';
import { INSERT_COLS, journalEntry, type JournalEntry, type Written } from '../journal/writer.js';
import { canonicalize, lookupsFor, mapChange, type Canon, type DeletedRefs } from './mapper.js';
import { decodeImages, decoded } from './row-decoder.js';
import type { HintRow, IdentityResolver, IdentityWrites } from './ref-resolver.js';

export type Txn = Extract<Assembled, { kind: 'txn' }>;

export interface BuildContext {
  readonly catalog: Catalog;
  readonly resolver: IdentityResolver;
  readonly clock: Hlc;
  /** sets the physical time the clock's next tick() reads */
  readonly setPhysical: (ms: number) => void;
  readonly node: string;
  /** where the short way writes change sets (one chunk of memory holds many) */
  readonly sink: XmlSink;
}

/** A group of transactions ready to write: its journal entries, the identity state learnt, the clock after it. */
export interface Built {
  readonly entries: JournalEntry[];
  readonly writes: IdentityWrites;
  readonly hlc: string;
}

export async function buildGroup(txns: readonly Txn[], ctx: BuildContext): Promise<Built> {
  const entries = await buildEntries(txns, ctx);
  return { entries, writes: ctx.resolver.takeWrites(), hlc: ctx.clock.value.toString() };
}

/** Longest stretch of mapping without letting I/O callbacks in (the write in flight finishes sooner). */
const SLICE_MS = 2;

/**
 * How a part of a transaction is mapped: a part made only of inserts into
 * tables with an identity rule goes the short way (insert-form.ts, one plan
 * per change); any other part is canonicalized and goes the general way.
 */
type PartWork = { readonly plans: readonly InsertPlan[]; canon: Canon[] | null } | { readonly plans: null; canon: Canon[] };

/** The journal entries of a group of transactions, in order (transactions that map to nothing give none). */
export async function buildEntries(txns: readonly Txn[], ctx: BuildContext): Promise<JournalEntry[]> {
  const pause = slicer();
  const work: PartWork[][] = [];
  const lookups: Lookup[] = [];
  await ctx.resolver.loadMarks();
  ctx.resolver.beginGroup();
  for (const txn of txns) {
    const parts: PartWork[] = [];
    for (const part of txn.parts) {
      const plans = part.carried ? null : insertPlans(part.changes, ctx.catalog);
      if (plans) {
        // (inserts not decoded yet stay so: encodeRawInsert writes them from their bytes)
        for (let i = 0; i < plans.length; i++) {
          const c = part.changes[i] as Inserted;
          if (c.raw) rawInsertLookups(plans[i]!, c.raw, ctx.resolver, lookups);
          else insertLookups(plans[i]!, c.after, c.canon === true, ctx.resolver, lookups);
        }
        parts.push({ plans, canon: null });
      } else {
        decodeImages(part.changes);
        const canon = part.changes.map((c) => canonicalize(c, ctx.catalog));
        for (const c of canon) lookupsFor(c, ctx.catalog, lookups);
        parts.push({ plans: null, canon });
      }
    }
    work.push(parts);
    await pause();
  }
  if (lookups.length > 0) await ctx.resolver.prepare(lookups, hintsOf(txns, work, ctx.catalog));

  const entries: JournalEntry[] = [];
  for (let i = 0; i < txns.length; i++) {
    const txn = txns[i]!;
    for (let j = 0; j < txn.parts.length; j++) {
      const part = txn.parts[j]!;
      const w = work[i]![j]!;
      let entry: JournalEntry | null | undefined = w.plans ? mapInserts(txn, part, w.plans, ctx) : undefined;
      if (entry === undefined) entry = mapPart(txn, part, (w.canon ??= canonicalPart(part, ctx.catalog)), ctx);
      if (entry) entries.push(entry);
    }
    await pause();
  }
  return entries;
}

type Inserted = Extract<RowChange, { op: 'insert' }>;

/** The changes of a part, canonical (images not decoded yet are decoded, in place). */
function canonicalPart(part: TxnPart, catalog: Catalog): Canon[] {
  decodeImages(part.changes);
  return part.changes.map((c) => canonicalize(c, catalog));
}

/** One insert plan per change when every change is an insert into a table that has one; null otherwise. */
function insertPlans(changes: readonly RowChange[], catalog: Catalog): InsertPlan[] | null {
  if (changes.length === 0) return null;
  const plans: InsertPlan[] = [];
  for (const c of changes) {
    const plan = c.op === 'insert' ? insertPlan(catalog, c.table) : null;
    if (!plan) return null;
    plans.push(plan);
  }
  return plans;
}

/** The row images of the group by table, canonical, made when the resolver first asks (a row deleted later still names its identity). */
function hintsOf(txns: readonly Txn[], work: readonly (readonly PartWork[])[], catalog: Catalog): (table: string) => readonly HintRow[] {
  const made = new Map<string, HintRow[]>();
  return (table) => {
    let hints = made.get(table);
    if (hints) return hints;
    hints = [];
    for (let i = 0; i < txns.length; i++) {
      const parts = txns[i]!.parts;
      for (let j = 0; j < parts.length; j++) {
        const changes = parts[j]!.changes;
        const canon = work[i]![j]!.canon;
        for (let k = 0; k < changes.length; k++) {
          const ch = changes[k]!;
          if (ch.table !== table) continue;
          const c = canon ? canon[k]! : canonicalize(decoded(ch), catalog);
          if (c.before) hints.push({ table: c.table, row: c.before });
          if (c.after) hints.push({ table: c.table, row: c.after });
        }
      }
    }
    made.set(table, hints);
    return hints;
  };
}

/** The change set's version: a ledger row's, or the local stamp it will take (foreseen: an insert's version rides in its idmap row or insert range). */
function versionOf(txn: Txn, l: LedgerMark | null, ctx: BuildContext): { readonly hlc: string; readonly node: string } {
  return { hlc: l ? l.hlc : ctx.clock.next(txn.timestamp).toString(), node: l ? l.origin : ctx.node };
}

/** The stamp is taken for good (local) or merged (a peer's); the change set's id, origin, time. */
function stamp(txn: Txn, l: LedgerMark | null, hlc: string, ctx: BuildContext): { readonly id: string; readonly origin: string; readonly time: string } {
  if (l) {
    // the bound on how far a received stamp moves the clock is taken from this transaction's time
    ctx.setPhysical(txn.timestamp);
    ctx.clock.observe(BigInt(l.hlc));
    return { id: l.changeId, origin: l.origin, time: l.time };
  }
  ctx.setPhysical(txn.timestamp);
  if (ctx.clock.tick().toString() !== hlc) throw new Error('capture clock: the stamp taken differs from the one foreseen');
  return { id: `${ctx.node}:${hlc}`, origin: ctx.node, time: isoFromMs(txn.timestamp) };
}

/** A part of inserts only, the short way; undefined when a row needs the general path (which names what is missing). */
function mapInserts(txn: Txn, part: TxnPart, plans: readonly InsertPlan[], ctx: BuildContext): JournalEntry | undefined {
  const l = part.ledger;
  const version = versionOf(txn, l, ctx);
  const id = l ? l.changeId : `${ctx.node}:${version.hlc}`;
  const time = l ? l.time : isoFromMs(txn.timestamp);
  const body = ctx.sink;
  body.truncate(0);
  body.str(changeSetOpen(id, version.node, version.hlc, time));
  const tables: string[] = [];
  const written: Written[] = [];
  const facts: InsertFacts = { identity: '', localId: undefined };
  for (let i = 0; i < plans.length; i++) {
    const plan = plans[i]!;
    const c = part.changes[i] as Inserted;
    const done = c.raw ? encodeRawInsert(plan, c.raw, ctx.resolver, facts, body)
      : encodeInsert(plan, c.after, c.canon === true, ctx.resolver, facts, body);
    if (!done) return undefined;
    const table = plan.table.name;
    if (tables.length === 0 || (tables[tables.length - 1] !== table && !tables.includes(table))) tables.push(table);
    if (!plan.pk) written.push({ table, id: facts.identity, cols: INSERT_COLS });
    else if (facts.localId !== undefined) ctx.resolver.learnInsert(table, plan.pk.name, facts.localId, facts.identity, version);
  }
  stamp(txn, l, version.hlc, ctx);
  return {
    changeId: id, origin: version.node, hlc: version.hlc, time, fromPeer: l?.fromPeer ?? null, tables, opCount: plans.length,
    body: (body.str('</cs>'), body.take()), written, end: txn.end,
  };
}

function mapPart(txn: Txn, part: TxnPart, canon: readonly Canon[], ctx: BuildContext): JournalEntry | null {
  const l = part.ledger;
  if (!l && canon.length === 0 && !part.carried) return null;
  const local = !l && part.carried !== undefined ? localCarried(part.carried) : null;
  if (local && local.floor > 0n) {
    // the transaction rewrites rows to win over versions elsewhere (repair, join): its stamp goes above them
    ctx.setPhysical(txn.timestamp);
    ctx.clock.observe(local.floor);
  }
  const version = versionOf(txn, l, ctx);
  let ops: Op[] = [];
  const deleted: DeletedRefs[] = [];
  for (const c of canon) {
    const mapped = mapChange(c, ctx.catalog, ctx.resolver);
    for (const op of mapped.ops) ops.push(op);
    for (const d of mapped.deleted) deleted.push(d);
    for (const learnt of mapped.learned) ctx.resolver.learn(learnt, learnt.inserted ? version : undefined);
  }
  if (local) ops = withLocalCarried(ops, local.ops);
  // (no ops: nothing was inserted either, so no version was handed out)
  if (!l && ops.length === 0) return null;
  const { id, origin, time } = stamp(txn, l, version.hlc, ctx);
  const cs: ChangeSet = { id, origin, hlc: version.hlc, time, ops: l && part.carried ? carriedOps(ops, part.carried, id) : ops };
  // a carried insert rewrites a row that is here already: its version is kept as the row's insert version in `versions`
  const inIdmap = local ? () => false : (table: string): boolean => singlePk(ctx.catalog.table(table)) !== undefined;
  return journalEntry(cs, encodeChangeSet(cs), l?.fromPeer ?? null, txn.end, inIdmap, deleted);
}

/** What a local transaction carried, and the stamp its change set must go above (a body that cannot be read stops capture at its checkpoint). */
function localCarried(bodies: readonly unknown[]): { ops: Op[]; floor: bigint } {
  const ops: Op[] = [];
  let floor = 0n;
  for (const b of bodies) {
    try {
      const cs = decodeChangeSet(Buffer.isBuffer(b) ? b : String(b));
      ops.push(...cs.ops);
      if (BigInt(cs.hlc) > floor) floor = BigInt(cs.hlc);
    } catch (e) {
      throw new SpokesyncError('SPOKESYNC_E_CAPTURE', `the ops carried by a local transaction cannot be read: ${(e as Error).message}`, { cause: e });
    }
  }
  return { ops, floor };
}

/** The ops of an applied change set with what apply carried for it (a body that cannot be read stops capture at its checkpoint). */
function carriedOps(ops: readonly Op[], bodies: readonly unknown[], id: string): Op[] {
  let out = [...ops];
  for (const b of bodies) {
    try {
      out = withCarried(out, readCarried(Buffer.isBuffer(b) ? b : String(b), id));
    } catch (e) {
      throw new SpokesyncError('SPOKESYNC_E_CAPTURE', `the carried ops of change set ${id} cannot be read: ${(e as Error).message}`, { cause: e });
    }
  }
  return out;
}

/** A function to await between pieces of work: it yields to the event loop once SLICE_MS have passed. */
function slicer(): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < SLICE_MS) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    since = performance.now();
  };
}
