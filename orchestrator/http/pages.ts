import { randomBytes } from 'node:crypto';

/**
 * The dashboard's pages: plain HTML with inline CSS and vanilla JS, no build step and no
 * external asset (codegod runs offline). The server renders only the frame; each page's
 * script reads the JSON API and builds the DOM with `textContent` and `setAttribute`, never
 * `innerHTML`, so text an LLM wrote (titles, outputs, reasoning) is shown, never run. The
 * few values the server itself puts into the HTML go through `escapeHtml`. Every page is
 * sent with a Content-Security-Policy that allows only its own nonce-tagged script and style
 * and connections to this origin, as a second wall.
 */

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const CSS = `
:root {
  --bg: #f6f7f9; --panel: #ffffff; --ink: #1f2933; --muted: #6b7785; --line: #e3e7ec;
  --pending: #94a3b8; --pending-bg: #f1f5f9; --queued: #2563eb; --queued-bg: #dbeafe;
  --running: #d97706; --running-bg: #fef3c7; --succeeded: #16a34a; --succeeded-bg: #dcfce7;
  --failed: #dc2626; --failed-bg: #fee2e2; --muted-bg: #f8fafc; --muted-line: #cbd5e1;
  --followup: #7c3aed; --accent: #0f766e;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: var(--bg); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; align-items: center; gap: 28px; padding: 0 24px; height: 52px; background: #111827; color: #e5e7eb; }
header.top .brand { color: #fff; font-weight: 700; font-size: 17px; letter-spacing: .3px; }
header.top nav { display: flex; gap: 4px; }
header.top nav a { color: #cbd5e1; padding: 6px 12px; border-radius: 6px; }
header.top nav a.active, header.top nav a:hover { background: #1f2937; color: #fff; text-decoration: none; }
main { padding: 20px 24px 40px; max-width: 1500px; margin: 0 auto; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 22px 0 8px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; }
.muted { color: var(--muted); }
.mono, pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #0f172a; color: #e2e8f0; padding: 10px 12px; border-radius: 8px; overflow: auto; max-height: 320px; white-space: pre-wrap; word-break: break-word; margin: 6px 0; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 9px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; }
tr:last-child td { border-bottom: 0; }
.goal-cell { max-width: 560px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; border: 1px solid transparent; white-space: nowrap; }
.badge.st-pending, .badge.st-planning { background: var(--pending-bg); color: #475569; border-color: var(--pending); }
.badge.st-queued { background: var(--queued-bg); color: var(--queued); }
.badge.st-running, .badge.st-busy { background: var(--running-bg); color: #92400e; }
.badge.st-succeeded, .badge.st-idle { background: var(--succeeded-bg); color: #166534; }
.badge.st-failed, .badge.st-stale { background: var(--failed-bg); color: #991b1b; }
.badge.st-skipped, .badge.st-cancelled, .badge.st-offline, .badge.st-stopping { background: var(--muted-bg); color: var(--muted); border-color: var(--muted-line); }
.bar { position: relative; height: 8px; width: 160px; background: #e5e7eb; border-radius: 4px; overflow: hidden; display: inline-block; vertical-align: middle; }
.bar > span { position: absolute; left: 0; top: 0; bottom: 0; background: var(--succeeded); }
.bar.wide { width: 100%; }
.banner { padding: 10px 14px; border-radius: 8px; margin: 0 0 14px; }
.banner.error { background: var(--failed-bg); color: #7f1d1d; border: 1px solid #fecaca; }
.banner.info { background: var(--queued-bg); color: #1e3a8a; border: 1px solid #bfdbfe; }
button { font: inherit; border: 1px solid var(--line); background: #fff; padding: 6px 14px; border-radius: 7px; cursor: pointer; }
button.primary { background: var(--accent); color: #fff; border-color: var(--accent); }
button.danger { color: var(--failed); border-color: #fecaca; }
button:disabled { opacity: .5; cursor: default; }
form.row textarea { flex: 1; width: auto; min-width: 240px; }
textarea { width: 100%; font: inherit; padding: 8px 10px; border: 1px solid var(--line); border-radius: 8px; resize: vertical; min-height: 44px; }
.row { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
.spacer { flex: 1; }
.stats { display: flex; gap: 26px; flex-wrap: wrap; margin-top: 12px; }
.stat .v { font-size: 18px; font-weight: 650; }
.stat .k { font-size: 11.5px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.legend { display: flex; gap: 14px; flex-wrap: wrap; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 11px; height: 11px; border-radius: 3px; margin-right: 5px; vertical-align: -1px; border: 1.5px solid; }
.graph-wrap { overflow: auto; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; margin-top: 12px; min-height: 140px; }
.graph-empty { padding: 40px; text-align: center; color: var(--muted); }
svg.dag { display: block; }
svg.dag .edge { fill: none; stroke: #c3cad3; stroke-width: 1.6; }
svg.dag .edge.done { stroke: #86c79c; }
svg.dag .node { cursor: pointer; }
svg.dag .node .box { stroke-width: 2; }
svg.dag .node:hover .box, svg.dag .node:focus .box { stroke-width: 3; }
svg.dag .node:focus { outline: none; }
svg.dag .node.selected .box { stroke-width: 3.5; }
svg.dag .node .nid { font-weight: 650; font-size: 13px; fill: var(--ink); }
svg.dag .node .ntitle { font-size: 12px; fill: #4b5563; }
svg.dag .node .nmeta { font-size: 11px; fill: var(--muted); }
svg.dag .st-pending .box { fill: var(--pending-bg); stroke: var(--pending); }
svg.dag .st-queued .box { fill: var(--queued-bg); stroke: var(--queued); }
svg.dag .st-running .box { fill: var(--running-bg); stroke: var(--running); animation: pulse 1.2s ease-in-out infinite; }
svg.dag .st-succeeded .box { fill: var(--succeeded-bg); stroke: var(--succeeded); }
svg.dag .st-failed .box { fill: var(--failed-bg); stroke: var(--failed); }
svg.dag .st-skipped .box, svg.dag .st-cancelled .box { fill: var(--muted-bg); stroke: var(--muted-line); stroke-dasharray: 5 4; }
svg.dag .st-skipped text, svg.dag .st-cancelled text { fill: #a3adb8; }
svg.dag .fu-tag { fill: var(--followup); }
svg.dag .fu-text { fill: #fff; font-size: 10px; font-weight: 650; }
svg.dag .node.followup .box { stroke: var(--followup); }
@keyframes pulse { 0%, 100% { stroke-opacity: 1; stroke-width: 2.5; } 50% { stroke-opacity: .3; stroke-width: 4; } }
.layout { display: grid; grid-template-columns: minmax(0, 1fr); gap: 16px; }
.layout.with-panel { grid-template-columns: minmax(0, 1fr) minmax(360px, 38%); }
aside.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; max-height: calc(100vh - 90px); overflow: auto; position: sticky; top: 12px; }
aside.panel h3 { margin: 0; font-size: 16px; }
.kv { display: grid; grid-template-columns: 110px 1fr; gap: 4px 12px; margin: 12px 0; font-size: 13px; }
.kv .k { color: var(--muted); }
.kv.facts { grid-template-columns: minmax(110px, max-content) 1fr; font-size: 12px; }
.kv > div { min-width: 0; overflow-wrap: anywhere; }
.desc { white-space: pre-wrap; overflow-wrap: anywhere; }
.error-box { background: var(--failed-bg); color: #7f1d1d; border-radius: 8px; padding: 8px 10px; margin: 8px 0; white-space: pre-wrap; word-break: break-word; }
details.iter { border: 1px solid var(--line); border-radius: 8px; margin: 10px 0; }
details.iter > summary { padding: 8px 12px; cursor: pointer; font-weight: 600; background: #fafbfc; border-radius: 8px; }
details.iter .body { padding: 4px 12px 10px; }
.phase { margin-top: 10px; }
.phase > .ph { font-size: 12px; font-weight: 700; text-transform: uppercase; letter-spacing: .05em; color: var(--accent); }
.phase > .ph .muted { text-transform: none; letter-spacing: 0; font-weight: 400; }
.phase ul, .phase ol { margin: 4px 0; padding-left: 20px; }
.step { margin: 6px 0; }
.ok { color: var(--succeeded); font-weight: 650; }
.bad { color: var(--failed); font-weight: 650; }
.events { max-height: 260px; overflow: auto; font-size: 12.5px; }
.legend i.lg-pending { background: var(--pending-bg); border-color: var(--pending); }
.legend i.lg-queued { background: var(--queued-bg); border-color: var(--queued); }
.legend i.lg-running { background: var(--running-bg); border-color: var(--running); }
.legend i.lg-succeeded { background: var(--succeeded-bg); border-color: var(--succeeded); }
.legend i.lg-failed { background: var(--failed-bg); border-color: var(--failed); }
.legend i.lg-muted { background: var(--muted-bg); border-color: var(--muted-line); border-style: dashed; }
.legend i.lg-followup { background: var(--followup); border-color: var(--followup); }
.events div { padding: 3px 0; border-bottom: 1px dashed var(--line); }
.events .t { color: var(--muted); margin-right: 8px; font-family: ui-monospace, Menlo, monospace; }
.conn { font-size: 12px; }
`;

