import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../orchestrator/cli/main.js';
import { ProgressView, followBuild } from '../../orchestrator/cli/progress.js';
import type { Config } from '../../shared/config.js';
import { createKeys } from '../../shared/redis/keys.js';
import { freePort } from '../../shared/redis/redis-server.js';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import { Captured, cli, fakeIo, programs } from '../helpers/cli-io.js';
import { configEnv, testConfig } from '../helpers/config.js';
import { engine, plan, waitForWorkers, type EngineHarness } from '../helpers/engine.js';
import { startWorker, waitFor, type ChildHandle } from '../helpers/processes.js';

let config: Config;
let env: Record<string, string>;
let h: EngineHarness;
const children: ChildHandle[] = [];

beforeEach(() => {
  config = testConfig({ CODEGOD_TASK_ATTEMPTS: '1' });
  env = configEnv(config);
  h = engine(config);
});

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()));
  await h.close();
});

function withoutHttpPort(e: Record<string, string>): Record<string, string> {
  const { CODEGOD_HTTP_PORT: _port, ...rest } = e;
  return rest;
}

function lastJson(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('codegod build (submitting)', () => {
  it('--detach submits the goal in the planning state and status shows it', async () => {
    const r = await cli(['build', 'Create a Flask todo app', '--detach', '--json', '--max-tasks', '7', '--budget-tokens', '5000', '--model', 'coder-7b'], env);
    expect(r.code).toBe(0);
    const { buildId, state } = lastJson(r.stdout) as { buildId: string; state: string };
    expect(state).toBe('planning');
    // No orchestrator heartbeat here: one warning line, then the follow/cancel hint.
    expect(r.stderr).toMatch(/^codegod: warning: no orchestrator is running/);
    expect(r.stderr).toContain(`codegod cancel ${buildId}`);

    const status = await cli(['status', buildId, '--json'], env);
    expect(status.code).toBe(0);
    const doc = lastJson(status.stdout) as { build: Record<string, unknown>; tasks: unknown[] };
    expect(doc.build).toMatchObject({ id: buildId, state: 'planning', goal: 'Create a Flask todo app', maxTasks: 7, budgetTokens: 5000, model: 'coder-7b' });
    expect(doc.tasks).toEqual([]);

    const overview = await cli(['status', '--json'], env);
    const all = lastJson(overview.stdout) as { builds: Array<{ id: string; state: string }>; queues: Record<string, Record<string, number>> };
    expect(all.builds[0]).toMatchObject({ id: buildId, state: 'planning' });
    expect(all.queues.goals!.waiting).toBe(1);
    expect(all.queues.backend).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 0 });

    const plain = await cli(['--build', 'Another goal', '--detach'], env);
    expect(plain.code).toBe(0);
    expect(plain.stdout.trim()).toMatch(/^b-[a-z0-9]+-[a-z0-9]+$/);
  });

  it('does not warn when an orchestrator heartbeat is live', async () => {
    const keys = createKeys(config.CODEGOD_PREFIX);
    const status = { agentId: 'master-x', role: 'master', state: 'idle', currentTasks: [], heartbeat: Date.now(), startedAt: Date.now(), tasksCompleted: 0, tasksFailed: 0, concurrency: 4, pid: 1, host: 'h' };
    await h.redis.hset(keys.agentsStatus, 'master-x', JSON.stringify(status));
    const r = await cli(['build', 'goal', '--detach'], env);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/warning/);
  });

  it('--timeout stops following with exit 124 and says how to follow; the build goes on', async () => {
    const started = Date.now();
    const r = await cli(['build', 'a goal nobody plans', '--timeout', '0.5'], env);
    expect(r.code).toBe(124);
    expect(Date.now() - started).toBeLessThan(5_000);
    const id = /build (b-\S+) submitted/.exec(r.stdout)?.[1];
    expect(id).toBeDefined();
    expect(r.stderr).toMatch(new RegExp(`build ${id} is still planning after 500ms; it goes on\\. Follow it: codegod status ${id} --follow`));
    expect((await h.scheduler.dag.getBuild(id!)).state).toBe('planning');
  });

  it('Ctrl-C while following detaches with exit 130 and says how to follow or cancel', async () => {
    const f = fakeIo(env);
    const pending = run(['build', 'interrupt me'], f.io, programs);
    await waitFor(() => f.stdout.text.includes('submitted') && f.interruptHandlers > 0, 'the build to be followed', 10_000);
    f.interrupt();
    expect(await pending).toBe(130);
    const id = /build (b-\S+) submitted/.exec(f.stdout.text)![1]!;
    expect(f.stderr.text).toContain(`codegod: detached; build ${id} goes on. Follow it: codegod status ${id} --follow · cancel it: codegod cancel ${id}`);
    expect(f.interruptHandlers).toBe(0);
    expect((await h.scheduler.dag.getBuild(id)).state).toBe('planning');
  });
});

