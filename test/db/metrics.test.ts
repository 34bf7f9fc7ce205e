// GET /metrics: behind the admin token; scraped and parsed as the Prometheus
// text format: every metric has HELP and TYPE, and after an exchange the
// counters, gauges and histograms of the peer have values on both sides.
// Conflicts nobody has reviewed yet have a gauge of their own, and show in
// status.json of the node above.
import t, { type Test } from 'tap';
import type { StatusDoc } from '../../agent/admin/status-doc.js';
import { settle, startNode, stopNode, uuid } from '../helpers/sync-net.js';

const ROOT_ADMIN = 'root-admin-token-metrics-0123';
const LEAF_ADMIN = 'leaf-admin-token-metrics-0123';

interface Sample { readonly name: string; readonly labels: Record<string, string>; readonly value: number }
interface Scrape { readonly help: Map<string, string>; readonly type: Map<string, string>; readonly samples: Sample[] }

/** The text format (version 0.0.4), strictly: a line that is not a comment or a sample is an error. */
function parse(text: string): Scrape {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (m) {
      (m[1] === 'HELP' ? help : type).set(m[2]!, m[3]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not the text format: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { help, type, samples };
}

/** The metric family a sample belongs to (a histogram's _bucket, _sum, _count). */
function family(s: Scrape, name: string): string | undefined {
  for (const f of [name, name.replace(/_(bucket|sum|count)$/, '')]) if (s.type.has(f)) return f;
  return undefined;
}

const value = (s: Scrape, name: string, labels: Record<string, string> = {}): number | undefined =>
  s.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value;

async function scrape(url: string, token: string): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`/metrics: ${res.status} ${await res.text()}`);
  if (!(res.headers.get('content-type') ?? '').startsWith('text/plain; version=0.0.4')) throw new Error(`content-type ${res.headers.get('content-type')}`);
  return parse(await res.text());
}

function wellFormed(t: Test, s: Scrape, who: string): void {
  t.ok(s.samples.length > 0, `${who}: samples`);
  const families = new Set([...s.type.keys()]);
  t.same([...families].filter((f) => !s.help.has(f)), [], `${who}: every metric has HELP`);
  t.same([...s.help.keys()].filter((f) => !families.has(f)), [], `${who}: and TYPE`);
  t.same(s.samples.filter((x) => family(s, x.name) === undefined).map((x) => x.name), [], `${who}: every sample belongs to a declared metric`);
  t.same(s.samples.filter((x) => Number.isNaN(x.value)).map((x) => x.name), [], `${who}: every value a number`);
}

