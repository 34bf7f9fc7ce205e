// GET /status: the status document (status-doc.ts) as one HTML page, rendered
// here from the same data /status.json serves; no external assets (it works
// offline), every value escaped. Also the small login form a browser without
// a session gets. Pure: a document in, HTML out.
import type { HistoryEntry } from './history.js';
import type { Alert, StatusDoc, StatusNode } from './status-doc.js';
import { ago, localTime } from './time.js';

/** how often the page reloads itself, in seconds */
export const REFRESH_S = 30;
/** exchanges shown per node */
const SHOWN_ROUNDS = 20;

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in HTML content and quoted attributes. */
export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

const STYLE = `
*{box-sizing:border-box}body{font:13px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f4f6f9}
header{background:#1f3a5f;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:16px;margin:0}header .meta{opacity:.85}header form{margin-left:auto}
main{padding:8px 16px;max-width:1340px}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
th,td{padding:4px 6px;border-bottom:1px solid #e3e7ee;text-align:left;vertical-align:top}
th{background:#e9eef5;font-weight:600;white-space:nowrap;position:sticky;top:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.node{font-weight:600;white-space:nowrap}.node .self{font-weight:400;color:#58627a}
.tree{color:#9aa3b5;font-family:monospace}
.when{white-space:nowrap}.ago{color:#58627a}
.alert{display:block;border-radius:3px;padding:1px 5px;margin:1px 0;font-size:12px}
.error{background:#fde2e1;color:#8a1c14;border-left:4px solid #d93025}
.warning{background:#fff3cd;color:#6b4e00;border-left:4px solid #e0a800}
.okay{color:#1e7b34}.mark{background:#fff3cd;color:#6b4e00;border-radius:3px;padding:0 3px;white-space:nowrap}
details{margin-top:2px}summary{cursor:pointer;color:#1f3a5f}
table.rounds{margin:4px 0;font-size:12px;box-shadow:none}table.rounds td,table.rounds th{padding:2px 5px}
.bad{color:#8a1c14}
.login{max-width:360px;margin:80px auto;background:#fff;padding:20px;box-shadow:0 1px 3px #0003}
.login input{width:100%;padding:6px;margin:8px 0;font:inherit}.login button{padding:6px 14px;font:inherit}
`;

function page(title: string, body: string, refresh: boolean): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
${refresh ? `<meta http-equiv="refresh" content="${REFRESH_S}">` : ''}<title>${esc(title)}</title><style>${STYLE}</style></head>
<body>${body}</body></html>
`;
}

/** The login form: it posts the token to POST /login, which sets the session cookie and comes back to `next`. */
export function loginPage(next = '/status', failed = false): string {
  return page('spokesync: log in', `<form class="login" method="post" action="/login">
<h1>spokesync</h1><p>Enter the admin token (<code>admin.token</code>) to see the status of the network.</p>
${failed ? '<p class="alert error">wrong token</p>' : ''}<input type="password" name="token" autocomplete="current-password" required autofocus aria-label="admin token">
<input type="hidden" name="next" value="${esc(next)}"><button type="submit">Log in</button></form>`, false);
}

/** A time with its zone and how long ago, or a dash. */
function when(iso: string | null | undefined, nowMs: number): string {
  if (!iso) return '<span class="ago">never</span>';
  return `<span class="when">${esc(localTime(iso))}</span><br><span class="ago">${esc(ago(iso, nowMs))}</span>`;
}

/** A length of time in its largest whole unit. */
function span(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : s < 172_800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86_400)} days`;
}

const num = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : esc(v.toLocaleString('en-US')));

function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return esc(`${u === 0 ? v : v.toFixed(1)} ${units[u]}`);
}

function alertsCell(alerts: readonly Alert[]): string {
  if (alerts.length === 0) return '<span class="okay">ok</span>';
  return alerts.map((a) => `<span class="alert ${a.severity}" data-kind="${esc(a.kind)}"><b>${esc(a.kind)}</b>: ${esc(a.message)}</span>`).join('');
}