describe('following a running build', () => {
  it('shows each task change and ends with the exit code, failure line and report; retry runs it again', async () => {
    const worker = startWorker(config, 'backend', { CODEGOD_TASK_ATTEMPTS: '1' });
    children.push(worker);
    await waitForWorkers(h.redis, config, [worker]);
    const id = await h.scheduler.createBuild({
      goal: 'follow me',
      plan: plan([
        { id: 'a', description: 'sleep=200' },
        { id: 'b', dependsOn: ['a'], description: 'fatal' },
        { id: 'c', dependsOn: ['b'] },
      ]),
    });

    const out = new Captured(false);
    const outcome = await followBuild({ config, keys: createKeys(config.CODEGOD_PREFIX), redis: h.redis, buildId: id, view: new ProgressView(out, false) });
    expect(outcome.kind).toBe('ended');
    if (outcome.kind !== 'ended') return;
    expect(outcome.build.state).toBe('failed');
    expect(outcome.report).toMatchObject({ buildId: id, state: 'failed', failedTask: 'b' });
    expect(out.text).toMatch(/backend\s+a\s+succeeded in \d/);
    expect(out.text).toMatch(/backend\s+b\s+failed in \d+ms: task b failed \(fatal directive\)/);
    expect(out.text).toMatch(/backend\s+c\s+skipped: dependency b failed/);
    expect(out.text).toMatch(/progress\s+done 1\/3 · running 0 · queued 0 · waiting 0 · failed 1 · skipped 1/);
    expect(out.text).not.toMatch(/\u001b\[/);

    // The same through the CLI, on an ended build: it replays, reports and exits 1.
    const followed = await cli(['status', id, '--follow', '--json'], env);
    expect(followed.code).toBe(1);
    const doc = lastJson(followed.stdout) as Record<string, unknown>;
    expect(doc).toMatchObject({ buildId: id, state: 'failed', exitCode: 1, failure: { task: 'b', role: 'backend', trace: `codegod trace ${id} b` } });
    expect((doc.tasks as unknown[]).length).toBe(3);
    expect(followed.stderr.trim().split('\n').pop()).toBe(`codegod: build ${id} failed: task b (backend) failed: task b failed (fatal directive); see codegod trace ${id} b`);

    const retried = await cli(['retry', id, 'b'], env);
    expect(retried.code).toBe(0);
    expect(retried.stdout).toContain(`build ${id}: retrying b (build is running)`);
    const again = await cli(['status', id, '--follow'], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/build\s+reopened/);
    expect(again.stdout).toMatch(/backend\s+b\s+retried/);
    expect(again.stdout).toMatch(new RegExp(`build ${id} failed in .*\\n.*goal +follow me`));
    expect((await h.scheduler.dag.getTask(id, 'b')).gen).toBe(1);
  });
});

describe('codegod build --local', () => {
  let llm: ScriptedLlmServer;
  beforeAll(async () => {
    llm = await startScriptedLlmServer({
      scenario: {
        rules: [
          {
            match: { role: 'planner' },
            reply: {
              summary: 'an api, then a ui',
              tasks: [
                { id: 'api', role: 'backend', title: 'API', description: 'sleep=100', dependsOn: [], acceptanceCriteria: [] },
                { id: 'ui', role: 'frontend', title: 'UI', description: 'noop', dependsOn: ['api'], acceptanceCriteria: [] },
              ],
            },
          },
        ],
      },
    });
  });
  afterAll(() => llm.close());

  it('starts a private Redis with AOF under .codegod/redis when none answers, runs the build in-process and stops it all', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'codegod-local-'));
    const closed = await freePort();
    const r = await cli(
      ['build', 'an api and a ui', '--local', '--workspace', 'ws'],
      // Without CODEGOD_HTTP_PORT the dashboard takes a free port (configEnv spells out the default).
      { ...withoutHttpPort(env), PATH: process.env.PATH ?? '', REDIS_URL: `redis://127.0.0.1:${closed}`, VLLM_API_URL: llm.url, CODEGOD_EXECUTOR: 'scripted' },
      { cwd },
    );
    expect(r.stderr).toMatch(/started a private redis-server at redis:\/\/127\.0\.0\.1:\d+ \(data in \.codegod\/redis\)/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/backend\s+api\s+succeeded/);
    expect(r.stdout).toMatch(/frontend\s+ui\s+succeeded/);
    expect(r.stdout).toMatch(/build b-\S+ succeeded in/);
    expect(r.stderr).toContain(`workspaces under ${join(cwd, 'ws')}`);
    expect(r.stderr).toMatch(/codegod: dashboard at http:\/\/127\.0\.0\.1:\d+/);
    expect(existsSync(join(cwd, '.codegod', 'redis', 'appendonlydir'))).toBe(true);
    // The private server is gone with the build.
    const port = Number(/127\.0\.0\.1:(\d+) \(data/.exec(r.stderr)![1]);
    const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    await expect(probe.connect()).rejects.toThrow();
    probe.disconnect();
  });

  it('exits 5 when the planner cannot reach the LLM', async () => {
    const closed = await freePort();
    const r = await cli(['build', 'anything', '--local', '--json'], {
      ...env,
      CODEGOD_HTTP_PORT: '0',
      VLLM_API_URL: `http://127.0.0.1:${closed}/v1`,
      LLM_MAX_RETRIES: '0',
      CODEGOD_TASK_BACKOFF_MS: '50',
      CODEGOD_EXECUTOR: 'scripted',
    });
    expect(r.code).toBe(5);
    const doc = lastJson(r.stdout);
    expect(doc).toMatchObject({ state: 'failed', failureCode: 'LLM_UNREACHABLE', exitCode: 5 });
    expect(r.stderr.trim().split('\n').pop()).toMatch(/^codegod: build b-\S+ failed \(LLM_UNREACHABLE\): cannot reach the LLM/);
    // --json keeps stdout to the one document; progress went to stderr.
    expect(r.stderr).toMatch(/build\s+planning/);
  });
});
