// What `spokesync join` prints: per table the rows brought down, carried up
// and found at both with other content (and whose version was kept), rows left
// as they are and why, the first sync, and the last comparison. Pure.
import { isIdentical, verifyJson, type VerifyJson } from '../verify/verify-report.js';
import type { JoinResult, TableJoin } from './join-site.js';

export interface JoinJson {
  readonly node: string;
  readonly parent: string;
  readonly prefer: string;
  readonly resumed: boolean;
  /** where the two cursors start: this node's journal after journalFrom goes up, the parent's after parentSeq comes down */
  readonly journalFrom: string;
  readonly parentSeq: string | null;
  readonly tables: TableJoin[];
  readonly quarantined: number;
  readonly sync: { sent: number; received: number; applied: number; conflicts: number; drained: boolean };
  /** no differing row after the first sync (rows in flight aside) and nothing from the parent waits in quarantine here */
  readonly identical: boolean;
  readonly verify: VerifyJson;
  readonly bytes: number;
}

export function joinJson(r: JoinResult, seconds: number): JoinJson {
  return {
    node: r.node, parent: r.parent, prefer: r.prefer, resumed: r.resumed,
    journalFrom: r.mark.journalFrom, parentSeq: r.mark.parentSeq ?? null,
    tables: r.tables, quarantined: r.quarantined,
    sync: { sent: r.sync.sent, received: r.sync.received, applied: r.sync.applied, conflicts: r.sync.conflicts, drained: r.sync.drained },
    identical: isIdentical(r.final) && r.quarantined === 0,
    verify: verifyJson(r.node, r.parent, r.final, { sent: 0, received: 0 }, seconds),
    bytes: r.bytes,
  };
}

export function formatJoin(j: JoinJson): string {
  const lines: string[] = [];
  const moved = j.tables.filter((t) => t.down + t.up + t.inFlight + t.left.length > 0);
  lines.push(`${j.node} joined ${j.parent}${j.resumed ? ' (going on from an earlier run)' : ''}: ` +
    `${j.parent}'s journal after seq ${j.parentSeq ?? '?'} and ${j.node}'s after seq ${j.journalFrom} travel by ordinary sync`);
  if (j.tables.length === 0 && j.resumed) lines.push('  every table was joined before; what was left is the first sync');
  else if (moved.length === 0) lines.push('  every table held the same rows on both sides');
  else {
    const width = Math.max(5, ...moved.map((t) => t.table.length));
    lines.push(`  ${'table'.padEnd(width)}  ${'down'.padStart(7)}  ${'up'.padStart(7)}  conflicts (kept: parent's / this node's)`);
    for (const t of moved) {
      const c = t.conflicts.parentKept + t.conflicts.hereKept;
      lines.push(`  ${t.table.padEnd(width)}  ${String(t.down).padStart(7)}  ${String(t.up).padStart(7)}  ` +
        `${c === 0 ? '-' : `${c} (${t.conflicts.parentKept} / ${t.conflicts.hereKept})`}${t.inFlight > 0 ? `; ${t.inFlight} changed meanwhile, left to sync` : ''}`);
    }
  }
  const conflicts = j.tables.reduce((n, t) => n + t.conflicts.parentKept + t.conflicts.hereKept, 0);
  if (conflicts > 0) lines.push(`${conflicts} rows were at both with other content: each is in the conflicts log with both versions (\`spokesync conflicts\`)`);
  const left = j.tables.flatMap((t) => t.left.map((l) => ({ table: t.table, ...l })));
  if (left.length > 0) {
    lines.push('rows left as they are:');
    for (const l of left.slice(0, 50)) lines.push(`  ${l.table}  ${l.identity}  ${l.why}`);
    if (left.length > 50) lines.push(`  and ${left.length - 50} more (--json lists them all)`);
  }
  lines.push(`first sync: sent ${j.sync.sent}, received ${j.sync.received} (applied ${j.sync.applied}, conflicts ${j.sync.conflicts})` +
    (j.sync.drained ? '' : '; changes are still pending: run `spokesync sync`'));
  if (j.quarantined > 0) lines.push(`${j.quarantined} change sets from ${j.parent} wait in quarantine here: \`spokesync quarantine --config F\` says why`);
  const atParent = j.tables.reduce((n, t) => n + t.quarantined.parent, 0);
  if (atParent > 0) {
    lines.push(`${atParent} change sets of rows sent up went to quarantine at ${j.parent} (a row they refer to had not arrived yet; ` +
      `it retries them by itself): see \`spokesync status\` there`);
  }
  const v = j.verify;
  if (v.identical) {
    lines.push(`${j.node} and ${j.parent} hold the same rows${v.inFlight.length > 0 ? `, but for ${v.inFlight.length} in flight` : ''}`);
  } else {
    lines.push(`${j.node} and ${j.parent} still differ in ${v.differing.length} rows${v.tables.some((t) => t.state === 'shape differs') ? ' and in table shapes' : ''}:`);
    for (const d of v.differing.slice(0, 50)) lines.push(`  ${d.table}  ${d.identity}  ${d.difference}`);
    lines.push('see `spokesync verify --config F`; `spokesync repair --config F` makes them equal');
  }
  lines.push(`bytes moved by the comparisons: ${j.bytes}`);
  return lines.join('\n');
}
