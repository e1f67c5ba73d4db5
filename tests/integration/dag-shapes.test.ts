import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskView } from '../../shared/engine/dag-store.js';
import { testConfig } from '../helpers/config.js';
import { engine, plan, waitForBuildEnd, waitForWorkers, type EngineHarness } from '../helpers/engine.js';
import { startWorker, type ChildHandle } from '../helpers/processes.js';

/** Shapes of DAG run by real worker processes (one per role), checked from recorded times. */
const config = testConfig({ WORKER_CONCURRENCY: '25' });
let h: EngineHarness;
const workers: ChildHandle[] = [];

beforeAll(async () => {
  h = engine(config);
  for (const role of ['backend', 'frontend', 'devops', 'testing']) workers.push(startWorker(config, role, { WORKER_CONCURRENCY: '25' }));
  await waitForWorkers(h.redis, config, workers);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill('SIGTERM')));
  await h?.close();
});

/** Every task started after all of its dependencies ended. */
function assertOrder(tasks: TaskView[]): void {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  for (const t of tasks) {
    expect(t.state, t.id).toBe('succeeded');
    for (const d of t.deps) {
      const dep = byId.get(d)!;
      expect(t.startedAt!, `${t.id} started before ${d} ended`).toBeGreaterThanOrEqual(dep.finishedAt!);
    }
  }
}

/** The largest number of tasks whose [start, end) intervals overlap at one instant. */
function maxOverlap(tasks: TaskView[]): number {
  const points = tasks.flatMap((t) => [
    [t.startedAt!, 1],
    [t.finishedAt!, -1],
  ]) as Array<[number, number]>;
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, delta] of points) max = Math.max(max, (cur += delta));
  return max;
}

async function runBuild(p: ReturnType<typeof plan>) {
  const buildId = await h.scheduler.createBuild({ goal: 'shape test', plan: p });
  const build = await waitForBuildEnd(h.scheduler, buildId);
  const tasks = await h.scheduler.dag.getTasks(buildId);
  return { build, tasks };
}

describe('DAG shapes with real worker processes', () => {
  it('runs a diamond: both middle tasks overlap, the join waits for both', async () => {
    const { build, tasks } = await runBuild(
      plan([
        { id: 'top', description: 'sleep=100' },
        { id: 'left', description: 'sleep=300', dependsOn: ['top'] },
        { id: 'right', role: 'frontend', description: 'sleep=300', dependsOn: ['top'] },
        { id: 'join', role: 'testing', description: 'sleep=50', dependsOn: ['left', 'right'] },
      ]),
    );
    expect(build.state).toBe('succeeded');
    expect(build.succeeded).toBe(4);
    assertOrder(tasks);
    const left = tasks.find((t) => t.id === 'left')!;
    const right = tasks.find((t) => t.id === 'right')!;
    expect(left.startedAt!).toBeLessThan(right.finishedAt!);
    expect(right.startedAt!).toBeLessThan(left.finishedAt!);
  });

  it('fans out to 50 tasks and back in to 1', async () => {
    const fan = Array.from({ length: 50 }, (_, i) => ({ id: `f${i}`, role: ['backend', 'frontend', 'devops'][i % 3]!, description: 'sleep=200', dependsOn: ['root'] }));
    const { build, tasks } = await runBuild(
      plan([{ id: 'root', description: 'sleep=20' }, ...fan, { id: 'sink', role: 'testing', dependsOn: fan.map((f) => f.id) }]),
    );
    expect(build.state).toBe('succeeded');
    expect(tasks).toHaveLength(52);
    assertOrder(tasks);
    expect(maxOverlap(tasks.filter((t) => t.id.startsWith('f')))).toBeGreaterThanOrEqual(20);
    const sink = tasks.find((t) => t.id === 'sink')!;
    expect(sink.attempts).toBe(1);
  });

  it('runs three levels in order with overlap inside each level', async () => {
    const specs = [
      ...['a1', 'a2', 'a3'].map((id) => ({ id, description: 'sleep=200' })),
      ...['b1', 'b2', 'b3'].map((id, i) => ({ id, role: 'frontend', description: 'sleep=200', dependsOn: i === 0 ? ['a1', 'a2'] : ['a2', 'a3'] })),
      ...['c1', 'c2'].map((id) => ({ id, role: 'testing', description: 'sleep=200', dependsOn: ['b1', 'b2', 'b3'] })),
    ];
    const { build, tasks } = await runBuild(plan(specs));
    expect(build.state).toBe('succeeded');
    assertOrder(tasks);
    for (const level of ['a', 'b', 'c']) {
      expect(maxOverlap(tasks.filter((t) => t.id.startsWith(level))), `level ${level}`).toBeGreaterThanOrEqual(2);
    }
  });

  it('runs a multi-role DAG: every role queue is used and dependencies cross roles', async () => {
    const { build, tasks } = await runBuild(
      plan([
        { id: 'venv', role: 'backend', description: 'sleep=500' },
        { id: 'ui', role: 'frontend', description: 'sleep=500' },
        { id: 'deps', role: 'backend', description: 'sleep=100', dependsOn: ['venv'] },
        { id: 'docker', role: 'devops', description: 'sleep=50', dependsOn: ['deps', 'ui'] },
        { id: 'test-api', role: 'testing', description: 'sleep=50', dependsOn: ['deps'] },
        { id: 'test-ui', role: 'testing', description: 'sleep=50', dependsOn: ['ui'] },
      ]),
    );
    expect(build.state).toBe('succeeded');
    assertOrder(tasks);
    expect(new Set(tasks.map((t) => t.role))).toEqual(new Set(['backend', 'frontend', 'devops', 'testing']));
    const roleOfWorker = new Set(tasks.map((t) => `${t.role}:${t.worker!.split('-')[0]}`));
    for (const entry of roleOfWorker) expect(entry.split(':')[0]).toBe(entry.split(':')[1]);
    const venv = tasks.find((t) => t.id === 'venv')!;
    const ui = tasks.find((t) => t.id === 'ui')!;
    expect(ui.startedAt!).toBeLessThan(venv.finishedAt!);
  });
});
