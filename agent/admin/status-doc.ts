// What GET /status.json serves (and the status page shows): this node and every
// node below it, from its own state and the reports its children passed up,
// each with its last success, lag, pending, quarantine, held tables, conflicts,
// versions, recent exchanges and the alerts computed from them. Pure.
import type { HistoryEntry } from './history.js';
import type { StoredReport } from './report-store.js';
import type { NodeReport } from './report.js';

/** A clock further off than this from its parent's is an alert. */
export const CLOCK_ALERT_MS = 5 * 60_000;

export type AlertKind = 'silent' | 'capture' | 'quarantine' | 'held' | 'conflicts' | 'schema' | 'version' | 'clock';
/** Most tables a schema alert names. */
const NAMED_TABLES = 3;

export interface Alert {
  readonly kind: AlertKind;
  /** error: something does not move; warning: it moves, but needs a look */
  readonly severity: 'error' | 'warning';
  readonly message: string;
}

export interface StatusNode {
  readonly id: string;
  /** the node it reports to; null for the root of the network */
  readonly parent: string | null;
  /** 0 for this node, 1 for its children... */
  readonly depth: number;
  /** this node (the one serving the page) */
  readonly self: boolean;
  /** its last report (null: none has arrived yet) */
  readonly report: NodeReport | null;
  /** when the report arrived here (ISO 8601); for this node, when it was made */
  readonly receivedAt: string | null;
  /** its last successful exchange with its parent (ISO 8601, UTC): seen by its parent where known */
  readonly lastSuccess: string | null;
  /** its last exchange attempt with its parent and how it ended, where this node saw it */
  readonly lastAttempt: string | null;
  readonly lastResult: string | null;
  /** its clock minus its parent's, in ms, as its parent measured it */
  readonly clockOffsetMs: number | null;
  readonly alerts: readonly Alert[];
  /** its last exchanges with its parent, newest first */
  readonly history: readonly HistoryEntry[];
}

export interface StatusDoc {
  /** the node serving it */
  readonly node: string;
  /** when it was made (ISO 8601, UTC) */
  readonly generatedAt: string;
  readonly silentAfterMs: number;
  /** this node first, then each child before the nodes below it */
  readonly nodes: readonly StatusNode[];
}

/** What this node knows of one of its configured children itself. */
export interface ChildView {
  readonly id: string;
  readonly lastSuccess: string | null;
  readonly lastAttempt: string | null;
  readonly lastResult: string | null;
  readonly history: readonly HistoryEntry[];
}

export interface StatusInput {
  readonly self: NodeReport;
  /** this node's exchanges with its parent */
  readonly selfHistory: readonly HistoryEntry[];
  readonly selfLastAttempt: string | null;
  readonly selfLastResult: string | null;
  readonly children: readonly ChildView[];
  readonly stored: readonly StoredReport[];
  readonly nowMs: number;
  readonly silentAfterMs: number;
}

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : s < 172_800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86_400)} days`;
}

/** Whether a report lists the digest of every table it syncs. */
const listsAll = (r: NodeReport): boolean => r.schema.byTable !== undefined && Object.keys(r.schema.byTable).length === r.schema.tables;

/**
 * The schema alert of a node against its parent: a table both sync whose columns differ. Tables only one
 * of them syncs (fewer tables at a child, a direction or exclude) are no alert. Without every table's
 * digest on both sides (older nodes, more tables than a report lists), the overall digests are compared
 * when both sync as many tables. Pure.
 */
export function schemaAlert(r: NodeReport, parent: NodeReport): Alert | null {
  const mine = r.schema.byTable;
  const theirs = parent.schema.byTable;
  if (mine && theirs) {
    const there = new Map(Object.entries(theirs));
    const differ = Object.entries(mine).filter(([t, h]) => there.has(t) && there.get(t) !== h).map(([t]) => t).sort();
    if (differ.length > 0) {
      const named = differ.slice(0, NAMED_TABLES).join(', ') + (differ.length > NAMED_TABLES ? ` and ${differ.length - NAMED_TABLES} more` : '');
      return { kind: 'schema', severity: 'warning', message: `the columns of ${differ.length === 1 ? 'table' : 'tables'} ${named} differ from ${parent.node}'s` };
    }
    if (listsAll(r) && listsAll(parent)) return null;
  }
  if (r.schema.tables !== parent.schema.tables || r.schema.hash === parent.schema.hash) return null;
  return {
    kind: 'schema', severity: 'warning',
    message: `its synced tables differ from ${parent.node}'s (${plural(r.schema.tables, 'table')} on both; their columns, or which tables)`,
  };
}

