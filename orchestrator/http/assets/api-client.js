// @ts-check
/**
 * The dashboard's calls to the JSON API (api.ts), typed by the bodies the server declares it
 * answers (views.ts). A failed call rejects with the API's error message.
 */

/** @import { AgentListBody, BuildDetailBody, BuildListBody, CancelledBody, RetriedBody, SubmittedBody, TaskDetailBody } from '../views.js' */
/** @import { ApiErrorBody } from '../errors.js' */

/**
 * @param {string} path
 * @param {{ method?: string, body?: string }} [opts]
 * @returns {Promise<unknown>}
 */
async function call(path, opts = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method: opts.method || 'GET', credentials: 'same-origin', headers, body: opts.body });
  /** @type {Partial<ApiErrorBody> | null} */
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body && body.error ? body.error.message : res.status + ' ' + res.statusText);
  return body;
}

const build = (/** @type {string} */ id) => '/api/builds/' + encodeURIComponent(id);

/** @param {number} limit @returns {Promise<BuildListBody>} */
export const listBuilds = async (limit) => /** @type {BuildListBody} */ (await call('/api/builds?limit=' + limit));

/** @param {string} goal @returns {Promise<SubmittedBody>} */
export const submitBuild = async (goal) => /** @type {SubmittedBody} */ (await call('/api/builds', { method: 'POST', body: JSON.stringify({ goal }) }));

/** @param {string} id @returns {Promise<BuildDetailBody>} */
export const getBuild = async (id) => /** @type {BuildDetailBody} */ (await call(build(id)));

/** @param {string} id @param {string} taskId @returns {Promise<TaskDetailBody>} */
export const getTask = async (id, taskId) => /** @type {TaskDetailBody} */ (await call(build(id) + '/tasks/' + encodeURIComponent(taskId)));

/** @param {string} id @returns {Promise<CancelledBody>} */
export const cancelBuild = async (id) => /** @type {CancelledBody} */ (await call(build(id) + '/cancel', { method: 'POST', body: '{}' }));

/** @param {string} id @param {string | null} taskId every failed task when null @returns {Promise<RetriedBody>} */
export const retryBuild = async (id, taskId) =>
  /** @type {RetriedBody} */ (await call(build(id) + '/retry', { method: 'POST', body: JSON.stringify(taskId ? { taskId } : {}) }));

/** @returns {Promise<AgentListBody>} */
export const listAgents = async () => /** @type {AgentListBody} */ (await call('/api/agents'));

/**
 * The URL of a build's event stream (Server-Sent Events), after event `from` when given.
 * @param {string} id
 * @param {string | null} [from]
 */
export const eventsUrl = (id, from) => build(id) + '/events' + (from ? '?from=' + encodeURIComponent(from) : '');
