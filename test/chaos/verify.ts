// The checks after the tree has settled. Against the writers' record: every
// committed row on every node (lost), exactly once (duplicated), nothing a
// rolled-back transaction or a committed delete removed (wrong), each
// transaction whose COMMIT answer was lost all-or-nothing on every node
// (partial), and every tracked column holding a value someone committed (for a
// column only one node wrote: its last committed value). Between the nodes:
// every synced table identical by identity (diverged), quarantine empty.
import { openDb } from '../../apply/core/db.js';
import { dumpByIdentity, type Dump } from '../../deploy/sandbox/identity-dump.js';
import { EDITED, HOT, SCHEMA, TABLES, UUID_TABLES, seedSetting, seedUuid, seedValue } from './schema.js';
import { rowKey, type Tracker, type Write } from './tracker.js';
import type { Site } from './tree.js';

export interface NodeView {
  readonly node: string;
  readonly dump: Dump;
  /** rows sharing a uuid beyond the first, per table */
  readonly duplicates: Record<string, number>;
  readonly quarantined: number;
  readonly conflicts: number;
}

export interface Findings {
  lost: number;
  duplicated: number;
  diverged: number;
  partial: number;
  wrong: number;
  quarantined: number;
  conflicts: number;
  /** committed rows missing, per node */
  lostOn: Record<string, number>;
  /** identities that differ between nodes, per table */
  divergedIn: Record<string, number>;
  /** the first problems of each kind, one line each */
  details: string[];
}

export const failures = (f: Findings): number => f.lost + f.duplicated + f.diverged + f.partial + f.wrong + f.quarantined;

const n = (v: unknown): number => Number(v ?? 0);

