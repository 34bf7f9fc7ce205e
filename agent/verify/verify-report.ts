// What `spokesync verify` prints: per table whether it agrees, each differing
// row by table and identity (never a value), the rows in flight apart, and
// the bytes the comparison moved. Pure.
import type { Comparison } from './compare.js';
import type { Traffic } from './verify-http.js';

export interface VerifyJson {
  readonly node: string;
  readonly peer: string;
  /** no differing row and no table whose shape differs */
  readonly identical: boolean;
  readonly tables: Comparison['tables'];
  readonly differing: { table: string; identity: string; difference: string }[];
  readonly inFlight: Comparison['inFlight'];
  readonly unnamed: Record<string, number>;
  readonly bytes: { sent: number; received: number; total: number };
  readonly rounds: number;
  readonly seconds: number;
}

export function isIdentical(c: Comparison): boolean {
  return c.differing.length === 0 && Object.keys(c.unnamed).length === 0
    && !c.tables.some((t) => t.state === 'shape differs' || t.state === 'differs');
}

export function verifyJson(node: string, peer: string, c: Comparison, traffic: Traffic, seconds: number): VerifyJson {
  return {
    node, peer, identical: isIdentical(c), tables: c.tables,
    differing: c.differing.map((d) => ({ table: d.table, identity: d.identity, difference: d.kind })),
    inFlight: c.inFlight, unnamed: c.unnamed,
    bytes: { sent: traffic.sent, received: traffic.received, total: traffic.sent + traffic.received },
    rounds: c.rounds, seconds,
  };
}

const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

/** The headline of sites that differ: rows, and tables whose shapes differ. */
function differences(v: VerifyJson, tables: number): string {
  const parts: string[] = [];
  const rows = v.differing.length + Object.values(v.unnamed).reduce((a, b) => a + b, 0);
  if (rows > 0) parts.push(`${count(rows, 'row')} differ${rows === 1 ? 's' : ''} in ${count(tables, 'table')}`);
  const shapes = v.tables.filter((t) => t.state === 'shape differs').length;
  if (shapes > 0) parts.push(`${count(shapes, 'table')} differ${shapes === 1 ? 's' : ''} in shape`);
  return parts.join('; ');
}

export function formatVerify(v: VerifyJson): string {
  const lines: string[] = [];
  const compared = v.tables.filter((t) => t.state !== 'not synced there' && t.state !== 'shape differs');
  const differ = v.tables.filter((t) => t.state === 'differs');
  lines.push(`${v.node} against ${v.peer}: ${count(compared.length, 'table')} compared, ` +
    (v.identical ? `identical${v.inFlight.length > 0 ? ` but for ${count(v.inFlight.length, 'row')} in flight` : ''}` : differences(v, differ.length)));
  const width = Math.max(5, ...v.tables.map((t) => t.table.length));
  for (const t of v.tables) {
    if (t.state === 'same') continue;
    const detail = t.state === 'shape differs' ? `shape differs: ${t.shape ?? ''}; make the schemas match`
      : t.state === 'not synced there' ? 'not synced with this node there (tables.include/exclude or children[].tables)'
        : `${t.state}: ${t.rowsHere} rows here, ${t.rowsThere} there`;
    lines.push(`  ${t.table.padEnd(width)}  ${detail}`);
  }
  if (v.differing.length > 0) {
    lines.push('', 'differing rows (table, identity, difference):');
    for (const d of v.differing) lines.push(`  ${d.table.padEnd(width)}  ${d.identity}  ${d.difference}`);
  }
  for (const [table, n] of Object.entries(v.unnamed)) {
    lines.push(`  ${table.padEnd(width)}  ${count(n, 'row')} whose identity cannot be computed (a key column refers to a missing row) differ`);
  }
  if (v.inFlight.length > 0) {
    lines.push('', 'in flight (changes on their way or waiting in quarantine or held; not differences):');
    for (const f of v.inFlight) lines.push(`  ${f.table.padEnd(width)}  ${f.identity}  ${f.at === 'both' ? 'here and there' : f.at}`);
  }
  lines.push('', `bytes moved: ${v.bytes.total} (sent ${v.bytes.sent}, received ${v.bytes.received}) in ${v.rounds} rounds, ${v.seconds.toFixed(1)} s`);
  return lines.join('\n');
}
