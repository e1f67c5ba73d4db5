// @ts-check
/** The agents page (/agents): every agent as it last reported, refreshed every 2 s. */
import { listAgents } from './api-client.js';
import { append, badge, buildHref, byId, clear, fmtMs, fmtNum, h, showError } from './common.js';

const list = byId('agents');
const errors = byId('errors');

function refresh() {
  return listAgents().then((data) => {
    showError(errors, data.malformed.length ? new Error('unreadable status entries: ' + data.malformed.join(', ')) : null);
    clear(list);
    if (data.agents.length === 0) append(list, h('tr', null, h('td', { colspan: 7, class: 'muted' }, 'No agent has reported yet.')));
    for (const a of data.agents) {
      const tasks = a.currentTasks.map((t) =>
        h('div', null, h('a', { href: buildHref(t.buildId), class: 'mono' }, t.taskId), ' ', h('span', { class: 'muted' }, (t.phase ? t.phase + ' \u00b7 ' : '') + 'in ' + t.buildId + ', ' + fmtMs(Date.now() - t.since))));
      list.appendChild(h('tr', { 'data-agent': a.agentId },
        h('td', { class: 'mono' }, a.agentId),
        h('td', null, a.role),
        h('td', null, badge(a.stale ? 'stale' : a.state)),
        h('td', null, tasks.length ? tasks : h('span', { class: 'muted' }, '\u2014')),
        h('td', { class: a.stale ? 'bad' : 'muted' }, fmtMs(a.heartbeatAgeMs)),
        h('td', null, fmtNum(a.tasksCompleted), a.tasksFailed ? h('span', { class: 'bad' }, ' (' + a.tasksFailed + ' failed)') : null),
        h('td', { class: 'muted' }, a.host + ' \u00b7 pid ' + a.pid + ' \u00b7 up ' + fmtMs(a.uptimeMs))));
    }
  }).catch((err) => showError(errors, err));
}

refresh();
setInterval(refresh, 2000);
