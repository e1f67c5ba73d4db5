import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnrecoverableError, Worker } from 'bullmq';
import { Reconciler } from '../../shared/engine/reconciler.js';
import { GOALS_QUEUE } from '../../shared/engine/queues.js';
import { createLogger } from '../../shared/logger.js';
import { testConfig } from '../helpers/config.js';
import { engine, plan, waitForBuildEnd, waitForWorkers, type EngineHarness } from '../helpers/engine.js';
import { startWorker, waitFor, type ChildHandle } from '../helpers/processes.js';

/** Hand-edited keys fail the task or build with a clear reason; they never crash a worker. */
const config = testConfig();
let h: EngineHarness;
let reconciler: Reconciler;
const workers: ChildHandle[] = [];

beforeAll(() => {
  h = engine(config);
  reconciler = new Reconciler(h.scheduler, h.redis, createLogger('silent'));
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill('SIGTERM')));
  await h?.close();
});

describe('malformed data in Redis', () => {
  it('a hand-edited task spec fails that task with the reason; the worker survives and runs the next build', async () => {
    const buildId = await h.scheduler.createBuild({ goal: 'corrupt spec', plan: plan([{ id: 'x', role: 'devops' }, { id: 'y', role: 'devops', dependsOn: ['x'] }]) });
    // Hand-edited in both places it is kept: the task record and the copy its job carries.
    await h.redis.hset(h.scheduler.keys.task(buildId, 'x'), 'spec', '{not json');
    const job = (await h.scheduler.queues.get('devops').getJob(`${buildId}.x.0`))!;
    await job.updateData({ ...job.data, spec: '{not json' });
    // A job with data that is not a task at all, queued beside it.
    await h.scheduler.queues.get('devops').add('garbage', { hello: 'world' }, { jobId: 'garbage-1' });

    const w = startWorker(config, 'devops');
    workers.push(w);
    await waitForWorkers(h.redis, config, [w]);
    const build = await waitForBuildEnd(h.scheduler, buildId);
    expect(build.state).toBe('failed');
    expect(build.reason).toMatch(/malformed data in Redis at .*task:x: spec: spec is not JSON/);
    expect((await h.scheduler.dag.getTaskStates(buildId)).get('y')).toBe('skipped');

    const garbage = await waitFor(async () => {
      const job = await h.scheduler.queues.get('devops').getJob('garbage-1');
      return job?.failedReason ? job : undefined;
    }, 'the garbage job to fail');
    expect(garbage.failedReason).toMatch(/malformed job data/);

    const next = await h.scheduler.createBuild({ goal: 'after corruption', plan: plan([{ id: 'ok', role: 'devops' }]) });
    expect((await waitForBuildEnd(h.scheduler, next)).state).toBe('succeeded');
    expect(w.proc.exitCode).toBeNull();
  });

  it('an unknown task state fails the build through the reconciler', async () => {
    const buildId = await h.scheduler.createBuild({ goal: 'corrupt states', plan: plan([{ id: 'a', role: 'frontend' }]) });
    await h.redis.hset(h.scheduler.keys.buildStates(buildId), 'a', 'banana');
    const report = await reconciler.reconcileOnce();
    expect(report.corrupt).toBeGreaterThanOrEqual(1);
    const build = await h.scheduler.dag.getBuild(buildId);
    expect(build.state).toBe('failed');
    expect(build.reason).toMatch(/malformed data in Redis at .*states: task a has unknown state 'banana'/);
    expect(await h.scheduler.dag.activeBuilds()).not.toContain(buildId);
  });

  it('a corrupt build record fails the build; a corrupt task record fails the task', async () => {
    const broken = await h.scheduler.createBuild({ goal: 'corrupt build', plan: plan([{ id: 'a', role: 'frontend' }]) });
    await h.redis.hset(h.scheduler.keys.build(broken), 'total', 'lots');
    const taskBroken = await h.scheduler.createBuild({ goal: 'corrupt task', plan: plan([{ id: 'a', role: 'frontend' }, { id: 'b', role: 'frontend' }]) });
    await h.redis.hset(h.scheduler.keys.task(taskBroken, 'a'), 'role', 'wizard');
    await reconciler.reconcileOnce();
    const b1 = await h.redis.hgetall(h.scheduler.keys.build(broken));
    expect(b1.state).toBe('failed');
    expect(b1.reason).toMatch(/malformed data in Redis at .*: total: /);
    // A crash between the record and the active index leaves it for the next pass, which ends it once.
    await h.redis.sadd(h.scheduler.keys.activeBuilds, broken);
    await reconciler.reconcileOnce();
    const finished = (await h.redis.xrange(h.scheduler.keys.events(broken), '-', '+')).filter(([, f]) => f.includes('build.finished'));
    expect(finished).toHaveLength(1);
    expect(await h.scheduler.dag.activeBuilds()).not.toContain(broken);
    const states = await h.scheduler.dag.getTaskStates(taskBroken);
    expect(states.get('a')).toBe('failed');
    expect(states.get('b')).toBe('queued');
    expect((await h.scheduler.dag.getTask(taskBroken, 'b')).state).toBe('queued');
    await h.scheduler.cancel(taskBroken);
  });

  it('a dangling id in the active index is dropped', async () => {
    await h.redis.sadd(h.scheduler.keys.activeBuilds, 'b-gone0000-abcd');
    const report = await reconciler.reconcileOnce();
    expect(report.retired).toBeGreaterThanOrEqual(1);
    expect(await h.scheduler.dag.activeBuilds()).not.toContain('b-gone0000-abcd');
  });

  it('a task whose job BullMQ failed for good, unseen by any processor, fails the task and the build', async () => {
    const buildId = await h.scheduler.createBuild({ goal: 'a job BullMQ gives up on', plan: plan([{ id: 'a', role: 'testing' }, { id: 'b', role: 'testing', dependsOn: ['a'] }]) });
    // Take the job as a worker would and fail it for good, as a stalled job past its limit ends.
    const taker = new Worker('testing', null, { connection: h.redis.duplicate(), prefix: h.scheduler.keys.queuePrefix, autorun: false });
    try {
      const job = await taker.getNextJob('test-token');
      expect(job?.id).toBe(`${buildId}.a.0`);
      await job!.moveToFailed(new UnrecoverableError('job stalled more than allowable limit'), 'test-token');
    } finally {
      await taker.close();
    }
    const report = await reconciler.reconcileOnce();
    expect(report.failedFromJobs).toBeGreaterThanOrEqual(1);
    const build = await h.scheduler.dag.getBuild(buildId);
    expect(build.state).toBe('failed');
    expect(build.reason).toMatch(/task a failed: job failed for good: job stalled more than allowable limit/);
    expect((await h.scheduler.dag.getTaskStates(buildId)).get('b')).toBe('skipped');
  });

  it('a job whose hash BullMQ cannot parse counts as present, and the rest of its build is still repaired', async () => {
    const buildId = await h.scheduler.createBuild({ goal: 'a job hand-edited past parsing', plan: plan([{ id: 'a', role: 'frontend' }, { id: 'b', role: 'frontend' }]) });
    const queue = h.scheduler.queues.get('frontend');
    await h.redis.hset(queue.toKey(`${buildId}.a.0`), 'data', '{not json');
    await queue.remove(`${buildId}.b.0`);
    const report = await reconciler.reconcileOnce();
    expect(report.requeued).toBeGreaterThanOrEqual(1);
    expect(await queue.getJob(`${buildId}.b.0`)).toBeDefined();
    expect(await h.redis.hget(queue.toKey(`${buildId}.a.0`), 'data')).toBe('{not json');
    expect((await h.scheduler.dag.getTaskStates(buildId)).get('a')).toBe('queued');
    await h.scheduler.cancel(buildId);
  });

  it('a planning build whose goal job vanished gets it back; one whose goal job failed for good fails', async () => {
    const goals = h.scheduler.queues.get(GOALS_QUEUE);
    const lost = await h.scheduler.submitGoal({ goal: 'a goal whose job is lost' });
    await goals.remove(lost);
    expect(await goals.getJob(lost)).toBeUndefined();
    const given = await h.scheduler.submitGoal({ goal: 'a goal BullMQ gives up on' });
    // Take the job as a worker would and fail it for good, as a stalled job past its limit ends.
    const taker = new Worker(GOALS_QUEUE, null, { connection: h.redis.duplicate(), prefix: h.scheduler.keys.queuePrefix, autorun: false });
    try {
      let job = await taker.getNextJob('test-token');
      while (job && job.id !== given) job = await taker.getNextJob('test-token');
      expect(job?.id).toBe(given);
      await job!.moveToFailed(new UnrecoverableError('job stalled more than allowable limit'), 'test-token');
    } finally {
      await taker.close();
    }
    await reconciler.reconcileOnce();
    expect(await goals.getJob(lost)).toBeDefined();
    expect((await h.scheduler.dag.getBuild(lost)).state).toBe('planning');
    const failed = await h.scheduler.dag.getBuild(given);
    expect(failed.state).toBe('failed');
    expect(failed.failureCode).toBe('PLANNING_FAILED');
    expect(failed.reason).toMatch(/planning failed for good: job stalled more than allowable limit/);
  });
});