/**
 * Helpers every page script uses. `h` builds elements from text only: children that are not
 * nodes become text nodes.
 */
const COMMON_JS = `
'use strict';
function h(tag, attrs) {
  var el = document.createElement(tag);
  setAttrs(el, attrs);
  for (var i = 2; i < arguments.length; i++) appendOne(el, arguments[i]);
  return el;
}
var SVG_NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs) {
  var el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  for (var i = 2; i < arguments.length; i++) appendOne(el, arguments[i]);
  return el;
}
function setAttrs(el, attrs) {
  if (!attrs) return;
  Object.keys(attrs).forEach(function (k) {
    var v = attrs[k];
    if (v === undefined || v === null || v === false) return;
    if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
  });
}
function appendOne(el, c) {
  if (c === undefined || c === null || c === false) return;
  if (Array.isArray(c)) { c.forEach(function (x) { appendOne(el, x); }); return; }
  el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
}
function append(el) {
  for (var i = 1; i < arguments.length; i++) appendOne(el, arguments[i]);
}
function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }
function fmtMs(ms) {
  if (ms === null || ms === undefined) return '\\u2014';
  if (ms < 1000) return Math.round(ms) + ' ms';
  var sec = ms / 1000;
  if (sec < 60) return sec.toFixed(sec < 10 ? 1 : 0) + ' s';
  var m = Math.floor(sec / 60);
  if (m < 60) return m + 'm ' + Math.floor(sec % 60) + 's';
  var hr = Math.floor(m / 60);
  if (hr < 48) return hr + 'h ' + (m % 60) + 'm';
  return Math.floor(hr / 24) + 'd ' + (hr % 24) + 'h';
}
function fmtAge(ts) { return ts ? fmtMs(Math.max(0, Date.now() - ts)) + ' ago' : '\\u2014'; }
function fmtNum(n) { return Number(n || 0).toLocaleString('en-US'); }
function clip(text, n) { text = String(text); return text.length > n ? text.slice(0, n - 1) + '\\u2026' : text; }
function badge(state) { return h('span', { class: 'badge st-' + state }, state); }
function progressBar(done, total, wide) {
  var pct = total > 0 ? Math.round((100 * done) / total) : 0;
  var fill = h('span');
  fill.style.width = pct + '%';
  return h('span', { class: 'bar' + (wide ? ' wide' : ''), title: done + ' of ' + total + ' tasks done' }, fill);
}
function buildHref(id) { return '/builds/' + encodeURIComponent(id); }
function api(path, opts) {
  opts = opts || {};
  var headers = { Accept: 'application/json' };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(path, { method: opts.method || 'GET', credentials: 'same-origin', headers: headers, body: opts.body }).then(function (res) {
    return res.json().catch(function () { return null; }).then(function (body) {
      if (!res.ok) throw new Error(body && body.error ? body.error.message : res.status + ' ' + res.statusText);
      return body;
    });
  });
}
function showError(where, err) {
  clear(where);
  if (err) append(where, h('div', { class: 'banner error' }, String(err.message || err)));
}
`;

