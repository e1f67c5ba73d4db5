import { afterEach, describe, expect, it } from 'vitest';
import { openOrchestrator, type OpenedOrchestrator } from '../../orchestrator/open-orchestrator.js';
import { openRoleWorker, type OpenedRoleWorker } from '../../shared/engine/open-role-worker.js';
import { compileOptions } from '../../shared/options.js';
import { TaskFailedError, type TaskExecutor } from '../../shared/engine/task-executor.js';
import { createLogger } from '../../shared/logger.js';
import { listAgents } from '../../shared/telemetry/agent-status.js';
import { AgentWorld, plan1, REASON, validateWith } from '../helpers/agent.js';
import { runCli } from '../helpers/cli.js';
import { configEnv, testConfig } from '../helpers/config.js';
import { engine, plan, type EngineHarness } from '../helpers/engine.js';
import { waitFor } from '../helpers/processes.js';
import { parseExposition } from '../helpers/prometheus.js';

/**
 * Live agent states: while the scripted LLM server holds a reason call, the agent is
 * `reasoning`; while a command of its plan runs, `acting` — in /api/agents, in `codegod
 * status` and in the Prometheus gauge.
 */
let world: AgentWorld | undefined;
let orchestrator: OpenedOrchestrator | undefined;
afterEach(async () => {
  await orchestrator?.close();
  await world?.close();
  orchestrator = undefined;
  world = undefined;
});

type Json = any;

describe('live agent states', () => {
  it('shows reasoning while a reason call is held and acting while a command runs, everywhere', async () => {
    const HOLD_MS = 6_000;
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, delayMs: HOLD_MS, reply: REASON },
        { match: { phase: 'plan' }, reply: plan1([{ action: 'run_command', params: { command: 'python3', args: ['-c', `import time; time.sleep(${HOLD_MS / 1_000})`] } }]) },
        { match: { phase: 'validate' }, reply: validateWith([{ kind: 'command', target: 'python3', args: ['-c', 'pass'] }]) },
      ],
    });
    // The LLM's answer takes HOLD_MS: well within the client's timeout.
    await world.startWorker('backend', { AGENT_ID: 'live-be', LLM_TIMEOUT_MS: String(4 * HOLD_MS) });
    orchestrator = openOrchestrator(world.config, createLogger('silent'));
    await orchestrator.start();
    const url = orchestrator.httpUrl!;
    const env = configEnv(world.config);
    const apiAgent = async (): Promise<Json> => ((await (await fetch(`${url}/api/agents`)).json()) as Json).agents.find((a: Json) => a.agentId === 'live-be');
    const gauge = async (state: string) => parseExposition(await (await fetch(`${url}/metrics`)).text()).value('codegod_agents', { role: 'backend', state });

    expect((await apiAgent()).state).toBe('idle');
    const buildId = await world.build([{ id: 'slow', role: 'backend' }]);

    // Reasoning: the scripted server holds the reason call.
    const held = () => world!.requests('reason', 'slow').filter((r) => r.status === null).length === 1;
    await waitFor(held, 'the scripted server to hold the reason call', 20_000);
    const reasoning = await apiAgent();
    expect(reasoning.state).toBe('reasoning');
    expect(reasoning.currentTask).toMatchObject({ buildId, taskId: 'slow', phase: 'reasoning' });
    expect(reasoning.currentTasks).toEqual([reasoning.currentTask]);
    expect(reasoning.uptimeMs).toBeGreaterThan(0);
    expect(await gauge('reasoning')).toBe(1);
    expect(await gauge('idle')).toBe(0);
    const status = await runCli(['status', '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    const fromCli = (JSON.parse(status.stdout) as Json).agents.find((a: Json) => a.agentId === 'live-be');
    expect(fromCli).toMatchObject({ state: 'reasoning', currentTask: { buildId, taskId: 'slow', phase: 'reasoning' } });
    expect(held()).toBe(true);

    // Acting: the plan's command runs (its step is not recorded yet).
    await waitFor(async () => (await apiAgent()).state === 'acting', 'the agent to report acting', 20_000);
    expect((await world.trace(buildId, 'slow'))!.iterations[0]!.act?.steps ?? []).toHaveLength(0);
    const text = await runCli(['status'], env);
    expect(text.stdout).toMatch(new RegExp(`live-be +backend +acting +${buildId}/slow +\\S+`));
    expect(await gauge('acting')).toBe(1);
    expect((await world.trace(buildId, 'slow'))!.iterations[0]!.act?.steps ?? []).toHaveLength(0);

    expect((await world.waitForEnd(buildId)).state).toBe('succeeded');
    const done = await waitFor(async () => {
      const a = await apiAgent();
      return a.state === 'idle' && a.tasksCompleted === 1 ? a : undefined;
    }, 'the agent to be idle again', 10_000);
    expect(done.currentTask).toBeNull();
  });
});

describe('agent states between tasks', () => {
  let harness: EngineHarness | undefined;
  let worker: OpenedRoleWorker | undefined;
  afterEach(async () => {
    await worker?.close();
    await harness?.close();
    worker = undefined;
    harness = undefined;
  });

  it('backoff while a failed attempt waits for its retry, error after a task failed for good, idle after a success', async () => {
    const config = testConfig({ CODEGOD_HEARTBEAT_MS: '200', CODEGOD_TASK_ATTEMPTS: '2', CODEGOD_TASK_BACKOFF_MS: '2500' });
    harness = engine(config);
    const seen: string[] = [];
    let runs = 0;
    const executor: TaskExecutor = {
      async execute(ctx) {
        runs += 1;
        ctx.setPhase('observing');
        if (ctx.taskId === 'flaky' && runs === 1) throw new Error('the LLM is down');
        if (ctx.taskId === 'doomed') throw new TaskFailedError('cannot be done', false);
        return { ok: true };
      },
    };
    worker = openRoleWorker({ options: compileOptions(config), role: 'backend', executor, logger: createLogger('silent'), agentId: 'states-be' });
    await worker.start();
    const state = async () => (await listAgents(harness!.redis, harness!.scheduler.keys)).agents.find((a) => a.agentId === 'states-be')!.state;
    const until = (want: string) =>
      waitFor(async () => {
        const now = await state();
        if (seen.at(-1) !== now) seen.push(now);
        return now === want;
      }, `the agent to be ${want}`, 15_000, 20);

    const flaky = await harness.scheduler.createBuild({ goal: 'states', plan: plan([{ id: 'flaky' }]) });
    await until('backoff');
    await until('idle');
    expect((await harness.scheduler.dag.getBuild(flaky)).state).toBe('succeeded');
    await harness.scheduler.createBuild({ goal: 'states', plan: plan([{ id: 'doomed' }]) });
    await until('error');
    expect(seen).toEqual(expect.arrayContaining(['idle', 'backoff', 'error']));
  });
});
