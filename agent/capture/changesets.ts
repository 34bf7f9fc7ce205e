// Assembled source transactions → journal entries: resolve every referenced
// row of the group at once, then map transaction by transaction, in commit
// order, stamping change sets committed here with the node's clock.
import { encodeChangeSet } from '../../apply/codec/encode.js';
import { Hlc } from '../../apply/hlc.js';
import type { ChangeSet, Op } from '../../apply/model.js';
import type { Catalog } from '../schema/catalog.js';
import { isoFromMs, type Assembled } from './assembler.js';
import { singlePk, type Lookup } from './identity.js';
import { journalEntry, type JournalEntry } from './journal.js';
import { canonicalize, lookupsFor, mapChange, type Canon } from './mapper.js';
import type { HintRow, IdentityResolver, IdmapRow } from './resolver.js';

export type Txn = Extract<Assembled, { kind: 'txn' }>;

export interface BuildContext {
  readonly catalog: Catalog;
  readonly resolver: IdentityResolver;
  readonly clock: Hlc;
  /** sets the physical time the clock's next tick() reads */
  readonly setPhysical: (ms: number) => void;
  readonly node: string;
}

/** A group of transactions ready to write: its journal entries, the idmap rows learnt, the clock after it. */
export interface Built {
  readonly entries: JournalEntry[];
  readonly idmap: IdmapRow[];
  readonly hlc: string;
}

export async function buildGroup(txns: readonly Txn[], ctx: BuildContext): Promise<Built> {
  const entries = await buildEntries(txns, ctx);
  return { entries, idmap: ctx.resolver.takeIdmap(), hlc: ctx.clock.value.toString() };
}

/** Longest stretch of mapping without letting I/O callbacks in (the write in flight finishes sooner). */
const SLICE_MS = 2;

/** The journal entries of a group of transactions, in order (transactions that map to nothing give none). */
export async function buildEntries(txns: readonly Txn[], ctx: BuildContext): Promise<JournalEntry[]> {
  const pause = slicer();
  const canon: Canon[][][] = [];
  const lookups: Lookup[] = [];
  for (const txn of txns) {
    const parts: Canon[][] = [];
    for (const part of txn.parts) {
      const list = part.changes.map((c) => canonicalize(c, ctx.catalog));
      for (const c of list) {
        lookupsFor(c, ctx.catalog, lookups);
      }
      parts.push(list);
    }
    canon.push(parts);
    await pause();
  }
  await ctx.resolver.prepare(lookups, () => hintRows(canon));

  const entries: JournalEntry[] = [];
  for (let i = 0; i < txns.length; i++) {
    const txn = txns[i]!;
    for (let j = 0; j < txn.parts.length; j++) {
      const entry = mapPart(txn, txn.parts[j]!, canon[i]![j]!, ctx);
      if (entry) entries.push(entry);
    }
    await pause();
  }
  return entries;
}

/** The row images of the group, for the resolver (a row deleted later still names its identity). */
function hintRows(canon: readonly (readonly (readonly Canon[])[])[]): HintRow[] {
  const hints: HintRow[] = [];
  for (const parts of canon) {
    for (const list of parts) {
      for (const c of list) {
        if (c.before) hints.push({ table: c.table, row: c.before });
        if (c.after) hints.push({ table: c.table, row: c.after });
      }
    }
  }
  return hints;
}

function mapPart(txn: Txn, part: Txn['parts'][number], canon: readonly Canon[], ctx: BuildContext): JournalEntry | null {
  const l = part.ledger;
  if (!l && canon.length === 0) return null;
  // the change set's version first: an insert's version rides in the idmap row of the
  // inserted row (tables with a one-column key); a local stamp is taken for good below
  const hlc = l ? l.hlc : new Hlc(() => txn.timestamp, ctx.clock.value).tick().toString();
  const version = { hlc, node: l ? l.origin : ctx.node };
  const ops: Op[] = [];
  for (const c of canon) {
    const mapped = mapChange(c, ctx.catalog, ctx.resolver);
    for (const op of mapped.ops) ops.push(op);
    for (const learnt of mapped.learned) ctx.resolver.learn(learnt, learnt.inserted ? version : undefined);
  }
  let cs: ChangeSet;
  if (l) {
    ctx.clock.observe(BigInt(l.hlc));
    cs = { id: l.changeId, origin: l.origin, hlc: l.hlc, time: l.time, ops };
  } else {
    // (no ops: nothing was inserted either, so no version was handed out)
    if (ops.length === 0) return null;
    ctx.setPhysical(txn.timestamp);
    if (ctx.clock.tick().toString() !== hlc) throw new Error('capture clock: the stamp taken differs from the one foreseen');
    cs = { id: `${ctx.node}:${hlc}`, origin: ctx.node, hlc, time: isoFromMs(txn.timestamp), ops };
  }
  const inIdmap = (table: string): boolean => singlePk(ctx.catalog.table(table)) !== undefined;
  return journalEntry(cs, encodeChangeSet(cs), l?.fromPeer ?? null, txn.end, inIdmap);
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