const BUILDS_JS = `
var list = document.getElementById('builds');
var errors = document.getElementById('errors');
function row(b) {
  return h('tr', { 'data-build': b.id },
    h('td', null, h('a', { href: buildHref(b.id), class: 'mono' }, b.id)),
    h('td', { class: 'goal-cell', title: b.goal }, b.goal),
    h('td', null, badge(b.state)),
    h('td', null, progressBar(b.done, b.total), ' ', h('span', { class: 'muted' }, b.done + '/' + b.total)),
    h('td', { class: 'muted' }, fmtAge(b.createdAt)),
    h('td', { class: 'muted' }, b.finishedAt ? fmtMs(b.finishedAt - b.createdAt) : fmtMs(Date.now() - b.createdAt)));
}
function refresh() {
  return api('/api/builds?limit=100').then(function (data) {
    showError(errors, null);
    clear(list);
    if (data.builds.length === 0) append(list, h('tr', null, h('td', { colspan: 6, class: 'muted' }, 'No builds yet. Submit a goal above, or run codegod build "goal".')));
    data.builds.forEach(function (b) { list.appendChild(row(b)); });
  }).catch(function (err) { showError(errors, err); });
}
document.getElementById('submit').addEventListener('submit', function (e) {
  e.preventDefault();
  var goal = document.getElementById('goal').value;
  var button = document.getElementById('go');
  button.disabled = true;
  api('/api/builds', { method: 'POST', body: JSON.stringify({ goal: goal }) })
    .then(function (r) { location.href = buildHref(r.buildId); })
    .catch(function (err) { showError(errors, err); button.disabled = false; });
});
refresh();
setInterval(refresh, 3000);
`;

const AGENTS_JS = `
var list = document.getElementById('agents');
var errors = document.getElementById('errors');
function refresh() {
  return api('/api/agents').then(function (data) {
    showError(errors, data.malformed.length ? new Error('unreadable status entries: ' + data.malformed.join(', ')) : null);
    clear(list);
    if (data.agents.length === 0) append(list, h('tr', null, h('td', { colspan: 7, class: 'muted' }, 'No agent has reported yet.')));
    data.agents.forEach(function (a) {
      var tasks = a.currentTasks.map(function (t) {
        return h('div', null, h('a', { href: buildHref(t.buildId), class: 'mono' }, t.taskId), ' ', h('span', { class: 'muted' }, 'in ' + t.buildId + ', ' + fmtMs(Date.now() - t.since)));
      });
      list.appendChild(h('tr', { 'data-agent': a.agentId },
        h('td', { class: 'mono' }, a.agentId),
        h('td', null, a.role),
        h('td', null, badge(a.stale ? 'stale' : a.state)),
        h('td', null, tasks.length ? tasks : h('span', { class: 'muted' }, '\\u2014')),
        h('td', { class: a.stale ? 'bad' : 'muted' }, fmtMs(a.heartbeatAgeMs)),
        h('td', null, fmtNum(a.tasksCompleted), a.tasksFailed ? h('span', { class: 'bad' }, ' (' + a.tasksFailed + ' failed)') : null),
        h('td', { class: 'muted' }, a.host + ' \\u00b7 pid ' + a.pid + ' \\u00b7 up ' + fmtMs(Date.now() - a.startedAt))));
    });
  }).catch(function (err) { showError(errors, err); });
}
refresh();
setInterval(refresh, 2000);
`;

