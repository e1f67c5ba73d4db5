/**
 * The orchestrator's HTTP API against real builds: real Redis, the scripted LLM server
 * (planner and agent phases), real worker processes running the agent executor, and an
 * in-process OrchestratorService whose HTTP server the test calls over the network.
 */
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../orchestrator/http/server.js';
import { Scheduler } from '../../shared/engine/scheduler.js';
import { openOrchestrator, type OpenedOrchestrator } from '../../orchestrator/open-orchestrator.js';
import { createKeys } from '../../shared/redis/keys.js';
import { createLogger } from '../../shared/logger.js';
import { createRedis } from '../../shared/redis/connection.js';
import { freePort } from '../../shared/redis/redis-server.js';
import { AgentWorld, plan1, REASON, validateWith } from '../helpers/agent.js';
import { testConfig } from '../helpers/config.js';
import { waitFor } from '../helpers/processes.js';
import { parseExposition, type Exposition } from '../helpers/prometheus.js';
import { AGENT_STATES } from '../../shared/telemetry/agent-status.js';
import { redisOptions, compileOptions } from '../../shared/options.js';

const TOKEN = 'api-test-token-6f1d2c3b4a596877';
const LLM_KEY = 'sk-llm-test-key-0a9b8c7d6e5f4321';
const AUTH = { Authorization: `Bearer ${TOKEN}` };
/** Fast failures: one iteration per attempt, one attempt, no re-plan. */
const FAST_FAIL = { CODEGOD_MAX_ITERATIONS: '1', CODEGOD_TASK_ATTEMPTS: '1', CODEGOD_REPLANS_PER_TASK: '0' };

const task = (id: string, role: string, title: string, dependsOn: string[] = []) => ({
  id,
  role,
  title,
  description: `Do ${id}`,
  dependsOn,
  acceptanceCriteria: [],
});

const scenario = {
  rules: [
    { match: { phase: 'plan-dag', contains: 'GOAL-SLOW' }, reply: { summary: 'one slow task', tasks: [task('slow', 'backend', 'Slow task')] } },
    { match: { phase: 'plan-dag', contains: 'GOAL-FLAKY' }, reply: { summary: 'needs a flag', tasks: [task('flaky', 'backend', 'Needs flag.txt')] } },
    {
      match: { phase: 'plan-dag' },
      reply: { summary: 'An API and its check', tasks: [task('api', 'backend', 'Write the API'), task('check', 'testing', 'Check the API', ['api'])] },
    },
    { match: { phase: 'reason', task: 'slow' }, reply: REASON, delayMs: 2_500 },
    { match: { phase: 'reason' }, reply: REASON },
    { match: { phase: 'plan', task: 'api' }, reply: plan1([{ action: 'write_file', params: { path: 'api.txt', content: 'api ready\n' } }]) },
    { match: { phase: 'plan', task: 'check' }, reply: plan1([{ action: 'read_file', params: { path: 'api.txt' } }]) },
    { match: { phase: 'plan' }, reply: plan1([{ action: 'write_file', params: { path: 'note.txt', content: 'note\n' } }]) },
    { match: { phase: 'validate', task: 'flaky' }, reply: validateWith([{ kind: 'file_exists', target: 'flag.txt' }]) },
    { match: { phase: 'validate', task: 'api' }, reply: validateWith([{ kind: 'file_contains', target: 'api.txt', contains: 'ready' }]) },
    { match: { phase: 'validate', task: 'check' }, reply: validateWith([{ kind: 'file_exists', target: 'api.txt' }]) },
    { match: { phase: 'validate' }, reply: validateWith([{ kind: 'file_exists', target: 'note.txt' }]) },
  ],
};

let world: AgentWorld;
let orchestrator: OpenedOrchestrator;
let url: string;

beforeAll(async () => {
  world = await AgentWorld.start(scenario, { CODEGOD_API_TOKEN: TOKEN, LLM_API_KEY: LLM_KEY, ...FAST_FAIL });
  await Promise.all([world.startWorker('backend', FAST_FAIL), world.startWorker('testing', FAST_FAIL)]);
  orchestrator = openOrchestrator(world.config, createLogger('silent'));
  await orchestrator.start();
  url = orchestrator.httpUrl!;
}, 60_000);

