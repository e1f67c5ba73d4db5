// @ts-check
/**
 * A build's page (/builds/:id): its header and counters, the DAG as an SVG graph whose nodes
 * follow the build's event stream live, the report once it ended, and a panel with one
 * task's details and ORPAV trace.
 */
import { cancelBuild, eventsUrl, getBuild, getTask, retryBuild } from './api-client.js';
import { append, badge, byId, clear, clip, fmtAge, fmtMs, fmtNum, h, progressBar, s, showError } from './common.js';

/** @import { BuildDetailBody, TaskDetailBody, TaskSummary } from '../views.js' */
/** @import { BuildEvent } from '../../../shared/engine/events.js' */
/** @import { Iteration } from '../../../shared/memory/loop-state.js' */
/** @import { TaskResult } from '../../../shared/domain/agent-phases.js' */
/** @import { Child } from './common.js' */

const buildId = document.body.getAttribute('data-build-id') ?? '';
const errors = byId('errors');
const W = 200, H = 64, COL = 60, ROW = 18, PAD = 20;
/** @type {Readonly<Record<string, true>>} */
const TERMINAL = { succeeded: true, failed: true, skipped: true, cancelled: true };
/** @type {BuildDetailBody | null} */
let detail = null;
/** @type {Map<string, TaskSummary>} */
let tasks = new Map();
/** @type {string | null} */
let selected = null;
/** @type {EventSource | null} */
let source = null;
/** @type {ReturnType<typeof setTimeout> | null} */
let reloadTimer = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let panelTimer;

/** Loads the whole build and redraws; resolves to the last event id the snapshot includes. */
function load() {
  return getBuild(buildId).then((d) => {
    showError(errors, null);
    detail = d;
    tasks = new Map();
    for (const t of d.tasks) tasks.set(t.id, t);
    renderHeader(d);
    renderGraph(d);
    renderReport(d);
    if (selected) loadPanel(selected);
    return d.lastEventId;
  }).catch((err) => { showError(errors, err); throw err; });
}
function scheduleReload() {
  if (reloadTimer) return;
  reloadTimer = setTimeout(() => { reloadTimer = null; load().catch(() => {}); }, 250);
}

function counts() {
  const c = { total: 0, done: 0, running: 0, failed: 0 };
  for (const t of tasks.values()) {
    c.total++;
    if (TERMINAL[t.state]) c.done++;
    if (t.state === 'running') c.running++;
    if (t.state === 'failed') c.failed++;
  }
  return c;
}

/** @param {BuildDetailBody} d */
function renderHeader(d) {
  const b = d.build, c = counts();
  byId('state').replaceChildren(badge(b.state));
  byId('goal').textContent = b.goal;
  byId('summary').textContent = b.summary || '';
  byId('reason').replaceChildren(b.reason ? h('div', { class: b.state === 'failed' ? 'error-box' : 'banner info' }, b.reason) : '');
  const end = b.finishedAt || Date.now();
  /** @type {Array<[string, string | number]>} */
  const stats = [
    ['tasks done', c.done + ' / ' + c.total],
    ['running', c.running],
    ['failed', c.failed],
    ['elapsed', fmtMs(end - b.createdAt)],
    ['LLM calls', fmtNum(b.llmCalls)],
    ['tokens', fmtNum(b.tokens) + (b.budgetTokens ? ' / ' + fmtNum(b.budgetTokens) : '')],
    ['created', fmtAge(b.createdAt)]
  ];
  byId('stats').replaceChildren(...stats.map((kv) => h('div', { class: 'stat' }, h('div', { class: 'v' }, kv[1]), h('div', { class: 'k' }, kv[0]))));
  byId('progress').replaceChildren(progressBar(c.done, c.total, true));
  byId('cancel').hidden = !(b.state === 'running' || b.state === 'planning');
  byId('retry').hidden = !(c.failed > 0 && b.state !== 'cancelled');
}

/**
 * Where each task's node goes: layer i is column i, each column centred vertically.
 * @param {string[][]} layers
 */
function position(layers) {
  /** @type {Map<string, { x: number, y: number }>} */
  const pos = new Map();
  const rows = Math.max(...layers.map((l) => l.length), 1);
  const height = PAD * 2 + rows * H + (rows - 1) * ROW;
  layers.forEach((layer, i) => {
    const colHeight = layer.length * H + (layer.length - 1) * ROW;
    const top = (height - colHeight) / 2;
    layer.forEach((id, j) => { pos.set(id, { x: PAD + i * (W + COL), y: top + j * (H + ROW) }); });
  });
  return { pos, width: PAD * 2 + layers.length * W + Math.max(0, layers.length - 1) * COL, height };
}

