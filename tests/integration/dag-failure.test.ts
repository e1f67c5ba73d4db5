import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEvents } from '../../shared/engine/events.js';
import { listAgents } from '../../shared/telemetry/agent-status.js';
import { testConfig } from '../helpers/config.js';
import { engine, plan, waitForBuildEnd, waitForWorkers, type EngineHarness } from '../helpers/engine.js';
import { FAST_RECOVERY, startWorker, waitFor, type ChildHandle } from '../helpers/processes.js';

const env = { ...FAST_RECOVERY, WORKER_CONCURRENCY: '8', CODEGOD_TASK_ATTEMPTS: '2' };
const config = testConfig(env);
let h: EngineHarness;
const workers: ChildHandle[] = [];

beforeAll(async () => {
  h = engine(config);
  for (const role of ['backend', 'frontend', 'testing']) workers.push(startWorker(config, role, env));
  await waitForWorkers(h.redis, config, workers);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill('SIGTERM')));
  await h?.close();
});

describe('failure, retry and cancel', () => {
  it('a failing task skips its dependents, unrelated branches finish, the build fails naming it; retry finishes the build', async () => {
    const buildId = await h.scheduler.createBuild({
      goal: 'failure test',
      plan: plan([
        { id: 'ok-root', description: 'sleep=50' },
        { id: 'bad', description: 'fail' },
        { id: 'after-bad', role: 'frontend', dependsOn: ['bad'] },
        { id: 'after-after', role: 'testing', dependsOn: ['after-bad', 'ok-root'] },
        { id: 'unrelated', role: 'frontend', description: 'sleep=400', dependsOn: ['ok-root'] },
      ]),
    });
    const build = await waitForBuildEnd(h.scheduler, buildId);
    expect(build.state).toBe('failed');
    expect(build.failedTask).toBe('bad');
    expect(build.reason).toMatch(/task bad failed: task bad failed on attempt 2/);
    const states = await h.scheduler.dag.getTaskStates(buildId);
    expect(Object.fromEntries(states)).toEqual({
      'ok-root': 'succeeded',
      bad: 'failed',
      'after-bad': 'skipped',
      'after-after': 'skipped',
      unrelated: 'succeeded',
    });
    const bad = await h.scheduler.dag.getTask(buildId, 'bad');
    expect(bad.attempts).toBe(2);

    // The fix: the task no longer fails (as if its cause was repaired) — then retry.
    await h.redis.hset(
      h.scheduler.keys.task(buildId, 'bad'),
      'spec',
      JSON.stringify({ ...bad.spec, description: 'sleep=10' }),
    );
    expect(await h.scheduler.retry(buildId)).toEqual(['bad']);
    const again = await waitForBuildEnd(h.scheduler, buildId);
    expect(again.state).toBe('succeeded');
    expect(again.failedTask).toBeUndefined();
    expect(Object.values(Object.fromEntries(await h.scheduler.dag.getTaskStates(buildId)))).toEqual(Array(5).fill('succeeded'));
    const types = (await readEvents(h.redis, h.scheduler.keys, buildId)).map((e) => e.type);
    expect(types.filter((t) => t === 'build.finished')).toHaveLength(2);
    expect(types).toContain('build.reopened');
  });

  it('a task that fails once is retried by the queue and succeeds', async () => {
    const buildId = await h.scheduler.createBuild({ goal: 'flaky', plan: plan([{ id: 'flaky', description: 'fail-attempts=1' }]) });
    const build = await waitForBuildEnd(h.scheduler, buildId);
    expect(build.state).toBe('succeeded');
    expect((await h.scheduler.dag.getTask(buildId, 'flaky')).attempts).toBe(2);
  });

  it('a fatal failure is not retried', async () => {
    const buildId = await h.scheduler.createBuild({ goal: 'fatal', plan: plan([{ id: 'x', description: 'fatal' }]) });
    const build = await waitForBuildEnd(h.scheduler, buildId);
    expect(build.state).toBe('failed');
    expect((await h.scheduler.dag.getTask(buildId, 'x')).attempts).toBe(1);
  });

  it('cancel aborts running tasks and enqueues nothing more', async () => {
    const buildId = await h.scheduler.createBuild({
      goal: 'cancel test',
      plan: plan([
        { id: 'long1', description: 'hang' },
        { id: 'long2', role: 'frontend', description: 'sleep=60000' },
        { id: 'next', role: 'testing', dependsOn: ['long1'] },
        { id: 'later', dependsOn: ['long2'] },
      ]),
    });
    await waitFor(async () => {
      const s = await h.scheduler.dag.getTaskStates(buildId);
      return s.get('long1') === 'running' && s.get('long2') === 'running';
    }, 'both long tasks to run');
    const t0 = Date.now();
    await h.scheduler.cancel(buildId, 'user pressed cancel');
    // Workers drop the aborted tasks: no agent reports a task of this build any more.
    await waitFor(async () => {
      const { agents } = await listAgents(h.redis, h.scheduler.keys);
      return agents.every((a) => a.currentTasks.every((t) => t.buildId !== buildId));
    }, 'running tasks to be aborted', 5_000);
    expect(Date.now() - t0).toBeLessThan(5_000);
    const build = await h.scheduler.dag.getBuild(buildId);
    expect(build.state).toBe('cancelled');
    expect(build.reason).toBe('user pressed cancel');
    expect(Object.values(Object.fromEntries(await h.scheduler.dag.getTaskStates(buildId)))).toEqual(Array(4).fill('cancelled'));
    await new Promise((r) => setTimeout(r, 500));
    const events = await readEvents(h.redis, h.scheduler.keys, buildId);
    const afterCancel = events.slice(events.findIndex((e) => e.type === 'build.cancelled') + 1);
    expect(afterCancel.filter((e) => e.type === 'task.queued' || e.type === 'task.started')).toEqual([]);
    for (const role of ['backend', 'frontend', 'testing'] as const) {
      const counts = await h.scheduler.queues.get(role).getJobCounts('waiting', 'active', 'delayed');
      expect(counts, role).toEqual({ waiting: 0, active: 0, delayed: 0 });
    }
    await expect(h.scheduler.retry(buildId, 'long1')).rejects.toThrow(/cancelled/);
  });

  it('a task past its timeout is aborted and fails with the reason', async () => {
    const slow = testConfig({ ...env, CODEGOD_TASK_TIMEOUT_MS: '300', CODEGOD_TASK_ATTEMPTS: '1' });
    const w = startWorker(slow, 'devops', { ...env, CODEGOD_TASK_TIMEOUT_MS: '300', CODEGOD_TASK_ATTEMPTS: '1' });
    const h2 = engine(slow);
    try {
      await waitForWorkers(h2.redis, slow, [w]);
      const buildId = await h2.scheduler.createBuild({ goal: 'timeout', plan: plan([{ id: 'stuck', role: 'devops', description: 'hang' }]) });
      const build = await waitForBuildEnd(h2.scheduler, buildId, 10_000);
      expect(build.state).toBe('failed');
      expect(build.reason).toMatch(/timed out after 300 ms/);
    } finally {
      await w.kill();
      await h2.close();
    }
  });
});