afterAll(async () => {
  await orchestrator?.close();
  await world?.close();
});

type Json = any;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = AUTH): Promise<{ status: number; body: Json; headers: Headers }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

async function submit(goal: string): Promise<string> {
  const res = await call('POST', '/api/builds', { goal });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  expect(res.headers.get('location')).toBe(`/api/builds/${res.body.buildId}`);
  return res.body.buildId as string;
}

async function buildState(id: string, want: (state: string) => boolean, timeoutMs = 25_000): Promise<Json> {
  return waitFor(async () => {
    const res = await call('GET', `/api/builds/${id}`);
    return want(res.body.build.state) ? res.body : undefined;
  }, `build ${id} state`, timeoutMs, 100);
}

/** Whether Redis Stream id `a` comes before `b`. */
function streamBefore(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am < bm || (am === bm && as < bs);
}

interface SseMessage {
  id?: string;
  event: string;
  data: Json;
}

/** Reads a whole SSE response (the server ends it when the build ends). */
async function readSse(path: string, timeoutMs = 25_000): Promise<SseMessage[]> {
  const res = await fetch(`${url}${path}`, { headers: AUTH, signal: AbortSignal.timeout(timeoutMs) });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const text = await res.text();
  const out: SseMessage[] = [];
  for (const block of text.split('\n\n')) {
    const fields: Record<string, string> = {};
    for (const line of block.split('\n')) {
      const m = /^([a-z]+): ?(.*)$/.exec(line);
      if (m) fields[m[1]!] = m[2]!;
    }
    if (fields.data === undefined) continue;
    out.push({ ...(fields.id ? { id: fields.id } : {}), event: fields.event ?? 'message', data: JSON.parse(fields.data) });
  }
  return out;
}

