import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readEvents } from '../../shared/engine/events.js';
import { taskJobId } from '../../shared/engine/queues.js';
import { testConfig } from '../helpers/config.js';
import { engine, plan, type EngineHarness } from '../helpers/engine.js';

/**
 * How a build is stored and how successes are recorded, checked against Redis directly (no
 * workers): creation writes lean records and one event for the roots; successes reported in
 * one turn are recorded in one script, each exactly once.
 */
const config = testConfig();
let h: EngineHarness;

beforeAll(() => {
  h = engine(config);
});

afterAll(async () => {
  await h?.close();
});

describe('creating a build', () => {
  it('queues the roots with their jobs and one build.created event; a task released later gets its own task.queued', async () => {
    const buildId = await h.scheduler.createBuild({
      goal: 'lean records',
      plan: plan([{ id: 'a' }, { id: 'b', role: 'frontend' }, { id: 'c', dependsOn: ['a', 'b'] }]),
    });
    const states = await h.scheduler.dag.getTaskStates(buildId);
    expect(Object.fromEntries(states)).toEqual({ a: 'queued', b: 'queued', c: 'pending' });
    // Each root has its job, carrying its spec; the pending task has none yet.
    const a = await h.scheduler.queues.get('backend').getJob(taskJobId(buildId, 'a', 0));
    expect(JSON.parse(String(a?.data.spec)).title).toBe('task a');
    expect(await h.scheduler.queues.get('frontend').getJob(taskJobId(buildId, 'b', 0))).toBeDefined();
    expect(await h.scheduler.queues.get('backend').getJob(taskJobId(buildId, 'c', 0))).toBeUndefined();

    // Defaults are not stored but read back as such.
    const rawA = await h.redis.hgetall(h.scheduler.keys.task(buildId, 'a'));
    expect(Object.keys(rawA).sort()).toEqual(['dependents', 'gen', 'queuedAt', 'role', 'spec']);
    const viewA = await h.scheduler.dag.getTask(buildId, 'a');
    expect(viewA).toMatchObject({ state: 'queued', attempts: 0, depth: 0, origin: 'plan', remaining: 0, deps: [], dependents: ['c'], gen: 0 });
    expect(viewA.queuedAt).toBeGreaterThan(0);
    const viewC = await h.scheduler.dag.getTask(buildId, 'c');
    expect(viewC).toMatchObject({ state: 'pending', remaining: 2, deps: ['a', 'b'], dependents: [] });
    expect(viewC.queuedAt).toBeUndefined();

    let events = await readEvents(h.redis, h.scheduler.keys, buildId);
    expect(events.map((e) => e.type)).toEqual(['build.created']);
    expect(events[0]!.data).toBe('3');

    await h.scheduler.taskSucceeded(buildId, { taskId: 'a', gen: 0, workerId: 'w1', startedAt: Date.now(), result: null });
    await h.scheduler.taskSucceeded(buildId, { taskId: 'b', gen: 0, workerId: 'w1', startedAt: Date.now(), result: null });
    events = await readEvents(h.redis, h.scheduler.keys, buildId);
    expect(events.filter((e) => e.type === 'task.queued').map((e) => e.task)).toEqual(['c']);
    expect(await h.scheduler.queues.get('backend').getJob(taskJobId(buildId, 'c', 0))).toBeDefined();
    await h.scheduler.cancel(buildId);
  });
});