void t.test('/metrics: the text format, with values for a peer after an exchange', async (t) => {
  const root = await startNode({ id: 'root', listen: true, admin: { token: ROOT_ADMIN }, children: [{ id: 'leaf', token: 'leaf-token-metrics' }] });
  t.teardown(() => stopNode(root));
  const leaf = await startNode({
    id: 'leaf', admin: { token: LEAF_ADMIN, listen: true }, parent: { url: `http://127.0.0.1:${root.config.listen!.port}`, token: 'leaf-token-metrics' },
  });
  t.teardown(() => stopNode(leaf));

  t.equal((await fetch(`${root.adminUrl!}/metrics`)).status, 401, 'no token: 401');
  t.equal((await fetch(`${root.adminUrl!}/metrics`, { headers: { authorization: `Bearer ${LEAF_ADMIN}` } })).status, 401, 'another node\'s token: 401');

  await leaf.sql(`INSERT INTO person (uuid, name) VALUES (?, 'counted')`, [uuid('m', 1)]);
  await leaf.sql(`INSERT INTO person (uuid, name) VALUES (?, 'counted too')`, [uuid('m', 2)]);
  await settle([root, leaf], [leaf]);
  const startedS = Date.now() / 1000;

  const r = await scrape(root.adminUrl!, ROOT_ADMIN);
  wellFormed(t, r, 'root');
  t.equal(r.type.get('spokesync_changesets_received_total'), 'counter');
  t.equal(r.type.get('spokesync_exchange_duration_seconds'), 'histogram');
  t.equal(r.type.get('spokesync_pending_changesets'), 'gauge');
  t.equal(value(r, 'spokesync_changesets_received_total', { peer: 'leaf' }), 2, 'root received leaf\'s two change sets');
  t.equal(value(r, 'spokesync_changesets_applied_total', { peer: 'leaf' }), 2, 'and applied them');
  t.ok(value(r, 'spokesync_changesets_sent_total', { peer: 'leaf' }) !== undefined, 'sent to leaf: counted');
  t.equal(value(r, 'spokesync_pending_changesets', { peer: 'leaf' }), 0, 'nothing pending toward leaf');
  const last = value(r, 'spokesync_last_success_timestamp_seconds', { peer: 'leaf' });
  t.ok(last !== undefined && last > startedS - 120 && last <= startedS + 1, `leaf's last success, a recent Unix time (${last})`);
  t.ok((value(r, 'spokesync_exchange_duration_seconds_count', { peer: 'leaf', result: 'ok' }) ?? 0) > 0, 'rounds with leaf timed');
  t.ok((value(r, 'spokesync_exchange_bytes_sum', { peer: 'leaf', direction: 'received' }) ?? 0) > 0, 'bytes from leaf');
  t.ok((value(r, 'spokesync_exchanges_total', { peer: 'leaf', result: 'ok' }) ?? 0) > 0, 'rounds with leaf counted');
  t.equal(value(r, 'spokesync_capture_running'), 1, 'capture runs');
  t.equal(value(r, 'spokesync_capture_lag_bytes'), 0, 'and is not behind');
  t.equal(value(r, 'spokesync_quarantined_changesets'), 0);
  t.equal(value(r, 'spokesync_held_changesets'), 0);
  t.equal(value(r, 'spokesync_conflicts'), 0);
  t.equal(value(r, 'spokesync_nodes'), 2, 'root and leaf');
  t.ok((value(r, 'process_resident_memory_bytes') ?? 0) > 0, 'process memory');
  t.ok((value(r, 'nodejs_heap_size_used_bytes') ?? 0) > 0, 'heap');

  const l = await scrape(leaf.adminUrl!, LEAF_ADMIN);
  wellFormed(t, l, 'leaf');
  t.equal(value(l, 'spokesync_changesets_sent_total', { peer: 'root' }), 2, 'leaf sent its two change sets to root');
  t.ok((value(l, 'spokesync_changesets_captured_total') ?? 0) >= 2, 'and captured them');
  t.equal(value(l, 'spokesync_pending_changesets', { peer: 'root' }), 0, 'nothing pending toward root');
  t.ok(value(l, 'spokesync_last_success_timestamp_seconds', { peer: 'root' }) !== undefined, 'its last success with root');
  t.ok((value(l, 'spokesync_exchange_bytes_sum', { peer: 'root', direction: 'sent' }) ?? 0) > 0, 'bytes to root');

  // both edit one row: a conflict, unreviewed at first
  await root.sql(`UPDATE person SET name = 'root says' WHERE uuid = ?`, [uuid('m', 1)]);
  await leaf.sql(`UPDATE person SET name = 'leaf says' WHERE uuid = ?`, [uuid('m', 1)]);
  await settle([root, leaf], [leaf]);
  const unreviewed = async (n: typeof root): Promise<{ total: number; open: number }> => {
    const [c] = await n.node.db.query<{ total: number; open: number | null }>('SELECT COUNT(*) AS total, SUM(reviewed_at IS NULL) AS open FROM spokesync.conflicts');
    return { total: Number(c?.total), open: Number(c?.open ?? 0) };
  };
  const atRoot = await unreviewed(root);
  t.ok(atRoot.open > 0, `root recorded ${atRoot.open} conflicts`);
  const c1 = await scrape(root.adminUrl!, ROOT_ADMIN);
  wellFormed(t, c1, 'root with conflicts');
  t.equal(c1.type.get('spokesync_conflicts_unreviewed'), 'gauge');
  t.equal(value(c1, 'spokesync_conflicts'), atRoot.total);
  t.equal(value(c1, 'spokesync_conflicts_unreviewed'), atRoot.open, 'all unreviewed');
  await root.node.db.exec("UPDATE spokesync.conflicts SET reviewed_at = UTC_TIMESTAMP(6), reviewed_by = 'test' ORDER BY id LIMIT 1");
  const c2 = await scrape(root.adminUrl!, ROOT_ADMIN);
  t.equal(value(c2, 'spokesync_conflicts'), atRoot.total, 'a review keeps the conflict');
  t.equal(value(c2, 'spokesync_conflicts_unreviewed'), atRoot.open - 1, 'one reviewed');
  // the leaf's own count reaches the root with its report
  const atLeaf = await unreviewed(leaf);
  t.ok(atLeaf.open > 0, `leaf recorded ${atLeaf.open} conflicts`);
  await leaf.node.syncWithParent();
  const res = await fetch(`${root.adminUrl!}/status.json`, { headers: { authorization: `Bearer ${ROOT_ADMIN}` } });
  const leafNode = ((await res.json()) as StatusDoc).nodes.find((n) => n.id === 'leaf')!;
  t.match(leafNode.report, { conflicts: atLeaf.total, conflictsUnreviewed: atLeaf.open }, 'status.json: leaf\'s conflicts and its unreviewed ones');
  t.match(leafNode.alerts.find((a) => a.kind === 'conflicts'), { severity: 'warning', message: `${atLeaf.open} conflict${atLeaf.open === 1 ? '' : 's'} not reviewed yet: \`spokesync conflicts --unreviewed\` on leaf` });
  const c3 = await scrape(root.adminUrl!, ROOT_ADMIN);
  t.equal(value(c3, 'spokesync_node_alerts', { node: 'leaf', kind: 'conflicts', severity: 'warning' }), 1, 'and its alert');

  // a leaf that stops: the root's alert gauge says so
  await leaf.pause();
  await root.node.db.exec("UPDATE spokesync.peers SET last_success = '2020-01-01 00:00:00' WHERE peer = 'leaf'");
  const later = await scrape(root.adminUrl!, ROOT_ADMIN);
  t.equal(value(later, 'spokesync_node_alerts', { node: 'leaf', kind: 'silent', severity: 'error' }), 1, 'leaf silent');
  await leaf.resume();
});