async function metrics(): Promise<Exposition> {
  const res = await fetch(`${url}/metrics`, { headers: AUTH });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** A GET with a Host header of the caller's choosing (fetch does not let one be set). */
function getWithHost(base: string, path: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { headers: { ...headers, Host: host, Accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('authentication', () => {
  it('refuses pages and calls without the token, and keeps /health open', async () => {
    for (const [method, path] of [['GET', '/api/builds'], ['GET', '/api/agents'], ['GET', '/metrics'], ['POST', '/api/builds'], ['GET', '/queues/api/queues']] as const) {
      const res = await call(method, path, method === 'POST' ? { goal: 'x' } : undefined, {});
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHORIZED');
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="codegod"');
    }
    expect((await call('GET', '/api/builds', undefined, { Authorization: 'Bearer wrong-token-wrong-token' })).status).toBe(401);
    const page = await fetch(`${url}/`, { headers: { Accept: 'text/html' } });
    expect(page.status).toBe(401);
    expect(await page.text()).toContain('?token=');

    const health = await call('GET', '/health', undefined, {});
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('ok');
    expect(health.body.redis.ok).toBe(true);
    expect(Object.keys(health.body.queues).sort()).toEqual(['backend', 'devops', 'frontend', 'goals', 'testing']);
  });

  it('refuses every mutating call with 403 when no token is configured, reads stay open', async () => {
    const config = testConfig({ CODEGOD_PREFIX: world.config.CODEGOD_PREFIX });
    const redis = createRedis(redisOptions(config), 'service');
    const scheduler = new Scheduler(redis, createKeys(config.CODEGOD_PREFIX), compileOptions(config).scheduler, createLogger('silent'));
    const open = await startHttpServer({ options: compileOptions(config).http, redis, scheduler, logger: createLogger('silent') });
    try {
      for (const [method, path] of [['POST', '/api/builds'], ['POST', '/api/builds/b-abcd1234-ef01/cancel'], ['PUT', '/queues/api/queues/backend/pause']] as const) {
        const res = await fetch(`${open.url}${path}`, { method, headers: { ...AUTH, 'Content-Type': 'application/json' }, body: '{"goal":"x"}' });
        expect(res.status, `${method} ${path}`).toBe(403);
        const body = (await res.json()) as Json;
        expect(body.error.code).toBe('FORBIDDEN');
        expect(body.error.message).toContain('set CODEGOD_API_TOKEN');
      }
      expect((await fetch(`${open.url}/api/builds`)).status).toBe(200);
      const board = (await (await fetch(`${open.url}/queues/api/queues`)).json()) as Json;
      expect(board.queues.every((q: Json) => q.readOnlyMode === true)).toBe(true);
    } finally {
      await open.close();
      await scheduler.close();
      redis.disconnect();
    }
  });

  it('without a token answers only requests addressed to a loopback name or an allowed host (DNS rebinding), before any route', async () => {
    const config = testConfig({ CODEGOD_PREFIX: world.config.CODEGOD_PREFIX, CODEGOD_HTTP_ALLOWED_HOSTS: 'dash.internal, Other.Example' });
    const redis = createRedis(redisOptions(config), 'service');
    const scheduler = new Scheduler(redis, createKeys(config.CODEGOD_PREFIX), compileOptions(config).scheduler, createLogger('silent'));
    const open = await startHttpServer({ options: compileOptions(config).http, redis, scheduler, logger: createLogger('silent') });
    try {
      for (const path of ['/health', '/api/builds', '/', '/assets/x/app.js', '/metrics', '/nowhere']) {
        for (const host of ['evil.example', `evil.example:${open.port}`, 'localhost.evil.example', '127.0.0.1.nip.io']) {
          const res = await getWithHost(open.url, path, host);
          expect(res.status, `${path} Host: ${host}`).toBe(421);
          expect(res.body.split('\n').filter(Boolean)).toHaveLength(1);
          const body = JSON.parse(res.body) as Json;
          expect(body.error.code).toBe('MISDIRECTED');
          expect(body.error.message).toContain('CODEGOD_HTTP_ALLOWED_HOSTS');
        }
      }
      for (const host of [`localhost:${open.port}`, `127.0.0.1:${open.port}`, `[::1]:${open.port}`, 'LOCALHOST', 'app.localhost:9999', 'dash.internal', `other.example:${open.port}`]) {
        expect((await getWithHost(open.url, '/api/builds', host)).status, `Host: ${host}`).toBe(200);
      }
    } finally {
      await open.close();
      await scheduler.close();
      redis.disconnect();
    }
    // With a token the token is the guard: any Host is served to its holder, no one else.
    expect((await getWithHost(url, '/api/builds', 'evil.example', AUTH)).status).toBe(200);
    expect((await getWithHost(url, '/api/builds', 'evil.example')).status).toBe(401);
  });
});

describe('a build through the API', () => {
  let buildId: string;
  let before: Exposition;
  let stream: SseMessage[];

  it('is created with POST /api/builds and followed over SSE until build.finished', async () => {
    before = await metrics();
    buildId = await submit('Build an API and check it');
    stream = await readSse(`/api/builds/${buildId}/events`);
    const events = stream.filter((m) => m.event === 'message').map((m) => m.data);
    const types = events.map((e: Json) => `${e.type}${e.task ? `:${e.task}` : ''}`);
    expect(types[0]).toBe('build.submitted');
    for (const t of ['build.created', 'task.started:api', 'task.succeeded:api', 'task.queued:check', 'task.started:check', 'task.succeeded:check']) {
      expect(types, t).toContain(t);
    }
    expect(types.indexOf('task.succeeded:api')).toBeLessThan(types.indexOf('task.started:check'));
    expect(events.at(-1)).toMatchObject({ type: 'build.finished', state: 'succeeded' });
    const ids = stream.filter((m) => m.id).map((m) => m.id!);
    expect(ids).toEqual(events.map((e: Json) => e.id));
    expect(ids.every((id, i) => i === 0 || streamBefore(ids[i - 1]!, id))).toBe(true);
    expect(stream.at(-1)).toMatchObject({ event: 'end', data: { state: 'succeeded' } });
  });

  it('replays from ?from= and from Last-Event-ID, then ends at once for an ended build', async () => {
    const created = stream.find((m) => m.data.type === 'build.created')!;
    const later = stream.filter((m) => m.id && streamBefore(created.id!, m.id)).map((m) => m.id);
    const resumed = await readSse(`/api/builds/${buildId}/events?from=${created.id}`, 5_000);
    expect(resumed.filter((m) => m.id).map((m) => m.id).slice(0, later.length)).toEqual(later);
    expect(resumed.at(-1)!.event).toBe('end');
    const res = await fetch(`${url}/api/builds/${buildId}/events?from=0`, { headers: { ...AUTH, 'Last-Event-ID': created.id! }, signal: AbortSignal.timeout(5_000) });
    expect(await res.text()).not.toContain(`id: ${created.id}\n`);
    expect((await call('GET', `/api/builds/${buildId}/events?from=nope`)).status).toBe(400);
  });

  it('gives a task with status, duration, tokens, result and ORPAV trace', async () => {
    const { status, body } = await call('GET', `/api/builds/${buildId}/tasks/api`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: 'api', role: 'backend', state: 'succeeded', attempts: 1, title: 'Write the API', deps: [], dependents: ['check'] });
    expect(body.status).toMatch(/^succeeded in \d+(\.\d)? s after 1 attempt$/);
    expect(body.durationMs).toBeGreaterThanOrEqual(0);
    expect(body.tokensUsed).toBeGreaterThan(0);
    expect(body.result).toMatchObject({ success: true, validation: { valid: true } });
    const it0 = body.trace.iterations[0];
    expect(it0.observe).toBeDefined();
    expect(it0.reason.output.conclusion).toBe(REASON.conclusion);
    expect(it0.plan.steps[0].action).toBe('write_file');
    expect(it0.act.steps[0]).toMatchObject({ action: 'write_file', ok: true });
    expect(it0.validate).toMatchObject({ valid: true, checks: [{ kind: 'file_contains', ok: true }] });

    expect((await call('GET', `/api/builds/${buildId}/tasks/nope`)).status).toBe(404);
    expect((await call('GET', `/api/builds/${buildId}/tasks/bad..id`)).body.error.code).toBe('REQUEST_INVALID');
  });

  it('lists the build with its progress and shows it whole with layers and report', async () => {
    // A hand-edited record and an id whose record is gone must not hide the other builds.
    const { keys } = world.engine.scheduler;
    await world.engine.redis.zadd(keys.builds, Date.now(), 'b-corrupt0-000000', Date.now(), 'b-vanished-000000');
    await world.engine.redis.hset(keys.build('b-corrupt0-000000'), { id: 'b-corrupt0-000000', goal: 'x', state: 'exploded' });
    const list = await call('GET', '/api/builds');
    expect(list.status).toBe(200);
    expect(list.body.builds.map((b: Json) => b.id)).not.toContain('b-corrupt0-000000');
    expect(list.body.builds.find((b: Json) => b.id === buildId)).toMatchObject({ state: 'succeeded', done: 2, total: 2, goal: 'Build an API and check it' });
    await world.engine.redis.zrem(keys.builds, 'b-corrupt0-000000', 'b-vanished-000000');
    const detail = await waitFor(async () => {
      const res = await call('GET', `/api/builds/${buildId}`);
      return res.body.report ? res.body : undefined;
    }, 'the build report');
    expect(detail.layers).toEqual([['api'], ['check']]);
    expect(detail.tasks.map((t: Json) => t.id)).toEqual(['api', 'check']);
    expect(detail.build).toMatchObject({ state: 'succeeded', succeeded: 2 });
    expect(detail.build.tokens).toBeGreaterThan(0);
    expect(detail.report.tasks).toHaveLength(2);
    expect(detail.lastEventId).toMatch(/^\d+-\d+$/);
    expect((await call('GET', '/api/builds/b-zzzzzzzz-000000')).status).toBe(404);
    expect((await call('GET', '/api/builds/not-a-build')).status).toBe(400);
  });

  it('moves the metrics: task counters, LLM usage, queue depths and builds', async () => {
    const backendBefore = before.value('codegod_tasks_total', { role: 'backend', outcome: 'succeeded' }) ?? 0;
    const after = await waitFor(async () => {
      const m = await metrics();
      const backend = m.value('codegod_tasks_total', { role: 'backend', outcome: 'succeeded' }) ?? 0;
      const testing = m.value('codegod_tasks_total', { role: 'testing', outcome: 'succeeded' }) ?? 0;
      return backend > backendBefore && testing >= 1 ? m : undefined;
    }, 'workers to flush their task counters');
    expect(after.types.get('codegod_tasks_total')).toBe('counter');
    expect(after.value('codegod_llm_requests_total', { role: 'planner' })).toBeGreaterThan(before.value('codegod_llm_requests_total', { role: 'planner' }) ?? 0);
    expect(after.value('codegod_llm_tokens_total', { role: 'backend', kind: 'prompt' })).toBeGreaterThan(0);
    expect(after.value('codegod_llm_request_seconds_total', { role: 'backend' })).toBeGreaterThanOrEqual(0);
    expect(after.value('codegod_builds', { state: 'succeeded' })).toBeGreaterThanOrEqual(1);
    expect(after.types.get('codegod_queue_jobs')).toBe('gauge');
    const queueSeries = after.samples.filter((s) => s.name === 'codegod_queue_jobs');
    expect(queueSeries).toHaveLength(5 * 6);
    expect(after.value('codegod_queue_jobs', { queue: 'backend', state: 'completed' })).toBeGreaterThanOrEqual(1);
    expect(after.value('codegod_agents', { role: 'backend', state: 'idle' })).toBe(1);
  });
});

describe('cancel and retry', () => {
  it('cancels a running build, and refuses to cancel it twice', async () => {
    const id = await submit('GOAL-SLOW: take your time');
    await waitFor(async () => (await call('GET', `/api/builds/${id}/tasks/slow`)).body.state === 'running', 'the slow task to run', 20_000);
    const res = await call('POST', `/api/builds/${id}/cancel`, { reason: 'changed my mind' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ buildId: id, state: 'cancelled' });
    const detail = (await call('GET', `/api/builds/${id}`)).body;
    expect(detail.build).toMatchObject({ state: 'cancelled', reason: 'changed my mind' });
    expect(detail.tasks[0].state).toBe('cancelled');
    const again = await call('POST', `/api/builds/${id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('BUILD_STATE');
    expect((await call('POST', '/api/builds/b-zzzzzzzz-000000/cancel')).status).toBe(404);
    expect((await call('POST', `/api/builds/${id}/cancel`, { reason: 1 })).status).toBe(400);
  });

  it('retries a failed task, which then succeeds', async () => {
    const id = await submit('GOAL-FLAKY: needs a flag');
    const failed = await buildState(id, (s) => s === 'failed');
    expect(failed.build.failedTask).toBe('flaky');
    const flaky = (await call('GET', `/api/builds/${id}/tasks/flaky`)).body;
    expect(flaky.state).toBe('failed');
    expect(flaky.status).toMatch(/^failed after 1 attempt: /);
    writeFileSync(join(world.workspace(id), 'flag.txt'), 'now it exists\n');

    expect((await call('POST', `/api/builds/${id}/retry`, { taskId: 'flaky', extra: true })).status).toBe(400);
    const res = await call('POST', `/api/builds/${id}/retry`, { taskId: 'flaky' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ buildId: id, retried: ['flaky'] });
    const done = await buildState(id, (s) => s === 'succeeded');
    expect(done.tasks[0]).toMatchObject({ id: 'flaky', state: 'succeeded', generation: 1 });
    const again = await call('POST', `/api/builds/${id}/retry`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/no failed task/);
  });

  it('rejects bad goals with GOAL_INVALID and malformed bodies with REQUEST_INVALID', async () => {
    const empty = await call('POST', '/api/builds', { goal: '   ' });
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe('GOAL_INVALID');
    expect((await call('POST', '/api/builds', { goal: 'x', maxTasks: 0 })).body.error.code).toBe('REQUEST_INVALID');
    const broken = await fetch(`${url}/api/builds`, { method: 'POST', headers: { ...AUTH, 'Content-Type': 'application/json' }, body: '{"goal":' });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as Json).error.code).toBe('REQUEST_INVALID');
  });
});

describe('agents and health', () => {
  it('lists every agent with its role, state and heartbeat age', async () => {
    const { body } = await call('GET', '/api/agents');
    const roles = body.agents.map((a: Json) => a.role).sort();
    expect(roles).toEqual(['backend', 'master', 'testing']);
    for (const a of body.agents) {
      expect(a.state).not.toMatch(/^(stopping|offline)$/);
      expect(AGENT_STATES).toContain(a.state);
      expect(a).toHaveProperty('currentTask');
      expect(a.uptimeMs).toBe(a.heartbeat - a.startedAt);
      expect(a.stale).toBe(false);
      expect(a.heartbeatAgeMs).toBeLessThan(10_000);
    }
    // api and the retried flaky task; the count is published with the next heartbeat.
    await waitFor(async () => {
      const agents = (await call('GET', '/api/agents')).body.agents as Json[];
      return agents.find((a) => a.role === 'backend').tasksCompleted >= 2;
    }, 'the backend agent to report its completed tasks', 5_000);
  });

  it('answers 503 on /health when Redis does not answer', async () => {
    const config = testConfig({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    const redis = createRedis(redisOptions(config), 'service');
    redis.on('error', () => undefined);
    const scheduler = new Scheduler(redis, createKeys(config.CODEGOD_PREFIX), compileOptions(config).scheduler, createLogger('silent'));
    let server: HttpServer | undefined;
    try {
      server = await startHttpServer({ options: compileOptions(config).http, redis, scheduler, logger: createLogger('silent') });
      const res = await fetch(`${server.url}/health`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as Json;
      expect(body.status).toBe('unavailable');
      expect(body.redis.ok).toBe(false);
      expect(body.queues.backend.ok).toBe(false);
    } finally {
      await server?.close();
      redis.disconnect();
    }
  });
});

describe('dashboard assets', () => {
  it('a page loads its script and stylesheet from /assets, typed, cacheable and open without the token', async () => {
    const html = await (await fetch(`${url}/agents`, { headers: AUTH })).text();
    const script = /<script type="module" nonce="[^"]+" src="([^"]+)">/.exec(html)?.[1];
    const style = /<link rel="stylesheet" nonce="[^"]+" href="([^"]+)">/.exec(html)?.[1];
    expect(script).toMatch(/^\/assets\/[0-9a-f]{16}\/agents\.js$/);
    expect(style).toMatch(/^\/assets\/[0-9a-f]{16}\/dashboard\.css$/);
    // The sign-in page a browser without the session gets links the same stylesheet.
    const signIn = await (await fetch(`${url}/agents`, { headers: { Accept: 'text/html' } })).text();
    expect(signIn).toContain(style);

    const js = await fetch(`${url}${script}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
    const source = await js.text();
    expect(source).toContain("from './common.js'");
    // The modules a script imports resolve next to it, in the same version.
    const common = await fetch(`${url}${script!.replace('agents.js', 'common.js')}`);
    expect(common.status).toBe(200);
    expect(await common.text()).toContain('export function h(');
    const css = await fetch(`${url}${style}`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await css.text()).toContain('svg.dag');

    const other = await fetch(`${url}/assets/0123456789abcdef/agents.js`);
    expect(other.status).toBe(200);
    expect(other.headers.get('cache-control')).toBe('no-cache');
    expect(await other.text()).toBe(source);
    for (const path of ['/assets/v/tsconfig.json', '/assets/v/..%2Fassets.ts', '/assets/v/nothing.js']) {
      expect((await fetch(`${url}${path}`)).status, path).toBe(404);
    }
  });
});

describe('secrets', () => {
  it('never appear in a page, an API answer, the metrics or the event stream', async () => {
    const [build] = (await call('GET', '/api/builds')).body.builds;
    const paths = [
      '/', '/agents', `/builds/${build.id}`, '/queues', '/queues/api/queues', '/api/builds', `/api/builds/${build.id}`,
      `/api/builds/${build.id}/tasks/${(await call('GET', `/api/builds/${build.id}`)).body.tasks[0].id}`,
      `/api/builds/${build.id}/events`, '/api/agents', '/metrics', '/health', '/nothing-here', '/api/nothing-here',
    ];
    for (const path of paths) {
      for (const headers of [AUTH, {}]) {
        const res = await fetch(`${url}${path}`, { headers, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
        const text = `${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${await res.text()}`;
        for (const secret of [TOKEN, LLM_KEY]) expect(text.includes(secret), `${path} shows a secret`).toBe(false);
      }
    }
    const signIn = await fetch(`${url}/agents?token=${TOKEN}`, { redirect: 'manual' });
    expect(signIn.status).toBe(303);
    expect(signIn.headers.get('location')).toBe('/agents');
    expect(signIn.headers.get('set-cookie')).not.toContain(TOKEN);
  });
});
