// The status page escapes every value it shows: a report, a result or an alert
// carrying markup shows as text, never as markup. Conflicts show with those
// nobody has reviewed yet, marked.
import t from 'tap';
import type { NodeReport } from '../../agent/admin/report.js';
import type { StatusDoc } from '../../agent/admin/status-doc.js';
import { esc, loginPage, statusPage } from '../../agent/admin/status-page.js';

const EVIL = '<script>alert("x")</script>&\'';

const report = (node: string, parent: string | null): NodeReport => ({
  node, parent, at: '2026-05-01T12:00:00.000Z', software: EVIL, stateVersion: 8, schema: { hash: 'abc', tables: 4 },
  capture: { running: false, position: null, behindBytes: 2048, lagSeconds: 3, error: EVIL },
  pending: { up: 1, down: 2 }, quarantined: 1, held: { count: 1, tables: [EVIL] }, conflicts: 5, conflictsUnreviewed: 0,
  lastSuccess: null, lastError: { at: '2026-05-01T11:00:00.000Z', error: EVIL }, stateBytes: 1,
});

const doc: StatusDoc = {
  node: 'root', generatedAt: '2026-05-01T12:00:00.000Z', silentAfterMs: 86_400_000,
  nodes: [
    { id: 'root', parent: null, depth: 0, self: true, report: report('root', null), receivedAt: null, lastSuccess: null, lastAttempt: null, lastResult: null, clockOffsetMs: null, alerts: [], history: [] },
    {
      id: 'kid"><b', parent: 'root', depth: 1, self: false, report: report('kid', 'root'), receivedAt: null,
      lastSuccess: '2026-04-28T12:00:00.000Z', lastAttempt: '2026-05-01T11:59:00.000Z', lastResult: EVIL, clockOffsetMs: 0,
      alerts: [{ kind: 'silent', severity: 'error', message: EVIL }],
      history: [{ at: '2026-05-01T11:59:00.000Z', durationMs: 1500, bytesUp: 10, bytesDown: 20, setsUp: 1, setsDown: 0, result: EVIL }],
    },
  ],
};

void t.test('every value escaped', async (t) => {
  t.equal(esc(EVIL), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
  const html = statusPage(doc);
  t.notMatch(html, /<script/i, 'no markup from the data');
  t.notOk(html.includes('kid"><b'), 'nor out of an attribute');
  t.match(html, '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;', 'shown as text');
  t.match(html, 'data-node="kid&quot;&gt;&lt;b"');
  t.match(html, /3 days ago/, 'how long ago');
  t.match(html, /class="alert error" data-kind="silent"/, 'the alert in its colour');
  t.notMatch(loginPage('/status"><script>'), /<script/i, 'the login form escapes its next path');
  t.notMatch(html, /(src|href)="(https?:)?\/\//, 'nothing loaded from elsewhere');
});

void t.test('conflicts: the unreviewed ones, marked; none, or an older node that does not say, plain', async (t) => {
  const withCounts = (conflictsUnreviewed: number | null): StatusDoc => ({
    ...doc, nodes: doc.nodes.map((n) => (n.report ? { ...n, report: { ...n.report, conflicts: 12, conflictsUnreviewed } } : n)),
  });
  const cell = (html: string, node: string): string => {
    const row = html.slice(html.indexOf(`<tr data-node="${node}">`));
    return row.slice(0, row.indexOf('</tr>')).split('<td class="num">')[6]!.split('</td>')[0]!;
  };
  const marked = statusPage(withCounts(3));
  t.equal(cell(marked, 'root'), '12 <span class="mark" data-unreviewed="3">(3 unreviewed)</span>', '12 (3 unreviewed), marked');
  t.match(marked, /\.mark\{background:#fff3cd/, 'in yellow, not red');
  t.equal(cell(statusPage(withCounts(0)), 'root'), '12', 'all reviewed: the count alone');
  t.equal(cell(statusPage(withCounts(null)), 'root'), '12', 'an older node: the count alone');
});
