import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { DagStore } from '../../shared/engine/dag-store.js';
import { readEvents } from '../../shared/engine/events.js';
import { testConfig } from '../helpers/config.js';
import { engine, plan, waitForBuildEnd, waitForWorkers, type EngineHarness } from '../helpers/engine.js';
import { startWorker, waitFor, type ChildHandle } from '../helpers/processes.js';

const config = testConfig({ WORKER_CONCURRENCY: '16' });
let h: EngineHarness;
const workers: ChildHandle[] = [];

beforeAll(async () => {
  h = engine(config);
  for (const role of ['backend', 'frontend', 'testing', 'backend']) workers.push(startWorker(config, role, { WORKER_CONCURRENCY: '16' }));
  await waitForWorkers(h.redis, config, workers);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill('SIGTERM')));
  await h?.close();
});

describe('many builds and growing DAGs', () => {
  it('runs 20 builds at once on the shared queues with no cross-talk', async () => {
    // Every build uses the same task ids: isolation must come from the build, not the names.
    const specs = [
      { id: 'setup', description: 'sleep=20' },
      ...Array.from({ length: 6 }, (_, i) => ({ id: `work${i}`, role: i % 2 ? 'frontend' : 'backend', description: `sleep=${10 + i * 15}`, dependsOn: ['setup'] })),
      { id: 'verify', role: 'testing', dependsOn: Array.from({ length: 6 }, (_, i) => `work${i}`) },
    ];
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => h.scheduler.createBuild({ goal: `build ${i}`, plan: plan(specs) })));
    expect(new Set(ids).size).toBe(20);
    const builds = await Promise.all(ids.map((id) => waitForBuildEnd(h.scheduler, id, 60_000)));
    for (const [i, b] of builds.entries()) {
      expect(b.state).toBe('succeeded');
      expect(b.goal).toBe(`build ${i}`);
      expect(b.succeeded).toBe(8);
    }
    for (const id of ids) {
      const events = await readEvents(h.redis, h.scheduler.keys, id);
      const succeeded = events.filter((e) => e.type === 'task.succeeded').map((e) => e.task).sort();
      expect(succeeded).toEqual([...specs.map((s) => s.id)].sort());
      const tasks = await h.scheduler.dag.getTasks(id);
      const verify = tasks.find((t) => t.id === 'verify')!;
      for (const t of tasks.filter((x) => x.id.startsWith('work'))) expect(verify.startedAt!).toBeGreaterThanOrEqual(t.finishedAt!);
    }
    expect(await h.scheduler.dag.activeBuilds()).toEqual([]);
  });

  it('grows a running DAG: new tasks depend on existing ones and a pending task waits on them', async () => {
    const buildId = await h.scheduler.createBuild({
      goal: 'grow',
      plan: plan([
        { id: 'code', description: 'sleep=400' },
        { id: 'tests', role: 'testing', dependsOn: ['code'] },
      ]),
    });
    await waitFor(async () => (await h.scheduler.dag.getTaskStates(buildId)).get('code') === 'running', 'code to run');
    await h.scheduler.grow(buildId, {
      tasks: [
        { spec: { id: 'install', role: 'backend', title: 'install', description: 'sleep=200', dependsOn: ['code'], acceptanceCriteria: [] }, depth: 1, origin: 'followup:tests' },
        { spec: { id: 'lint', role: 'frontend', title: 'lint', description: 'sleep=10', dependsOn: [], acceptanceCriteria: [] }, depth: 1, origin: 'followup:tests' },
      ],
      blocks: [{ taskId: 'tests', waitFor: ['install', 'lint'] }],
    });
    const build = await waitForBuildEnd(h.scheduler, buildId);
    expect(build.state).toBe('succeeded');
    expect(build.total).toBe(4);
    const tasks = new Map((await h.scheduler.dag.getTasks(buildId)).map((t) => [t.id, t]));
    expect(tasks.get('tests')!.deps).toEqual(['code', 'install', 'lint']);
    expect(tasks.get('tests')!.startedAt!).toBeGreaterThanOrEqual(tasks.get('install')!.finishedAt!);
    expect(tasks.get('install')!.startedAt!).toBeGreaterThanOrEqual(tasks.get('code')!.finishedAt!);
    expect(tasks.get('install')!.origin).toBe('followup:tests');
  });

  it('refuses growth that would create a cycle, reuse an id, exceed the task limit or hold a task already queued', async () => {
    const buildId = await h.scheduler.createBuild({
      goal: 'grow badly',
      maxTasks: 4,
      plan: plan([
        { id: 'a', description: 'hang' },
        { id: 'b', dependsOn: ['a'] },
      ]),
    });
    await waitFor(async () => (await h.scheduler.dag.getTaskStates(buildId)).get('a') === 'running', 'a to run');
    const spec = (id: string, dependsOn: string[]) => ({ id, role: 'backend' as const, title: id, description: 'noop', dependsOn, acceptanceCriteria: [] });
    await expect(h.scheduler.grow(buildId, { tasks: [{ spec: spec('x', ['b']), depth: 1, origin: 'f' }], blocks: [{ taskId: 'b', waitFor: ['x'] }] })).rejects.toThrow(/cycle: .*b.*x|cycle: .*x.*b/);
    await expect(h.scheduler.grow(buildId, { tasks: [{ spec: spec('a', []), depth: 1, origin: 'f' }] })).rejects.toThrow(/already exists/);
    await expect(h.scheduler.grow(buildId, { tasks: ['p', 'q', 'r'].map((id) => ({ spec: spec(id, []), depth: 1, origin: 'f' })) })).rejects.toThrow(/task limit/);
    await expect(h.scheduler.grow(buildId, { tasks: [{ spec: spec('y', []), depth: 1, origin: 'f' }], blocks: [{ taskId: 'a', waitFor: ['y'] }] })).rejects.toThrow(/only pending/);
    expect((await h.scheduler.dag.getBuild(buildId)).total).toBe(2);
    await h.scheduler.cancel(buildId);
  });

  it('releases a fan-in task exactly once when its last dependencies finish at the same instant', async () => {
    // No workers involved: many connections race to complete the dependencies directly.
    const buildId = await h.scheduler.createBuild({
      goal: 'race',
      plan: plan([...Array.from({ length: 30 }, (_, i) => ({ id: `d${i}`, role: 'devops' })), { id: 'join', role: 'devops', dependsOn: Array.from({ length: 30 }, (_, i) => `d${i}`) }]),
    });
    const conns = Array.from({ length: 6 }, () => new Redis(config.REDIS_URL));
    try {
      const stores = conns.map((c) => new DagStore(c, h.scheduler.keys, 1000));
      for (let i = 0; i < 30; i++) await stores[i % 6]!.startTask(buildId, `d${i}`, 0, 'racer');
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => stores[i % 6]!.completeTasks(buildId, [{ taskId: `d${i}`, gen: 0, workerId: 'racer', result: { i } }])),
      );
      expect(results.map((r) => r.outcomes)).toEqual(Array.from({ length: 30 }, () => [{ kind: 'done', applied: true }]));
      // Completing the same task again (a duplicate delivery) changes nothing.
      const dup = await stores[0]!.completeTasks(buildId, [{ taskId: 'd0', gen: 0, workerId: 'racer', result: {} }]);
      expect(dup.outcomes).toEqual([{ kind: 'done', applied: false }]);
      const released = results.flatMap((r) => r.ready.map((t) => t.taskId));
      expect(released).toEqual(['join']);
      const events = await readEvents(h.redis, h.scheduler.keys, buildId);
      expect(events.filter((e) => e.type === 'task.queued' && e.task === 'join')).toHaveLength(1);
      expect((await h.scheduler.dag.getTask(buildId, 'join')).remaining).toBe(0);
    } finally {
      conns.forEach((c) => c.disconnect());
      await h.scheduler.cancel(buildId);
    }
  });
});