/** @param {TaskSummary} t */
function metaText(t) {
  if (t.state === 'running') return t.role + ' \u00b7 running' + (t.startedAt ? ' ' + fmtMs(Date.now() - t.startedAt) : '');
  if (t.durationMs !== null && t.durationMs !== undefined) return t.role + ' \u00b7 ' + t.state + ' in ' + fmtMs(t.durationMs);
  return t.role + ' \u00b7 ' + t.state;
}

/**
 * @param {TaskSummary} t
 * @param {{ x: number, y: number }} p
 */
function nodeFor(t, p) {
  const g = s('g', {
    class: 'node st-' + t.state + (t.followup ? ' followup' : '') + (selected === t.id ? ' selected' : ''),
    transform: 'translate(' + p.x + ',' + p.y + ')', tabindex: 0, role: 'button',
    'data-task': t.id, 'data-state': t.state, 'aria-label': t.id + ': ' + t.title + ' (' + t.state + ')'
  },
    s('title', null, t.id + ' \u2014 ' + t.title + '\n' + t.status),
    s('rect', { class: 'box', width: W, height: H, rx: 10 }),
    s('text', { class: 'nid', x: 14, y: 22 }, clip(t.id, t.followup ? 15 : 24)),
    s('text', { class: 'ntitle', x: 14, y: 40 }, clip(t.title, 29)),
    s('text', { class: 'nmeta', x: 14, y: 56 }, clip(metaText(t), 33)));
  if (t.followup) {
    g.appendChild(s('rect', { class: 'fu-tag', x: W - 68, y: 8, width: 60, height: 17, rx: 8.5 }));
    g.appendChild(s('text', { class: 'fu-text', x: W - 38, y: 20, 'text-anchor': 'middle' }, 'follow-up'));
  }
  g.addEventListener('click', () => select(t.id));
  g.addEventListener('keydown', (e) => {
    if (!(e instanceof KeyboardEvent)) return;
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(t.id); }
  });
  return g;
}

/** @param {BuildDetailBody} d */
function renderGraph(d) {
  const wrap = byId('graph');
  clear(wrap);
  if (tasks.size === 0) {
    append(wrap, h('div', { class: 'graph-empty' }, d.build.state === 'planning'
      ? 'Planning: the orchestrator is asking the LLM to break the goal into tasks\u2026'
      : 'This build has no tasks.'));
    return;
  }
  const layout = position(d.layers);
  // Shrunk to fit the column, down to 60%; a larger graph scrolls instead.
  const room = wrap.clientWidth - 2;
  const scale = room > 0 && layout.width > room ? Math.max(0.6, room / layout.width) : 1;
  const svg = s('svg', { class: 'dag', width: Math.round(layout.width * scale), height: Math.round(layout.height * scale), viewBox: '0 0 ' + layout.width + ' ' + layout.height, role: 'img', 'aria-label': 'task graph' });
  svg.appendChild(s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    s('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#9aa5b1' }))));
  const edges = s('g', { class: 'edges' });
  for (const t of tasks.values()) {
    const to = layout.pos.get(t.id);
    for (const dep of t.deps) {
      const from = layout.pos.get(dep);
      if (!from || !to) continue;
      const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x - 2, y2 = to.y + H / 2, dx = Math.max(24, (x2 - x1) / 2);
      const depTask = tasks.get(dep);
      edges.appendChild(s('path', {
        class: 'edge' + (depTask && depTask.state === 'succeeded' ? ' done' : ''), 'data-from': dep, 'data-to': t.id,
        d: 'M ' + x1 + ' ' + y1 + ' C ' + (x1 + dx) + ' ' + y1 + ', ' + (x2 - dx) + ' ' + y2 + ', ' + x2 + ' ' + y2,
        'marker-end': 'url(#arrow)'
      }));
    }
  }
  svg.appendChild(edges);
  const nodes = s('g', { class: 'nodes' });
  for (const t of tasks.values()) {
    const p = layout.pos.get(t.id);
    if (p) nodes.appendChild(nodeFor(t, p));
  }
  svg.appendChild(nodes);
  wrap.appendChild(svg);
}

