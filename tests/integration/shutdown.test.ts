import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { readEvents } from '../../shared/engine/events.js';
import { GOALS_QUEUE, taskJobId } from '../../shared/engine/queues.js';
import { RedisServer } from '../../shared/redis/redis-server.js';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import { testConfig } from '../helpers/config.js';
import { engine, plan, waitForBuildEnd, waitForWorkers, type EngineHarness } from '../helpers/engine.js';
import { FAST_RECOVERY, startOrchestrator, startWorker, waitFor, type ChildHandle } from '../helpers/processes.js';

/**
 * Bounded shutdown: SIGTERM ends an orchestrator within 10 s whatever Redis is doing, hands
 * back the goal it was planning, and a worker whose stop grace is spent hands back its task.
 */
const children: ChildHandle[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill('SIGKILL')));
  for (const c of cleanups.splice(0).reverse()) await c();
});

function track<T extends { close(): Promise<unknown> }>(x: T): T {
  cleanups.push(() => x.close());
  return x;
}

async function timeToExit(child: ChildHandle, signal: NodeJS.Signals = 'SIGTERM'): Promise<number> {
  const t0 = Date.now();
  child.proc.kill(signal);
  await child.exited;
  return Date.now() - t0;
}

async function orchestratorLive(h: EngineHarness): Promise<void> {
  await waitFor(async () => Object.keys(await h.redis.hgetall(h.scheduler.keys.agentsStatus)).some((id) => id.startsWith('master-')), 'the orchestrator heartbeat', 30_000);
}

describe('bounded shutdown', () => {
  it('SIGTERM with Redis stopped ends the orchestrator in under 10 s', async () => {
    const server = await new RedisServer().start();
    cleanups.push(() => server.kill());
    const config = testConfig({ ...FAST_RECOVERY, REDIS_URL: server.url });
    const h = engine(config);
    cleanups.push(() => h.close());
    const orchestrator = startOrchestrator(config);
    children.push(orchestrator);
    await orchestratorLive(h);
    await server.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1_000));
    const ms = await timeToExit(orchestrator);
    expect(ms, orchestrator.text).toBeLessThan(10_000);
  }, 60_000);

  it('SIGTERM while planning hands the goal back; another orchestrator plans it', async () => {
    const llm = track<ScriptedLlmServer>(await startScriptedLlmServer({ scenario: { rules: [{ match: { phase: 'plan-dag' }, fault: 'hang' }] } }));
    const config = testConfig({ ...FAST_RECOVERY, VLLM_API_URL: llm.url, LLM_MAX_RETRIES: '0' });
    const h = engine(config);
    cleanups.push(() => h.close());
    const first = startOrchestrator(config);
    children.push(first);
    await orchestratorLive(h);
    const buildId = await h.scheduler.submitGoal({ goal: 'a goal planned across a restart' });
    await waitFor(() => llm.inFlight > 0, 'the planner to ask the LLM', 30_000);

    const ms = await timeToExit(first);
    expect(ms, first.text).toBeLessThan(10_000);
    const goals = track(new Queue(GOALS_QUEUE, { connection: h.redis, prefix: h.scheduler.keys.queuePrefix }));
    const job = await goals.getJob(buildId);
    expect(await job?.getState()).toBe('waiting');
    expect(job?.attemptsMade).toBe(0);

    llm.reset({ rules: [{ match: { phase: 'plan-dag' }, reply: { summary: 'one task', tasks: [{ id: 'only', role: 'backend', title: 'only', description: 'noop', dependsOn: [], acceptanceCriteria: [] }] } }] });
    const worker = startWorker(config, 'backend', FAST_RECOVERY);
    children.push(worker, startOrchestrator(config));
    await waitForWorkers(h.redis, config, [worker]);
    expect((await waitForBuildEnd(h.scheduler, buildId, 30_000)).state).toBe('succeeded');
  }, 90_000);

  it('a worker whose stop grace is spent hands its task back, and another worker finishes it', async () => {
    const config = testConfig(FAST_RECOVERY);
    const h = engine(config);
    cleanups.push(() => h.close());
    const first = startWorker(config, 'backend', { ...FAST_RECOVERY, CODEGOD_STOP_GRACE_MS: '300' });
    children.push(first);
    await waitForWorkers(h.redis, config, [first]);
    const buildId = await h.scheduler.createBuild({ goal: 'hand back', plan: plan([{ id: 'long', description: 'sleep=4000' }]) });
    await waitFor(async () => (await h.scheduler.dag.getTask(buildId, 'long')).state === 'running', 'the task to run', 15_000);

    const ms = await timeToExit(first);
    expect(ms, first.text).toBeLessThan(5_000);
    const backend = track(new Queue('backend', { connection: h.redis, prefix: h.scheduler.keys.queuePrefix }));
    const job = await backend.getJob(taskJobId(buildId, 'long', 0));
    expect(await job?.getState()).toBe('waiting');

    const second = startWorker(config, 'backend', FAST_RECOVERY);
    children.push(second);
    expect((await waitForBuildEnd(h.scheduler, buildId, 30_000)).state).toBe('succeeded');
    const events = await readEvents(h.redis, h.scheduler.keys, buildId);
    expect(events.filter((e) => e.type === 'task.failed' || e.type === 'task.retried')).toEqual([]);
  }, 60_000);
});