const BUILD_JS = `
var buildId = document.body.getAttribute('data-build-id');
var errors = document.getElementById('errors');
var W = 200, H = 64, COL = 60, ROW = 18, PAD = 20;
var TERMINAL = { succeeded: 1, failed: 1, skipped: 1, cancelled: 1 };
var detail = null, tasks = new Map(), selected = null, source = null, reloadTimer = null, panelTimer = null;

function load() {
  return api('/api/builds/' + encodeURIComponent(buildId)).then(function (d) {
    showError(errors, null);
    detail = d;
    tasks = new Map();
    d.tasks.forEach(function (t) { tasks.set(t.id, t); });
    renderHeader();
    renderGraph();
    renderReport();
    if (selected) loadPanel(selected);
    return d.lastEventId;
  }).catch(function (err) { showError(errors, err); throw err; });
}
function scheduleReload() {
  if (reloadTimer) return;
  reloadTimer = setTimeout(function () { reloadTimer = null; load().catch(function () {}); }, 250);
}

function counts() {
  var c = { total: 0, done: 0, running: 0, failed: 0 };
  tasks.forEach(function (t) {
    c.total++;
    if (TERMINAL[t.state]) c.done++;
    if (t.state === 'running') c.running++;
    if (t.state === 'failed') c.failed++;
  });
  return c;
}

function renderHeader() {
  var b = detail.build, c = counts();
  document.getElementById('state').replaceChildren(badge(b.state));
  document.getElementById('goal').textContent = b.goal;
  document.getElementById('summary').textContent = b.summary || '';
  document.getElementById('reason').replaceChildren(b.reason ? h('div', { class: b.state === 'failed' ? 'error-box' : 'banner info' }, b.reason) : '');
  var end = b.finishedAt || Date.now();
  var stats = [
    ['tasks done', c.done + ' / ' + c.total],
    ['running', c.running],
    ['failed', c.failed],
    ['elapsed', fmtMs(end - b.createdAt)],
    ['LLM calls', fmtNum(b.llmCalls)],
    ['tokens', fmtNum(b.tokens) + (b.budgetTokens ? ' / ' + fmtNum(b.budgetTokens) : '')],
    ['created', fmtAge(b.createdAt)]
  ];
  var statsBox = document.getElementById('stats');
  statsBox.replaceChildren.apply(statsBox, stats.map(function (kv) {
    return h('div', { class: 'stat' }, h('div', { class: 'v' }, kv[1]), h('div', { class: 'k' }, kv[0]));
  }));
  document.getElementById('progress').replaceChildren(progressBar(c.done, c.total, true));
  document.getElementById('cancel').hidden = !(b.state === 'running' || b.state === 'planning');
  document.getElementById('retry').hidden = !(c.failed > 0 && b.state !== 'cancelled');
}

function position(layers) {
  var pos = new Map();
  var rows = Math.max.apply(null, layers.map(function (l) { return l.length; }).concat([1]));
  var height = PAD * 2 + rows * H + (rows - 1) * ROW;
  layers.forEach(function (layer, i) {
    var colHeight = layer.length * H + (layer.length - 1) * ROW;
    var top = (height - colHeight) / 2;
    layer.forEach(function (id, j) { pos.set(id, { x: PAD + i * (W + COL), y: top + j * (H + ROW) }); });
  });
  return { pos: pos, width: PAD * 2 + layers.length * W + Math.max(0, layers.length - 1) * COL, height: height };
}

function metaText(t) {
  if (t.state === 'running') return t.role + ' \\u00b7 running' + (t.startedAt ? ' ' + fmtMs(Date.now() - t.startedAt) : '');
  if (t.durationMs !== null && t.durationMs !== undefined) return t.role + ' \\u00b7 ' + t.state + ' in ' + fmtMs(t.durationMs);
  return t.role + ' \\u00b7 ' + t.state;
}

function nodeFor(t, p) {
  var g = s('g', {
    class: 'node st-' + t.state + (t.followup ? ' followup' : '') + (selected === t.id ? ' selected' : ''),
    transform: 'translate(' + p.x + ',' + p.y + ')', tabindex: 0, role: 'button',
    'data-task': t.id, 'data-state': t.state, 'aria-label': t.id + ': ' + t.title + ' (' + t.state + ')'
  },
    s('title', null, t.id + ' \\u2014 ' + t.title + '\\n' + t.status),
    s('rect', { class: 'box', width: W, height: H, rx: 10 }),
    s('text', { class: 'nid', x: 14, y: 22 }, clip(t.id, t.followup ? 15 : 24)),
    s('text', { class: 'ntitle', x: 14, y: 40 }, clip(t.title, 29)),
    s('text', { class: 'nmeta', x: 14, y: 56 }, clip(metaText(t), 33)));
  if (t.followup) {
    g.appendChild(s('rect', { class: 'fu-tag', x: W - 68, y: 8, width: 60, height: 17, rx: 8.5 }));
    g.appendChild(s('text', { class: 'fu-text', x: W - 38, y: 20, 'text-anchor': 'middle' }, 'follow-up'));
  }
  g.addEventListener('click', function () { select(t.id); });
  g.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(t.id); } });
  return g;
}

function renderGraph() {
  var wrap = document.getElementById('graph');
  clear(wrap);
  if (tasks.size === 0) {
    append(wrap, h('div', { class: 'graph-empty' }, detail.build.state === 'planning'
      ? 'Planning: the orchestrator is asking the LLM to break the goal into tasks\\u2026'
      : 'This build has no tasks.'));
    return;
  }
  var layout = position(detail.layers);
  // Shrunk to fit the column, down to 60%; a larger graph scrolls instead.
  var room = wrap.clientWidth - 2;
  var scale = room > 0 && layout.width > room ? Math.max(0.6, room / layout.width) : 1;
  var svg = s('svg', { class: 'dag', width: Math.round(layout.width * scale), height: Math.round(layout.height * scale), viewBox: '0 0 ' + layout.width + ' ' + layout.height, role: 'img', 'aria-label': 'task graph' });
  svg.appendChild(s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    s('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#9aa5b1' }))));
  var edges = s('g', { class: 'edges' });
  tasks.forEach(function (t) {
    var to = layout.pos.get(t.id);
    t.deps.forEach(function (d) {
      var from = layout.pos.get(d);
      if (!from || !to) return;
      var x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x - 2, y2 = to.y + H / 2, dx = Math.max(24, (x2 - x1) / 2);
      var dep = tasks.get(d);
      edges.appendChild(s('path', {
        class: 'edge' + (dep && dep.state === 'succeeded' ? ' done' : ''), 'data-from': d, 'data-to': t.id,
        d: 'M ' + x1 + ' ' + y1 + ' C ' + (x1 + dx) + ' ' + y1 + ', ' + (x2 - dx) + ' ' + y2 + ', ' + x2 + ' ' + y2,
        'marker-end': 'url(#arrow)'
      }));
    });
  });
  svg.appendChild(edges);
  var nodes = s('g', { class: 'nodes' });
  tasks.forEach(function (t) { var p = layout.pos.get(t.id); if (p) nodes.appendChild(nodeFor(t, p)); });
  svg.appendChild(nodes);
  wrap.appendChild(svg);
}

function updateNode(t) {
  var g = document.querySelector('svg.dag g.node[data-task="' + CSS.escape(t.id) + '"]');
  if (!g || !detail) { scheduleReload(); return; }
  var p = g.getAttribute('transform').match(/-?[0-9.]+/g);
  var fresh = nodeFor(t, { x: Number(p[0]), y: Number(p[1]) });
  g.replaceWith(fresh);
  document.querySelectorAll('svg.dag path.edge[data-from="' + CSS.escape(t.id) + '"]').forEach(function (e) {
    e.setAttribute('class', 'edge' + (t.state === 'succeeded' ? ' done' : ''));
  });
}

function setState(id, state, extra) {
  var t = tasks.get(id);
  if (!t) { scheduleReload(); return; }
  t.state = state;
  if (extra) Object.keys(extra).forEach(function (k) { if (extra[k] !== undefined) t[k] = extra[k]; });
  if (state === 'succeeded' && t.startedAt && t.finishedAt) t.durationMs = t.finishedAt - t.startedAt;
  t.status = state;
  updateNode(t);
  renderHeader();
  if (selected === id) loadPanel(id);
}

function logEvent(ev) {
  var log = document.getElementById('events');
  var time = new Date(ev.at).toLocaleTimeString('en-GB');
  var what = [ev.task, ev.state, ev.worker ? 'on ' + ev.worker : null, ev.reason].filter(Boolean).join(' \\u00b7 ');
  log.insertBefore(h('div', null, h('span', { class: 't' }, time), h('b', null, ev.type), ' ', clip(what, 300)), log.firstChild);
  while (log.childNodes.length > 300) log.removeChild(log.lastChild);
}

function apply(ev) {
  logEvent(ev);
  switch (ev.type) {
    case 'task.queued': setState(ev.task, 'queued', { queuedAt: ev.at }); break;
    case 'task.started': setState(ev.task, 'running', { startedAt: ev.at, attempts: ev.attempt, worker: ev.worker, durationMs: null }); break;
    case 'task.succeeded':
      // A task that started and finished within one turn of its worker has no task.started event: its start rides here.
      setState(ev.task, 'succeeded', ev.startedAt ? { finishedAt: ev.at, startedAt: ev.startedAt, attempts: ev.attempt, worker: ev.worker } : { finishedAt: ev.at });
      break;
    case 'task.failed': setState(ev.task, 'failed', { finishedAt: ev.at, error: ev.reason }); break;
    case 'task.skipped': setState(ev.task, 'skipped'); break;
    case 'task.cancelled': setState(ev.task, 'cancelled'); break;
    case 'task.retried': setState(ev.task, ev.state || 'pending', { error: null, durationMs: null }); break;
    case 'build.finished':
    case 'build.cancelled':
      if (detail) { detail.build.state = ev.state; detail.build.finishedAt = ev.at; renderHeader(); }
      scheduleReload();
      break;
    case 'build.created': case 'build.grown': case 'build.reopened': case 'build.report': case 'build.planned':
      scheduleReload();
      break;
  }
}

function connect(from) {
  if (source) source.close();
  var conn = document.getElementById('conn');
  source = new EventSource('/api/builds/' + encodeURIComponent(buildId) + '/events' + (from ? '?from=' + encodeURIComponent(from) : ''));
  source.onopen = function () { conn.textContent = '\\u25cf live'; conn.className = 'conn ok'; };
  source.onmessage = function (m) { apply(JSON.parse(m.data)); };
  source.addEventListener('end', function () {
    source.close();
    source = null;
    conn.textContent = 'build ended'; conn.className = 'conn muted';
    scheduleReload();
  });
  source.onerror = function () { if (source) { conn.textContent = 'reconnecting\\u2026'; conn.className = 'conn bad'; } };
}

function renderReport() {
  var box = document.getElementById('report');
  clear(box);
  var r = detail.report;
  if (!r) return;
  append(box, h('h2', null, 'Report'), h('div', { class: 'card' },
    h('div', { class: 'stats' },
      [['wall time', fmtMs(r.wallMs)], ['critical path', fmtMs(r.criticalPathMs)], ['LLM calls', fmtNum(r.llm.calls)],
       ['prompt tokens', fmtNum(r.llm.promptTokens)], ['completion tokens', fmtNum(r.llm.completionTokens)], ['files written', r.files.length]]
        .map(function (kv) { return h('div', { class: 'stat' }, h('div', { class: 'v' }, kv[1]), h('div', { class: 'k' }, kv[0])); })),
    r.files.length ? h('div', { class: 'mono' }, h('h2', null, 'Files'), h('ul', null, r.files.slice(0, 200).map(function (f) { return h('li', null, f); }))) : null));
}

/* ---------- task panel ---------- */

function select(id) {
  selected = id;
  document.querySelectorAll('svg.dag g.node').forEach(function (g) {
    g.classList.toggle('selected', g.getAttribute('data-task') === id);
  });
  var layout = document.getElementById('layout');
  var opening = !layout.classList.contains('with-panel');
  layout.classList.add('with-panel');
  document.getElementById('panel').hidden = false;
  if (opening) renderGraph();
  loadPanel(id);
}
function closePanel() {
  selected = null;
  clearTimeout(panelTimer);
  document.getElementById('panel').hidden = true;
  document.getElementById('layout').classList.remove('with-panel');
  if (detail) renderGraph();
}
function loadPanel(id) {
  clearTimeout(panelTimer);
  return api('/api/builds/' + encodeURIComponent(buildId) + '/tasks/' + encodeURIComponent(id)).then(function (t) {
    if (selected !== id) return;
    renderPanel(t);
    if (!TERMINAL[t.state]) panelTimer = setTimeout(function () { if (selected === id) loadPanel(id); }, 2000);
  }).catch(function (err) { if (selected === id) showError(document.getElementById('panel-body'), err); });
}
function json(v) { return typeof v === 'string' ? v : JSON.stringify(v, null, 2); }
function phaseHead(name, ms, usage, extra) {
  var bits = [];
  if (ms !== undefined) bits.push(fmtMs(ms));
  if (usage) bits.push(fmtNum(usage.promptTokens + usage.completionTokens) + ' tokens');
  if (extra) bits.push(extra);
  return h('div', { class: 'ph' }, name, ' ', h('span', { class: 'muted' }, bits.join(' \\u00b7 ')));
}
function para(label, text) { return text ? h('div', null, h('span', { class: 'muted' }, label + ': '), text) : null; }
function listOf(items) { return items && items.length ? h('ul', null, items.map(function (x) { return h('li', null, x); })) : null; }
function renderIteration(it) {
  var body = h('div', { class: 'body' });
  if (it.observe) {
    var facts = Object.keys(it.observe.facts || {});
    append(body, h('div', { class: 'phase' }, phaseHead('Observe', it.observe.ms),
      listOf(it.observe.findings),
      facts.length ? h('div', { class: 'kv facts' }, facts.map(function (k) { return [h('div', { class: 'k mono' }, k), h('div', { class: 'mono' }, clip(json(it.observe.facts[k]), 400))]; })) : null));
  }
  if (it.reason) {
    var r = it.reason.output;
    append(body, h('div', { class: 'phase' }, phaseHead('Reason', it.reason.ms, it.reason.usage),
      para('Problem', r.problem_analysis), r.root_causes.length ? h('div', null, h('span', { class: 'muted' }, 'Root causes:'), listOf(r.root_causes)) : null,
      para('Approach', r.approach), r.risks.length ? h('div', null, h('span', { class: 'muted' }, 'Risks:'), listOf(r.risks)) : null,
      para('Success criteria', r.success_criteria), para('Conclusion', r.conclusion)));
  }
  if (it.plan) {
    append(body, h('div', { class: 'phase' }, phaseHead('Plan', it.plan.ms, it.plan.usage, 'confidence ' + it.plan.confidence + ' \\u00b7 estimated ' + it.plan.estimated_duration),
      h('ol', null, it.plan.steps.map(function (st) {
        return h('li', { class: 'step' }, h('b', { class: 'mono' }, st.action), ' ', h('span', { class: 'muted' }, st.expected), h('pre', null, json(st.params)));
      }))));
  }
  if (it.act) {
    append(body, h('div', { class: 'phase' }, phaseHead('Act', it.act.ms, null, it.act.done ? 'all steps ran' : 'stopped early'),
      it.act.steps.map(function (st) {
        var exit = st.exitCode === null || st.exitCode === undefined ? '' : ' \\u00b7 exit ' + st.exitCode;
        return h('div', { class: 'step', 'data-step': st.index },
          h('span', { class: st.ok ? 'ok' : 'bad' }, st.ok ? '\\u2713' : '\\u2717'), ' ', (st.index + 1) + '. ', h('b', { class: 'mono' }, st.action),
          h('span', { class: 'muted' }, exit + ' \\u00b7 ' + fmtMs(st.ms)),
          h('pre', null, json(st.params)), st.output ? h('pre', null, st.output) : null);
      })));
  }
  if (it.validate) {
    var v = it.validate;
    append(body, h('div', { class: 'phase' }, phaseHead('Validate', v.ms, v.usage),
      v.checks.map(function (c) {
        var what = c.kind + ' ' + c.target + (c.args && c.args.length ? ' ' + c.args.join(' ') : '') + (c.contains ? ' contains \\u201c' + c.contains + '\\u201d' : '');
        return h('div', { class: 'step' }, h('span', { class: c.ok ? 'ok' : 'bad' }, c.ok ? '\\u2713 ' : '\\u2717 '), h('span', { class: 'mono' }, what), c.output ? h('pre', null, c.output) : null);
      }),
      h('div', null, 'Verdict: ', h('span', { class: v.valid ? 'ok' : 'bad' }, v.valid ? 'valid' : 'not valid'), v.output ? ' \\u2014 ' + v.output : '')));
  }
  if (it.failure) append(body, h('div', { class: 'error-box' }, 'Iteration failed: ' + it.failure));
  var verdict = it.validate ? (it.validate.valid ? 'valid' : 'not valid') : it.failure ? 'failed' : 'in progress';
  var ms = ['observe', 'reason', 'plan', 'act', 'validate'].reduce(function (sum, k) { return sum + (it[k] ? it[k].ms : 0); }, 0);
  return h('details', { class: 'iter', open: true, 'data-iteration': it.n },
    h('summary', null, 'Iteration ' + it.n + ' \\u2014 ' + verdict + ' \\u00b7 ' + fmtMs(ms)), body);
}
function renderPanel(t) {
  var panel = document.getElementById('panel');
  var scroll = panel.scrollTop;
  renderPanelBody(t);
  panel.scrollTop = scroll;
}
function renderPanelBody(t) {
  document.getElementById('panel-title').textContent = t.id;
  document.getElementById('panel-state').replaceChildren(badge(t.state));
  var body = document.getElementById('panel-body');
  clear(body);
  var kv = [
    ['Title', t.title], ['Role', t.role], ['Status', t.status], ['Attempts', t.attempts + (t.generation ? ' (run ' + (t.generation + 1) + ')' : '')],
    ['Duration', t.durationMs !== null ? fmtMs(t.durationMs) : t.state === 'running' && t.startedAt ? fmtMs(Date.now() - t.startedAt) + ' so far' : '\\u2014'],
    ['Tokens', fmtNum(t.tokensUsed)], ['Worker', t.worker || '\\u2014'], ['Origin', t.origin],
    ['Depends on', t.deps.length ? t.deps.join(', ') : '\\u2014'], ['Dependents', t.dependents.length ? t.dependents.join(', ') : '\\u2014']
  ];
  append(body, h('div', { class: 'kv' }, kv.map(function (p) { return [h('div', { class: 'k' }, p[0]), h('div', null, p[1])]; })));
  if (t.state === 'failed') append(body, h('button', { class: 'danger', onclick: function () { retry(t.id); } }, 'Retry this task'));
  if (t.error) append(body, h('div', { class: 'error-box' }, t.error));
  if (t.lastError) append(body, h('div', { class: 'muted' }, 'Re-planned after: ' + t.lastError));
  append(body, h('h2', null, 'Description'), h('div', { class: 'card' }, h('div', { class: 'desc' }, t.description), listOf(t.acceptanceCriteria)));
  if (t.result && typeof t.result === 'object') {
    var r = t.result;
    append(body, h('h2', null, 'Result'), h('div', { class: 'card' },
      r.output !== undefined ? para('Output', r.output) : null,
      r.validation ? h('div', null, 'Validation: ', h('span', { class: r.validation.valid ? 'ok' : 'bad' }, r.validation.valid ? 'valid' : 'not valid'), ' ', r.validation.output) : null,
      r.iterations !== undefined ? para('Iterations', r.iterations + (r.wiped ? ' (memory wiped once)' : '')) : null,
      r.output === undefined ? h('pre', null, json(r)) : null));
  } else if (t.result !== null) {
    append(body, h('h2', null, 'Result'), h('pre', null, json(t.result)));
  }
  append(body, h('h2', null, 'Trace'));
  if (!t.trace) { append(body, h('div', { class: 'muted' }, t.state === 'pending' || t.state === 'queued' ? 'Not started yet.' : 'No ORPAV trace recorded for this task.')); return; }
  append(body, h('div', { class: 'muted' }, 'Loop ' + t.trace.status + (t.trace.outcome ? ': ' + t.trace.outcome : '') + (t.trace.wiped ? ' \\u00b7 working memory wiped at iteration ' + t.trace.wipedAt : '')));
  t.trace.iterations.forEach(function (it) { body.appendChild(renderIteration(it)); });
}

function retry(taskId) {
  api('/api/builds/' + encodeURIComponent(buildId) + '/retry', { method: 'POST', body: JSON.stringify(taskId ? { taskId: taskId } : {}) })
    .then(function () { if (!source) connect(detail && detail.lastEventId); scheduleReload(); })
    .catch(function (err) { showError(errors, err); });
}
document.getElementById('retry').addEventListener('click', function () { retry(null); });
document.getElementById('cancel').addEventListener('click', function () {
  if (!confirm('Cancel build ' + buildId + '? Running tasks are aborted.')) return;
  api('/api/builds/' + encodeURIComponent(buildId) + '/cancel', { method: 'POST', body: '{}' }).catch(function (err) { showError(errors, err); });
});
document.getElementById('panel-close').addEventListener('click', closePanel);
document.addEventListener('keydown', function (e) { if (e.key === 'Escape') closePanel(); });
var resizeTimer = null;
window.addEventListener('resize', function () {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(function () { if (detail) renderGraph(); }, 150);
});
setInterval(function () {
  if (!detail) return;
  tasks.forEach(function (t) { if (t.state === 'running') updateNode(t); });
  if (!detail.build.finishedAt) renderHeader();
}, 1000);
load().then(connect).catch(function () { setTimeout(function () { location.reload(); }, 5000); });
`;