/** Redraws one node in place (and the colour of its outgoing edges). @param {TaskSummary} t */
function updateNode(t) {
  const g = document.querySelector('svg.dag g.node[data-task="' + CSS.escape(t.id) + '"]');
  if (!g || !detail) { scheduleReload(); return; }
  const p = (g.getAttribute('transform') ?? '').match(/-?[0-9.]+/g) ?? [];
  const fresh = nodeFor(t, { x: Number(p[0]), y: Number(p[1]) });
  g.replaceWith(fresh);
  document.querySelectorAll('svg.dag path.edge[data-from="' + CSS.escape(t.id) + '"]').forEach((e) => {
    e.setAttribute('class', 'edge' + (t.state === 'succeeded' ? ' done' : ''));
  });
}

/**
 * @param {string | undefined} id
 * @param {TaskSummary['state']} state
 * @param {Partial<TaskSummary>} [extra] fields the event carries; undefined ones are left as they are
 */
function setState(id, state, extra) {
  const t = id === undefined ? undefined : tasks.get(id);
  if (!t) { scheduleReload(); return; }
  t.state = state;
  if (extra) for (const [k, v] of Object.entries(extra)) if (v !== undefined) Object.assign(t, { [k]: v });
  if (state === 'succeeded' && t.startedAt && t.finishedAt) t.durationMs = t.finishedAt - t.startedAt;
  t.status = state;
  updateNode(t);
  if (detail) renderHeader(detail);
  if (selected === t.id) loadPanel(t.id);
}

/** @param {BuildEvent} ev */
function logEvent(ev) {
  const log = byId('events');
  const time = new Date(ev.at).toLocaleTimeString('en-GB');
  const what = [ev.task, ev.state, ev.worker ? 'on ' + ev.worker : null, ev.reason].filter(Boolean).join(' \u00b7 ');
  log.insertBefore(h('div', null, h('span', { class: 't' }, time), h('b', null, ev.type), ' ', clip(what, 300)), log.firstChild);
  while (log.childNodes.length > 300 && log.lastChild) log.removeChild(log.lastChild);
}

/** @param {BuildEvent} ev */
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
    case 'task.retried': setState(ev.task, /** @type {TaskSummary['state']} */ (ev.state || 'pending'), { error: null, durationMs: null }); break;
    case 'build.finished':
    case 'build.cancelled':
      if (detail) { detail.build.state = /** @type {BuildDetailBody['build']['state']} */ (ev.state); detail.build.finishedAt = ev.at; renderHeader(detail); }
      scheduleReload();
      break;
    case 'build.created': case 'build.grown': case 'build.reopened': case 'build.report': case 'build.planned':
      scheduleReload();
      break;
  }
}

/** Follows the build's event stream after event `from` (the snapshot's last). @param {string | null | undefined} from */
function connect(from) {
  if (source) source.close();
  const conn = byId('conn');
  const es = new EventSource(eventsUrl(buildId, from));
  source = es;
  es.onopen = () => { conn.textContent = '\u25cf live'; conn.className = 'conn ok'; };
  es.onmessage = (m) => apply(JSON.parse(m.data));
  es.addEventListener('end', () => {
    es.close();
    source = null;
    conn.textContent = 'build ended'; conn.className = 'conn muted';
    scheduleReload();
  });
  es.onerror = () => { if (source) { conn.textContent = 'reconnecting\u2026'; conn.className = 'conn bad'; } };
}

/** @param {BuildDetailBody} d */
function renderReport(d) {
  const box = byId('report');
  clear(box);
  const r = d.report;
  if (!r) return;
  /** @type {Array<[string, string | number]>} */
  const stats = [['wall time', fmtMs(r.wallMs)], ['critical path', fmtMs(r.criticalPathMs)], ['LLM calls', fmtNum(r.llm.calls)],
    ['prompt tokens', fmtNum(r.llm.promptTokens)], ['completion tokens', fmtNum(r.llm.completionTokens)], ['files written', r.files.length]];
  append(box, h('h2', null, 'Report'), h('div', { class: 'card' },
    h('div', { class: 'stats' },
      stats.map((kv) => h('div', { class: 'stat' }, h('div', { class: 'v' }, kv[1]), h('div', { class: 'k' }, kv[0])))),
    r.files.length ? h('div', { class: 'mono' }, h('h2', null, 'Files'), h('ul', null, r.files.slice(0, 200).map((f) => h('li', null, f)))) : null));
}

/* ---------- task panel ---------- */