function rounds(history: readonly HistoryEntry[], nowMs: number): string {
  if (history.length === 0) return '<span class="ago">no exchanges recorded</span>';
  const shown = history.slice(0, SHOWN_ROUNDS);
  const failed = history.filter((h) => h.result !== 'ok').length;
  const rows = shown.map((h) => `<tr><td class="when">${esc(localTime(h.at))} <span class="ago">${esc(ago(h.at, nowMs))}</span></td>`
    + `<td class="num">${esc((h.durationMs / 1000).toFixed(2))} s</td><td class="num">${bytes(h.bytesUp)}</td><td class="num">${bytes(h.bytesDown)}</td>`
    + `<td class="num">${num(h.setsUp)}</td><td class="num">${num(h.setsDown)}</td><td${h.result === 'ok' ? '' : ' class="bad"'}>${esc(h.result)}</td></tr>`).join('');
  return `<details><summary>${history.length} exchange${history.length === 1 ? '' : 's'}${failed > 0 ? `, <span class="bad">${failed} failed</span>` : ''}</summary>
<table class="rounds"><tr><th>time</th><th class="num">duration</th><th class="num">bytes up</th><th class="num">bytes down</th><th class="num">sets up</th><th class="num">sets down</th><th>result</th></tr>${rows}</table></details>`;
}

/** Conflicts, with those nobody has reviewed yet marked (an older node does not say). */
function conflictsCell(r: StatusNode['report']): string {
  if (!r) return '–';
  const open = r.conflictsUnreviewed ?? 0;
  return open > 0 ? `${num(r.conflicts)} <span class="mark" data-unreviewed="${esc(open)}">(${num(open)} unreviewed)</span>` : num(r.conflicts);
}

function nodeRow(n: StatusNode, nowMs: number): string {
  const r = n.report;
  const indent = n.depth === 0 ? '' : `<span class="tree">${'&nbsp;&nbsp;&nbsp;'.repeat(n.depth - 1)}└─&nbsp;</span>`;
  const lag = r ? `${r.capture.lagSeconds === null ? '–' : `${num(r.capture.lagSeconds)} s`} <span class="ago">${bytes(r.capture.behindBytes)}</span>` : '–';
  const held = r ? (r.held.count > 0 ? `${num(r.held.count)}<br><span class="ago">${esc(r.held.tables.join(', '))}</span>` : '0') : '–';
  const attempt = n.lastAttempt && n.lastResult && n.lastResult !== 'ok'
    ? `<br><span class="bad">last attempt ${esc(ago(n.lastAttempt, nowMs))}: ${esc(n.lastResult)}</span>` : '';
  return `<tr data-node="${esc(n.id)}"><td class="node">${indent}${esc(n.id)}${n.self ? ' <span class="self">(this node)</span>' : ''}</td>`
    + `<td>${n.parent === null ? '<span class="ago">root</span>' : when(n.lastSuccess, nowMs)}${attempt}</td>`
    + `<td class="num">${lag}</td><td class="num">${r ? num(r.pending.up) : '–'}</td><td class="num">${r ? num(r.pending.down) : '–'}</td>`
    + `<td class="num">${r ? num(r.quarantined) : '–'}</td><td class="num">${held}</td><td class="num">${conflictsCell(r)}</td>`
    + `<td>${r ? `${esc(r.software)}<br><span class="ago">state ${esc(r.stateVersion)}</span>` : '–'}</td>`
    + `<td>${alertsCell(n.alerts)}${r ? '' : '<span class="ago">no report yet</span>'}</td></tr>`
    // the root of the network exchanges with no parent: it has no history to show
    + (n.parent === null ? '' : `<tr class="history"><td></td><td colspan="9">${rounds(n.history, nowMs)}</td></tr>`);
}

/** The status page of a document. */
export function statusPage(doc: StatusDoc): string {
  const nowMs = Date.parse(doc.generatedAt);
  const errors = doc.nodes.reduce((k, n) => k + n.alerts.filter((a) => a.severity === 'error').length, 0);
  const warnings = doc.nodes.reduce((k, n) => k + n.alerts.filter((a) => a.severity === 'warning').length, 0);
  const summary = `${doc.nodes.length} node${doc.nodes.length === 1 ? '' : 's'}, `
    + (errors + warnings === 0 ? '<span>no alerts</span>' : `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`);
  return page(`spokesync: ${doc.node}`, `<header><h1>spokesync: ${esc(doc.node)}</h1>
<span class="meta">${summary}</span><span class="meta">as of ${esc(localTime(doc.generatedAt))}, refreshed every ${REFRESH_S} s; a node is silent after ${esc(span(doc.silentAfterMs))}</span>
<form method="post" action="/logout"><button type="submit">Log out</button></form></header>
<main><table><thead><tr><th>node</th><th>last success</th><th class="num">lag <span class="ago">(behind)</span></th><th class="num">pending up</th><th class="num">pending down</th><th class="num">quarantined</th><th class="num">held</th><th class="num">conflicts</th><th>version</th><th>alerts</th></tr></thead>
<tbody>${doc.nodes.map((n) => nodeRow(n, nowMs)).join('\n')}</tbody></table>
<p class="ago">The same data: <a href="/status.json">status.json</a>. Times are this server's local time with its offset.</p></main>`, true);
}