/** Row counts per table and quarantine size: a cheap first test of convergence. */
export async function counts(site: Site): Promise<string> {
  const db = openDb({ host: '127.0.0.1', port: site.server.port, user: 'root' }, { connectionLimit: 1 });
  try {
    const parts = [];
    for (const t of TABLES) parts.push(n((await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${SCHEMA}.${t}`))[0]?.n));
    parts.push(n((await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM spokesync.quarantine'))[0]?.n));
    return parts.join(',');
  } finally {
    await db.close();
  }
}

export async function readNode(site: Site): Promise<NodeView> {
  const db = openDb({ host: '127.0.0.1', port: site.server.port, user: 'root' }, { connectionLimit: 2 });
  try {
    const dump = await dumpByIdentity(db, SCHEMA, TABLES);
    const duplicates: Record<string, number> = {};
    for (const t of UUID_TABLES) {
      const [r] = await db.query<{ extra: number }>(
        `SELECT COALESCE(SUM(c - 1), 0) AS extra FROM (SELECT COUNT(*) AS c FROM ${SCHEMA}.${t} GROUP BY uuid HAVING c > 1) d`);
      duplicates[t] = n(r?.extra);
    }
    const [q] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM spokesync.quarantine');
    const [c] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM spokesync.conflicts');
    return { node: site.id, dump, duplicates, quarantined: n(q?.n), conflicts: n(c?.n) };
  } finally {
    await db.close();
  }
}

/** Seed rows' starting values, by cell key. */
function seedValues(): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 1; i <= HOT; i++) {
    for (const t of ['person', 'visit', 'obs'] as const) m.set(`${t}/${seedUuid(t, i)}`, seedValue(t, i));
    m.set(`setting/${seedSetting(i)}`, seedValue('setting', i));
  }
  return m;
}

/** The values a tracked column may end with. */
function allowedValues(writes: readonly (Write & { outcome: string })[], seed: string | undefined): Set<string> {
  const live = writes.filter((w) => w.outcome !== 'failed').sort((a, b) => a.seq - b.seq);
  const writers = new Set(live.map((w) => w.node));
  if (writers.size > 1) return new Set([...live.map((w) => w.value), ...(seed === undefined ? [] : [seed])]);
  let last = -1;
  live.forEach((w, i) => { if (w.outcome === 'committed') last = i; });
  const start = last >= 0 ? [live[last]!.value] : seed === undefined ? [] : [seed];
  return new Set([...start, ...live.slice(last + 1).map((w) => w.value)]);
}

export function check(views: readonly NodeView[], tracker: Tracker): Findings {
  const f: Findings = {
    lost: 0, duplicated: 0, diverged: 0, partial: 0, wrong: 0, quarantined: 0, conflicts: 0, lostOn: {}, divergedIn: {}, details: [],
  };
  const perKind = new Map<string, number>();
  const note = (line: string): void => {
    const kind = line.slice(0, line.indexOf(':'));
    const k = perKind.get(kind) ?? 0;
    perKind.set(kind, k + 1);
    if (k < 6) f.details.push(line);
  };
  const has = (v: NodeView, key: string): boolean => {
    const i = key.indexOf('/');
    return v.dump[key.slice(0, i)]?.[key.slice(i + 1)] !== undefined;
  };

  // what each row should be, from the writers' record
  const inserted = new Map<string, string>();
  const deleted = new Map<string, string>();
  const cells = new Map<string, Array<Write & { outcome: string }>>();
  for (const t of tracker.txns) {
    for (const r of t.inserts) {
      const prev = inserted.get(rowKey(r));
      if (prev !== 'committed' && (prev !== 'unknown' || t.outcome === 'committed')) inserted.set(rowKey(r), t.outcome);
    }
    for (const r of t.deletes) {
      const prev = deleted.get(rowKey(r));
      if (t.outcome !== 'failed' && prev !== 'committed') deleted.set(rowKey(r), t.outcome);
    }
    for (const w of t.writes) {
      const list = cells.get(rowKey(w)) ?? [];
      list.push({ ...w, outcome: t.outcome });
      cells.set(rowKey(w), list);
    }
  }
  for (const v of views) {
    for (const [key, outcome] of inserted) {
      const del = deleted.get(key);
      const present = has(v, key);
      if (outcome === 'committed' && del === undefined && !present) {
        f.lost++;
        f.lostOn[v.node] = (f.lostOn[v.node] ?? 0) + 1;
        note(`lost: ${key} (committed) missing on ${v.node}`);
      }
      if (del === 'committed' && present) { f.wrong++; note(`wrong: ${key} deleted (committed) but present on ${v.node}`); }
      if (outcome === 'failed' && present) { f.wrong++; note(`wrong: ${key} rolled back but present on ${v.node}`); }
    }
    for (const [t, extra] of Object.entries(v.duplicates)) {
      if (extra > 0) { f.duplicated += extra; note(`duplicated: ${extra} extra ${t} rows on ${v.node}`); }
    }
    f.quarantined += v.quarantined;
    if (v.quarantined > 0) note(`quarantine: ${v.quarantined} change sets held on ${v.node}`);
    f.conflicts += v.conflicts;
  }
  // a transaction whose COMMIT answer was lost: all its rows on every node, or none anywhere
  for (const t of tracker.txns) {
    if (t.outcome !== 'unknown' || t.inserts.length === 0) continue;
    const seen = views.flatMap((v) => t.inserts.map((r) => has(v, rowKey(r))));
    if (seen.some((s) => s) && !seen.every((s) => s)) {
      f.partial++;
      note(`partial: ${t.kind} from ${t.node} (commit unknown) present ${seen.filter((s) => s).length}/${seen.length} (rows × nodes)`);
    }
  }
  // every node identical, by identity, to the root
  const root = views[0]!;
  for (const table of TABLES) {
    const ids = new Set(views.flatMap((v) => Object.keys(v.dump[table] ?? {})));
    for (const id of ids) {
      const ref = JSON.stringify(root.dump[table]?.[id] ?? null);
      const differ = views.filter((v) => JSON.stringify(v.dump[table]?.[id] ?? null) !== ref);
      if (differ.length > 0) {
        f.diverged++;
        f.divergedIn[table] = (f.divergedIn[table] ?? 0) + 1;
        note(`diverged: ${table}/${id}: ${views.map((v) => `${v.node}=${JSON.stringify(v.dump[table]?.[id] ?? null)}`).join(' ')}`);
      }
    }
  }
  // tracked columns hold a committed (or commit-unknown) value
  const seeds = seedValues();
  for (const key of new Set([...cells.keys(), ...seeds.keys()])) {
    const table = key.slice(0, key.indexOf('/'));
    const allowed = allowedValues(cells.get(key) ?? [], seeds.get(key));
    // nothing committed: the row itself should not be there (counted above)
    if (allowed.size === 0) continue;
    for (const v of views) {
      const row = v.dump[table]?.[key.slice(key.indexOf('/') + 1)];
      if (!row) continue;
      const value = row[EDITED[table]!];
      if (value === null || value === undefined || !allowed.has(value)) {
        f.wrong++;
        note(`wrong: ${key}.${EDITED[table]} = ${JSON.stringify(value)} on ${v.node}; allowed ${JSON.stringify([...allowed].slice(-4))}`);
      }
    }
  }
  return f;
}