/** @param {string} id */
function select(id) {
  selected = id;
  document.querySelectorAll('svg.dag g.node').forEach((g) => {
    g.classList.toggle('selected', g.getAttribute('data-task') === id);
  });
  const layout = byId('layout');
  const opening = !layout.classList.contains('with-panel');
  layout.classList.add('with-panel');
  byId('panel').hidden = false;
  if (opening && detail) renderGraph(detail);
  loadPanel(id);
}
function closePanel() {
  selected = null;
  clearTimeout(panelTimer);
  byId('panel').hidden = true;
  byId('layout').classList.remove('with-panel');
  if (detail) renderGraph(detail);
}
/** @param {string} id */
function loadPanel(id) {
  clearTimeout(panelTimer);
  return getTask(buildId, id).then((t) => {
    if (selected !== id) return;
    renderPanel(t);
    if (!TERMINAL[t.state]) panelTimer = setTimeout(() => { if (selected === id) loadPanel(id); }, 2000);
  }).catch((err) => { if (selected === id) showError(byId('panel-body'), err); });
}
/** @param {unknown} v */
function json(v) { return typeof v === 'string' ? v : JSON.stringify(v, null, 2); }
/**
 * @param {string} name
 * @param {number | undefined} ms
 * @param {{ promptTokens: number, completionTokens: number } | null} [usage]
 * @param {string} [extra]
 */