type Nav = 'builds' | 'agents';

interface Frame {
  title: string;
  nav?: Nav;
  body: string;
  script: string;
  /** Attributes of <body>, already escaped by the caller through `attr`. */
  bodyAttrs?: string;
}

function attr(name: string, value: string): string {
  return ` ${name}="${escapeHtml(value)}"`;
}

function frame(nonce: string, f: Frame): string {
  const link = (href: string, label: string, key?: Nav) => `<a href="${href}"${key && f.nav === key ? ' class="active"' : ''}>${label}</a>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${escapeHtml(f.title)} · codegod</title>
<style nonce="${nonce}">${CSS}</style>
</head>
<body${f.bodyAttrs ?? ''}>
<header class="top"><a class="brand" href="/">codegod</a><nav>${link('/', 'Builds', 'builds')}${link('/agents', 'Agents', 'agents')}${link('/queues', 'Queues')}${link('/metrics', 'Metrics')}</nav></header>
<main>
${f.body}
</main>
<script nonce="${nonce}">${COMMON_JS}${f.script}</script>
</body>
</html>`;
}

export function buildsPage(nonce: string): string {
  return frame(nonce, {
    title: 'Builds',
    nav: 'builds',
    body: `<div id="errors"></div>
<form id="submit" class="card row" autocomplete="off">
  <textarea id="goal" name="goal" rows="1" placeholder="What should codegod build? e.g. Build a Flask + React app with a todo list" required></textarea>
  <button id="go" class="primary" type="submit">Start build</button>
</form>
<h2>Builds</h2>
<div class="card"><table>
  <thead><tr><th>Build</th><th>Goal</th><th>State</th><th>Progress</th><th>Age</th><th>Duration</th></tr></thead>
  <tbody id="builds"></tbody>
</table></div>`,
    script: BUILDS_JS,
  });
}

