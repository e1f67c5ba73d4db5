import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { readEvents, type BuildEvent } from '../../shared/engine/events.js';
import { testConfig, uniquePrefix } from '../helpers/config.js';
import { engine, plan, waitForBuildEnd, waitForWorkers, type EngineHarness } from '../helpers/engine.js';
import { FAST_RECOVERY, startOrchestrator, startWorker, waitFor, type ChildHandle } from '../helpers/processes.js';
import { freePort, RedisServer } from '../../shared/redis/redis-server.js';

const children: ChildHandle[] = [];
const harnesses: EngineHarness[] = [];
const servers: RedisServer[] = [];

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill('SIGKILL')));
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

function spawnWorker(config: ReturnType<typeof testConfig>, role: string, extra: Record<string, string> = {}): ChildHandle {
  const c = startWorker(config, role, { ...FAST_RECOVERY, WORKER_CONCURRENCY: '4', ...extra });
  children.push(c);
  return c;
}

/** Per task: how many times it started and how many times it succeeded, from the event stream. */
function countByTask(events: BuildEvent[], type: BuildEvent['type']): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of events) if (e.type === type && e.task) out.set(e.task, (out.get(e.task) ?? 0) + 1);
  return out;
}

describe('crash recovery', () => {
  it('SIGKILL of a worker mid-task: the task runs again on another worker and the build succeeds, every task completed once', async () => {
    const config = testConfig(FAST_RECOVERY);
    const h = engine(config);
    harnesses.push(h);
    const a = spawnWorker(config, 'backend');
    const b = spawnWorker(config, 'backend');
    await waitForWorkers(h.redis, config, [a, b]);
    const buildId = await h.scheduler.createBuild({
      goal: 'kill a worker',
      plan: plan([
        { id: 'first', description: 'sleep=50' },
        { id: 'victim', description: 'sleep=2500', dependsOn: ['first'] },
        { id: 'side', description: 'sleep=100', dependsOn: ['first'] },
        { id: 'last', dependsOn: ['victim', 'side'] },
      ]),
    });
    const holder = await waitFor(async () => {
      const t = await h.scheduler.dag.getTask(buildId, 'victim');
      return t.state === 'running' ? t.worker : undefined;
    }, 'victim to start');
    const victimWorker = [a, b].find((c) => holder.endsWith(`-${c.pid}`))!;
    expect(victimWorker).toBeDefined();
    await victimWorker.kill('SIGKILL');

    const build = await waitForBuildEnd(h.scheduler, buildId, 30_000);
    expect(build.state).toBe('succeeded');
    const events = await readEvents(h.redis, h.scheduler.keys, buildId);
    expect(Object.fromEntries(countByTask(events, 'task.succeeded'))).toEqual({ first: 1, victim: 1, side: 1, last: 1 });
    expect(countByTask(events, 'task.started').get('victim')).toBe(2);
    const victim = await h.scheduler.dag.getTask(buildId, 'victim');
    expect(victim.worker).not.toBe(holder);
  });

  it('a crash between "dependency done" and "dependent enqueued" is repaired by the reconciler', async () => {
    const config = testConfig(FAST_RECOVERY);
    const h = engine(config);
    harnesses.push(h);
    const crashing = spawnWorker(config, 'backend', { CODEGOD_CRASH_AT: 'after-complete' });
    await waitForWorkers(h.redis, config, [crashing]);
    const buildId = await h.scheduler.createBuild({
      goal: 'crash after complete',
      plan: plan([{ id: 'dep' }, { id: 'next', role: 'frontend', dependsOn: ['dep'] }, { id: 'next2', role: 'frontend', dependsOn: ['dep'] }]),
    });
    const exit = await crashing.exited;
    expect(exit.signal).toBe('SIGKILL');
    // The crash left the dependents queued in codegod's state but with no job in BullMQ.
    const states = await h.scheduler.dag.getTaskStates(buildId);
    expect(states.get('dep')).toBe('succeeded');
    expect(states.get('next')).toBe('queued');
    expect(await h.scheduler.queues.get('frontend').getJob(`${buildId}.next.0`)).toBeUndefined();

    const front = spawnWorker(config, 'frontend');
    await waitForWorkers(h.redis, config, [front]);
    await new Promise((r) => setTimeout(r, 500));
    expect((await h.scheduler.dag.getBuild(buildId)).state).toBe('running');

    children.push(startOrchestrator(config, FAST_RECOVERY));
    const build = await waitForBuildEnd(h.scheduler, buildId, 20_000);
    expect(build.state).toBe('succeeded');
    const events = await readEvents(h.redis, h.scheduler.keys, buildId);
    expect(Object.fromEntries(countByTask(events, 'task.succeeded'))).toEqual({ dep: 1, next: 1, next2: 1 });
  });

  it('Redis killed with SIGKILL and restarted mid-build (AOF): the build completes and nothing is lost', async () => {
    const server = await new RedisServer({ appendonly: true }).start();
    servers.push(server);
    const timings = { ...FAST_RECOVERY, CODEGOD_LOCK_DURATION_MS: '4000', CODEGOD_STALLED_INTERVAL_MS: '1000' };
    const config = loadConfig({ REDIS_URL: server.url, CODEGOD_PREFIX: uniquePrefix(), LOG_LEVEL: 'silent', ...timings });
    const h = engine(config);
    harnesses.push(h);
    const ws = ['backend', 'frontend', 'testing'].map((r) => spawnWorker(config, r, timings));
    children.push(startOrchestrator(config, timings));
    await waitForWorkers(h.redis, config, ws);

    const specs = [];
    for (let layer = 0; layer < 6; layer++) {
      for (let i = 0; i < 4; i++) {
        specs.push({
          id: `l${layer}t${i}`,
          role: ['backend', 'frontend', 'testing'][(layer + i) % 3]!,
          description: 'sleep=150',
          dependsOn: layer === 0 ? [] : [`l${layer - 1}t${i}`, `l${layer - 1}t${(i + 1) % 4}`],
        });
      }
    }
    const buildId = await h.scheduler.createBuild({ goal: 'survive a redis crash', plan: plan(specs) });
    await waitFor(async () => ((await h.scheduler.dag.getBuild(buildId)).succeeded >= 6 ? true : undefined), 'some progress');
    const before = await h.scheduler.dag.getBuild(buildId);
    expect(before.state).toBe('running');

    await server.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 700));
    await server.start();

    const build = await waitForBuildEnd(h.scheduler, buildId, 45_000);
    expect(build.state).toBe('succeeded');
    expect(build.succeeded).toBe(24);
    expect(build.succeeded).toBeGreaterThanOrEqual(before.succeeded);
    const events = await readEvents(h.redis, h.scheduler.keys, buildId);
    const succeeded = countByTask(events, 'task.succeeded');
    expect(succeeded.size).toBe(24);
    expect([...succeeded.values()].every((n) => n === 1)).toBe(true);
    for (const c of ws) expect(c.proc.exitCode).toBeNull();
  });

  it('a worker started while Redis is down logs, keeps retrying, and works once Redis is up', async () => {
    const server = new RedisServer({ appendonly: true });
    servers.push(server);
    server.port = await freePort();
    const config = loadConfig({ REDIS_URL: server.url, CODEGOD_PREFIX: uniquePrefix(), LOG_LEVEL: 'silent', ...FAST_RECOVERY });
    const w = spawnWorker(config, 'testing', { LOG_LEVEL: 'warn' });
    await waitFor(() => /redis connection error; retrying/.test(w.text), 'the worker to report the outage', 15_000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(w.proc.exitCode).toBeNull();
    await server.start();
    const h = engine(config);
    harnesses.push(h);
    await waitForWorkers(h.redis, config, [w]);
    const buildId = await h.scheduler.createBuild({ goal: 'late redis', plan: plan([{ id: 'x', role: 'testing' }]) });
    expect((await waitForBuildEnd(h.scheduler, buildId)).state).toBe('succeeded');
  });
});