function phaseHead(name, ms, usage, extra) {
  const bits = [];
  if (ms !== undefined) bits.push(fmtMs(ms));
  if (usage) bits.push(fmtNum(usage.promptTokens + usage.completionTokens) + ' tokens');
  if (extra) bits.push(extra);
  return h('div', { class: 'ph' }, name, ' ', h('span', { class: 'muted' }, bits.join(' \u00b7 ')));
}
/** @param {string} label @param {Child} text */
function para(label, text) { return text ? h('div', null, h('span', { class: 'muted' }, label + ': '), text) : null; }
/** @param {readonly string[] | null | undefined} items */
function listOf(items) { return items && items.length ? h('ul', null, items.map((x) => h('li', null, x))) : null; }
/** @param {Iteration} it */
function renderIteration(it) {
  const body = h('div', { class: 'body' });
  if (it.observe) {
    const observed = it.observe;
    const facts = Object.keys(observed.facts || {});
    append(body, h('div', { class: 'phase' }, phaseHead('Observe', observed.ms),
      listOf(observed.findings),
      facts.length ? h('div', { class: 'kv facts' }, facts.map((k) => [h('div', { class: 'k mono' }, k), h('div', { class: 'mono' }, clip(json(observed.facts[k]), 400))])) : null));
  }
  if (it.reason) {
    const r = it.reason.output;
    append(body, h('div', { class: 'phase' }, phaseHead('Reason', it.reason.ms, it.reason.usage),
      para('Problem', r.problem_analysis), r.root_causes.length ? h('div', null, h('span', { class: 'muted' }, 'Root causes:'), listOf(r.root_causes)) : null,
      para('Approach', r.approach), r.risks.length ? h('div', null, h('span', { class: 'muted' }, 'Risks:'), listOf(r.risks)) : null,
      para('Success criteria', r.success_criteria), para('Conclusion', r.conclusion)));
  }
  if (it.plan) {
    append(body, h('div', { class: 'phase' }, phaseHead('Plan', it.plan.ms, it.plan.usage, 'confidence ' + it.plan.confidence + ' \u00b7 estimated ' + it.plan.estimated_duration),
      h('ol', null, it.plan.steps.map((st) =>
        h('li', { class: 'step' }, h('b', { class: 'mono' }, st.action), ' ', h('span', { class: 'muted' }, st.expected), h('pre', null, json(st.params)))))));
  }
  if (it.act) {
    append(body, h('div', { class: 'phase' }, phaseHead('Act', it.act.ms, null, it.act.done ? 'all steps ran' : 'stopped early'),
      it.act.steps.map((st) => {
        const exit = st.exitCode === null || st.exitCode === undefined ? '' : ' \u00b7 exit ' + st.exitCode;
        return h('div', { class: 'step', 'data-step': st.index },
          h('span', { class: st.ok ? 'ok' : 'bad' }, st.ok ? '\u2713' : '\u2717'), ' ', (st.index + 1) + '. ', h('b', { class: 'mono' }, st.action),
          h('span', { class: 'muted' }, exit + ' \u00b7 ' + fmtMs(st.ms)),
          h('pre', null, json(st.params)), st.output ? h('pre', null, st.output) : null);
      })));
  }
  if (it.validate) {
    const v = it.validate;
    append(body, h('div', { class: 'phase' }, phaseHead('Validate', v.ms, v.usage),
      v.checks.map((c) => {
        const what = c.kind + ' ' + c.target + (c.args && c.args.length ? ' ' + c.args.join(' ') : '') + (c.contains ? ' contains \u201c' + c.contains + '\u201d' : '');
        return h('div', { class: 'step' }, h('span', { class: c.ok ? 'ok' : 'bad' }, c.ok ? '\u2713 ' : '\u2717 '), h('span', { class: 'mono' }, what), c.output ? h('pre', null, c.output) : null);
      }),
      h('div', null, 'Verdict: ', h('span', { class: v.valid ? 'ok' : 'bad' }, v.valid ? 'valid' : 'not valid'), v.output ? ' \u2014 ' + v.output : '')));
  }
  if (it.failure) append(body, h('div', { class: 'error-box' }, 'Iteration failed: ' + it.failure));
  const verdict = it.validate ? (it.validate.valid ? 'valid' : 'not valid') : it.failure ? 'failed' : 'in progress';
  const ms = [it.observe, it.reason, it.plan, it.act, it.validate].reduce((sum, phase) => sum + (phase ? phase.ms : 0), 0);
  return h('details', { class: 'iter', open: true, 'data-iteration': it.n },
    h('summary', null, 'Iteration ' + it.n + ' \u2014 ' + verdict + ' \u00b7 ' + fmtMs(ms)), body);
}
/** Redraws the panel, keeping where it was scrolled to. @param {TaskDetailBody} t */
function renderPanel(t) {
  const panel = byId('panel');
  const scroll = panel.scrollTop;
  renderPanelBody(t);
  panel.scrollTop = scroll;
}
/** @param {TaskDetailBody} t */
function renderPanelBody(t) {
  byId('panel-title').textContent = t.id;
  byId('panel-state').replaceChildren(badge(t.state));
  const body = byId('panel-body');
  clear(body);
  /** @type {Array<[string, string]>} */
  const kv = [
    ['Title', t.title], ['Role', t.role], ['Status', t.status], ['Attempts', t.attempts + (t.generation ? ' (run ' + (t.generation + 1) + ')' : '')],
    ['Duration', t.durationMs !== null ? fmtMs(t.durationMs) : t.state === 'running' && t.startedAt ? fmtMs(Date.now() - t.startedAt) + ' so far' : '\u2014'],
    ['Tokens', fmtNum(t.tokensUsed)], ['Worker', t.worker || '\u2014'], ['Origin', t.origin],
    ['Depends on', t.deps.length ? t.deps.join(', ') : '\u2014'], ['Dependents', t.dependents.length ? t.dependents.join(', ') : '\u2014']
  ];
  append(body, h('div', { class: 'kv' }, kv.map((p) => [h('div', { class: 'k' }, p[0]), h('div', null, p[1])])));
  if (t.state === 'failed') append(body, h('button', { class: 'danger', onclick: () => retry(t.id) }, 'Retry this task'));
  if (t.error) append(body, h('div', { class: 'error-box' }, t.error));
  if (t.lastError) append(body, h('div', { class: 'muted' }, 'Re-planned after: ' + t.lastError));
  append(body, h('h2', null, 'Description'), h('div', { class: 'card' }, h('div', { class: 'desc' }, t.description), listOf(t.acceptanceCriteria)));
  if (t.result && typeof t.result === 'object') {
    // An agent's result has the TaskResult shape; other executors store what they like.
    const r = /** @type {Partial<TaskResult>} */ (t.result);
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
  append(body, h('div', { class: 'muted' }, 'Loop ' + t.trace.status + (t.trace.outcome ? ': ' + t.trace.outcome : '') + (t.trace.wiped ? ' \u00b7 working memory wiped at iteration ' + t.trace.wipedAt : '')));
  for (const it of t.trace.iterations) body.appendChild(renderIteration(it));
}

/** Retries one failed task, or every failed task of the build when `taskId` is null. @param {string | null} taskId */
function retry(taskId) {
  retryBuild(buildId, taskId)
    .then(() => { if (!source) connect(detail && detail.lastEventId); scheduleReload(); })
    .catch((err) => showError(errors, err));
}
byId('retry').addEventListener('click', () => retry(null));
byId('cancel').addEventListener('click', () => {
  if (!confirm('Cancel build ' + buildId + '? Running tasks are aborted.')) return;
  cancelBuild(buildId).catch((err) => showError(errors, err));
});
byId('panel-close').addEventListener('click', closePanel);
document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closePanel(); });
/** @type {ReturnType<typeof setTimeout> | undefined} */
let resizeTimer;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (detail) renderGraph(detail); }, 150);
});
setInterval(() => {
  if (!detail) return;
  for (const t of tasks.values()) if (t.state === 'running') updateNode(t);
  if (!detail.build.finishedAt) renderHeader(detail);
}, 1000);
load().then(connect).catch(() => { setTimeout(() => location.reload(), 5000); });