export function buildPage(nonce: string, buildId: string): string {
  return frame(nonce, {
    title: `Build ${buildId}`,
    nav: 'builds',
    bodyAttrs: attr('data-build-id', buildId),
    body: `<div id="errors"></div>
<div class="card">
  <div class="row"><h1 class="mono">${escapeHtml(buildId)}</h1><span id="state"></span><span id="conn" class="conn muted">connecting…</span><span class="spacer"></span>
    <button id="retry" class="danger" hidden>Retry failed tasks</button><button id="cancel" class="danger" hidden>Cancel build</button></div>
  <div id="goal"></div>
  <div id="summary" class="muted"></div>
  <div id="reason"></div>
  <div id="stats" class="stats"></div>
  <div id="progress"></div>
</div>
<div class="row">
  <h2>Tasks</h2><span class="spacer"></span>
  <div class="legend"><span><i class="lg-pending"></i>pending</span><span><i class="lg-queued"></i>queued</span><span><i class="lg-running"></i>running</span><span><i class="lg-succeeded"></i>succeeded</span><span><i class="lg-failed"></i>failed</span><span><i class="lg-muted"></i>skipped / cancelled</span><span><i class="lg-followup"></i>follow-up</span></div>
</div>
<div id="layout" class="layout">
  <div><div id="graph" class="graph-wrap"></div>
    <div id="report"></div>
    <h2>Events</h2><div id="events" class="card events"></div></div>
  <aside id="panel" class="panel" hidden>
    <div class="row"><h3 id="panel-title" class="mono"></h3><span id="panel-state"></span><span class="spacer"></span><button id="panel-close" type="button" aria-label="close">Close</button></div>
    <div id="panel-body"></div>
  </aside>
</div>`,
    script: BUILD_JS,
  });
}

export function agentsPage(nonce: string): string {
  return frame(nonce, {
    title: 'Agents',
    nav: 'agents',
    body: `<div id="errors"></div>
<h1>Agents</h1>
<p class="muted">Every worker process and the orchestrator, as they last reported (a heartbeat older than three periods marks an agent stale).</p>
<div class="card"><table>
  <thead><tr><th>Agent</th><th>Role</th><th>State</th><th>Current tasks</th><th>Heartbeat</th><th>Tasks done</th><th>Process</th></tr></thead>
  <tbody id="agents"></tbody>
</table></div>`,
    script: AGENTS_JS,
  });
}

/** A page without a script, for 401/404 answers to browsers. */
export function messagePage(nonce: string, title: string, lines: string[]): string {
  return frame(nonce, {
    title,
    body: `<div class="card"><h1>${escapeHtml(title)}</h1>${lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('')}</div>`,
    script: '',
  });
}