/** The alerts of one node. Pure. */
export function alertsOf(n: Omit<StatusNode, 'alerts'>, parentReport: NodeReport | null, self: NodeReport, nowMs: number, silentAfterMs: number): Alert[] {
  const out: Alert[] = [];
  const r = n.report;
  if (n.parent !== null) {
    const since = n.lastSuccess === null ? null : nowMs - Date.parse(n.lastSuccess);
    if (since === null) out.push({ kind: 'silent', severity: 'error', message: `no successful exchange with ${n.parent} known here` });
    else if (since > silentAfterMs) out.push({ kind: 'silent', severity: 'error', message: `silent for ${duration(since)}: no successful exchange with ${n.parent} since ${n.lastSuccess}` });
  }
  if (!r) return out;
  if (!r.capture.running) out.push({ kind: 'capture', severity: 'error', message: `capture stopped${r.capture.error ? `: ${r.capture.error}` : ''}` });
  else if (r.capture.error) out.push({ kind: 'capture', severity: 'warning', message: `capture retrying: ${r.capture.error}` });
  if (r.quarantined > 0) out.push({ kind: 'quarantine', severity: 'warning', message: `${plural(r.quarantined, 'change set')} in quarantine` });
  if (r.held.count > 0) {
    out.push({ kind: 'held', severity: 'warning', message: `${plural(r.held.count, 'change set')} held: the table${r.held.tables.length === 1 ? '' : 's'} ${r.held.tables.join(', ')} differ${r.held.tables.length === 1 ? 's' : ''} from a peer's` });
  }
  if ((r.conflictsUnreviewed ?? 0) > 0) {
    out.push({ kind: 'conflicts', severity: 'warning', message: `${plural(r.conflictsUnreviewed ?? 0, 'conflict')} not reviewed yet: \`spokesync conflicts --unreviewed\` on ${r.node}` });
  }
  const schema = parentReport ? schemaAlert(r, parentReport) : null;
  if (schema) out.push(schema);
  if (r.software !== self.software || r.stateVersion !== self.stateVersion) {
    out.push({ kind: 'version', severity: 'warning', message: `runs spokesync ${r.software} (state version ${r.stateVersion}); ${self.node} runs ${self.software} (${self.stateVersion})` });
  }
  if (n.clockOffsetMs !== null && Math.abs(n.clockOffsetMs) > CLOCK_ALERT_MS) {
    out.push({ kind: 'clock', severity: 'warning', message: `its clock is ${duration(Math.abs(n.clockOffsetMs))} ${n.clockOffsetMs > 0 ? 'ahead of' : 'behind'} ${n.parent ?? 'its parent'}'s` });
  }
  return out;
}

/** The whole tree as this node knows it. */
export function statusDoc(i: StatusInput): StatusDoc {
  const self = i.self;
  const nodes: Array<Omit<StatusNode, 'alerts'>> = [{
    id: self.node, parent: self.parent, depth: 0, self: true, report: self, receivedAt: self.at,
    lastSuccess: self.lastSuccess, lastAttempt: i.selfLastAttempt, lastResult: i.selfLastResult, clockOffsetMs: null, history: i.selfHistory,
  }];
  const stored = new Map(i.stored.map((s) => [s.node, s]));
  const depth = new Map<string, number>([[self.node, 0]]);
  for (const c of i.children) {
    const s = stored.get(c.id);
    depth.set(c.id, 1);
    nodes.push({
      id: c.id, parent: self.node, depth: 1, self: false, report: s?.report ?? null, receivedAt: s?.receivedAt ?? null,
      lastSuccess: c.lastSuccess, lastAttempt: c.lastAttempt, lastResult: c.lastResult, clockOffsetMs: s?.clockOffsetMs ?? null, history: c.history,
    });
  }
  // below the children: each node once its parent is placed (a node whose parent is not in the tree stays out)
  let pending = i.stored.filter((s) => !depth.has(s.node));
  for (let pass = 0; pending.length > 0 && pass < 64; pass++) {
    const next: StoredReport[] = [];
    for (const s of pending) {
      const d = depth.get(s.parent);
      if (d === undefined) {
        next.push(s);
        continue;
      }
      depth.set(s.node, d + 1);
      nodes.push({
        id: s.node, parent: s.parent, depth: d + 1, self: false, report: s.report, receivedAt: s.receivedAt,
        lastSuccess: s.seenAt ?? s.report.lastSuccess, lastAttempt: null, lastResult: null, clockOffsetMs: s.clockOffsetMs, history: s.history,
      });
    }
    if (next.length === pending.length) break;
    pending = next;
  }
  const reports = new Map(nodes.map((n) => [n.id, n.report]));
  const ordered = treeOrder(nodes);
  return {
    node: self.node,
    generatedAt: new Date(i.nowMs).toISOString(),
    silentAfterMs: i.silentAfterMs,
    nodes: ordered.map((n) => ({
      ...n,
      // this node's own parent is not in its tree: its schema is not compared
      alerts: alertsOf(n, n.self || n.parent === null ? null : reports.get(n.parent) ?? null, self, i.nowMs, i.silentAfterMs),
    })),
  };
}

/** Depth-first: each node followed by the nodes below it, siblings by id. */
function treeOrder<T extends { id: string; parent: string | null; self: boolean }>(nodes: readonly T[]): T[] {
  const kids = new Map<string, T[]>();
  for (const n of nodes) {
    if (n.self || n.parent === null) continue;
    const list = kids.get(n.parent) ?? [];
    list.push(n);
    kids.set(n.parent, list);
  }
  const out: T[] = [];
  const visit = (n: T): void => {
    out.push(n);
    for (const k of (kids.get(n.id) ?? []).sort((a, b) => (a.id < b.id ? -1 : 1))) visit(k);
  };
  const root = nodes.find((n) => n.self);
  if (root) visit(root);
  return out;
}
