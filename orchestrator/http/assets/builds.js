// @ts-check
/** The builds page (/): recent builds, refreshed every 3 s, and the form that starts one. */
import { listBuilds, submitBuild } from './api-client.js';
import { append, badge, buildHref, byId, clear, fmtAge, fmtMs, h, progressBar, showError } from './common.js';

/** @import { BuildSummary } from '../views.js' */

const list = byId('builds');
const errors = byId('errors');

/** @param {BuildSummary} b */
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
  return listBuilds(100).then((data) => {
    showError(errors, null);
    clear(list);
    if (data.builds.length === 0) append(list, h('tr', null, h('td', { colspan: 6, class: 'muted' }, 'No builds yet. Submit a goal above, or run codegod build "goal".')));
    for (const b of data.builds) list.appendChild(row(b));
  }).catch((err) => showError(errors, err));
}

byId('submit').addEventListener('submit', (e) => {
  e.preventDefault();
  const goal = /** @type {HTMLTextAreaElement} */ (byId('goal'));
  const button = /** @type {HTMLButtonElement} */ (byId('go'));
  button.disabled = true;
  submitBuild(goal.value)
    .then((r) => { location.href = buildHref(r.buildId); })
    .catch((err) => { showError(errors, err); button.disabled = false; });
});

refresh();
setInterval(refresh, 3000);