describe('recording successes', () => {
  it('records a batch in one script: each task once, its start with it when unrecorded, the fan-in released once', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `d${i}`);
    const buildId = await h.scheduler.createBuild({
      goal: 'batch',
      plan: plan([...ids.map((id) => ({ id })), { id: 'join', role: 'testing', dependsOn: ids }, { id: 'other' }]),
    });
    const dag = h.scheduler.dag;
    // d0's start is recorded the usual way; the others start and finish in the batch.
    await dag.startTask(buildId, 'd0', 0, 'w-start');
    const startedAt = Date.now() - 50;
    const batch = await dag.completeTasks(buildId, [
      { taskId: 'd0', gen: 0, workerId: 'w-start', result: { n: 0 } },
      ...ids.slice(1).map((taskId, i) => ({ taskId, gen: 0, workerId: `w${i}`, startedAt, result: { n: i + 1 } })),
      // A duplicate delivery in the same batch, a stale generation and an unknown task.
      { taskId: 'd1', gen: 0, workerId: 'w-dup', startedAt, result: {} },
      { taskId: 'other', gen: 3, workerId: 'w-old', startedAt, result: {} },
      { taskId: 'ghost', gen: 0, workerId: 'w-ghost', startedAt, result: {} },
    ]);
    expect(batch.outcomes).toEqual([
      ...ids.map(() => ({ kind: 'done', applied: true })),
      { kind: 'skip', reason: 'succeeded' },
      { kind: 'skip', reason: 'stale' },
      { kind: 'skip', reason: 'missing' },
    ]);
    expect(batch.ready.map((t) => [t.taskId, t.role, t.gen])).toEqual([['join', 'testing', 0]]);
    expect(batch.finished).toBeUndefined();

    const build = await dag.getBuild(buildId);
    expect({ succeeded: build.succeeded, open: build.open }).toEqual({ succeeded: 6, open: 2 });
    const d3 = await dag.getTask(buildId, 'd3');
    expect(d3).toMatchObject({ state: 'succeeded', attempts: 1, worker: 'w2', startedAt, result: JSON.stringify({ n: 3 }) });
    expect((await dag.getTask(buildId, 'join')).state).toBe('queued');

    const events = await readEvents(h.redis, h.scheduler.keys, buildId);
    const succeeded = events.filter((e) => e.type === 'task.succeeded');
    expect(succeeded.map((e) => e.task)).toEqual(ids);
    // A start recorded apart keeps its own task.started event; one recorded in the batch rides on task.succeeded.
    expect(events.filter((e) => e.type === 'task.started').map((e) => e.task)).toEqual(['d0']);
    expect(succeeded[0]).not.toHaveProperty('startedAt');
    expect(succeeded[1]).toMatchObject({ task: 'd1', role: 'backend', startedAt, attempt: 1, worker: 'w0' });
    expect(events.filter((e) => e.type === 'task.queued').map((e) => e.task)).toEqual(['join']);

    // The same batch again changes nothing.
    const again = await dag.completeTasks(buildId, [{ taskId: 'd0', gen: 0, workerId: 'w-start', result: {} }]);
    expect(again).toEqual({ outcomes: [{ kind: 'done', applied: false }], ready: [] });
    await h.scheduler.cancel(buildId);
  });

  it('successes reported in one turn go to Redis together and each caller gets its own outcome', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `t${i}`);
    const buildId = await h.scheduler.createBuild({ goal: 'one turn', plan: plan([...ids.map((id) => ({ id })), { id: 'end', dependsOn: ids }]) });
    const scripts = vi.spyOn(h.scheduler.dag, 'completeTasks');
    const outcomes = await Promise.all([
      ...ids.map((taskId) => h.scheduler.taskSucceeded(buildId, { taskId, gen: 0, workerId: 'w', startedAt: Date.now(), result: null })),
      h.scheduler.taskSucceeded(buildId, { taskId: 'end', gen: 0, workerId: 'w', startedAt: Date.now(), result: null }),
    ]);
    // 'end' was still pending when the batch ran: it may not start, and says so.
    expect(outcomes.slice(0, 40).every((o) => o.kind === 'done' && o.applied)).toBe(true);
    expect(outcomes[40]).toEqual({ kind: 'skip', reason: 'pending' });
    expect(scripts).toHaveBeenCalledTimes(1);
    expect(scripts.mock.calls[0]![1]).toHaveLength(41);
    scripts.mockRestore();
    // Released by the batch, enqueued before the callers heard back.
    expect((await h.scheduler.dag.getTaskStates(buildId)).get('end')).toBe('queued');
    expect(await h.scheduler.queues.get('backend').getJob(taskJobId(buildId, 'end', 0))).toBeDefined();
    await h.scheduler.taskSucceeded(buildId, { taskId: 'end', gen: 0, workerId: 'w', startedAt: Date.now(), result: null });
    expect((await h.scheduler.dag.getBuild(buildId)).state).toBe('succeeded');
  });
});
