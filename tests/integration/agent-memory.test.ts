import { afterEach, describe, expect, it } from 'vitest';
import type { RequestLogEntry } from '../../scripts/llm-server/server.js';
import { setKnowledge } from '../../shared/memory/reducers.js';
import { MemoryStore } from '../../shared/memory/store.js';
import { TeamKnowledge } from '../../shared/memory/team-knowledge.js';
import { AgentWorld, plan1, promptOf, REASON, validateWith } from '../helpers/agent.js';
import { runCli } from '../helpers/cli.js';
import { configEnv } from '../helpers/config.js';

/**
 * Private and team memory in the loop, through the scripted LLM server's request log with
 * real worker processes: what an agent remembers of earlier attempts reaches its prompts, a
 * wipe (the stuck detector's or `codegod wipe`) takes it out, a restore brings it back, one
 * agent's memory never reaches another's prompts, and team knowledge is written by its owner
 * only. Markers are printed by commands from pieces, so they reach a prompt only through what
 * the agent observed, never through the plan that ran the command.
 */
let world: AgentWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const ONE_ATTEMPT = { CODEGOD_TASK_ATTEMPTS: '1', CODEGOD_REPLANS_PER_TASK: '0' };
const failingCommand = (pieces: string[]) => ({
  action: 'run_command',
  params: { command: 'python3', args: ['-c', `print(${pieces.map((p) => `'${p}'`).join(' + ')}); raise SystemExit(3)`] },
});

function memoryStore(w: AgentWorld): MemoryStore {
  return new MemoryStore(w.engine.redis, w.engine.scheduler.keys);
}

/** The reason calls of a task, one per iteration, in order. */
function reasons(w: AgentWorld, task: string): RequestLogEntry[] {
  return w.requests('reason', task);
}

describe('private memory in the loop', () => {
  it('a second iteration after a failed validation sees what the first observed; core knowledge is always there', async () => {
    world = await AgentWorld.start(
      {
        rules: [
          { match: { phase: 'reason' }, reply: REASON },
          { match: { phase: 'plan' }, reply: plan1([{ action: 'write_file', params: { path: 'notes.txt', content: 'draft\n' } }]) },
          { match: { phase: 'validate' }, times: 1, reply: validateWith([{ kind: 'file_contains', target: 'notes.txt', contains: 'VALIDATION-MARKER' }]) },
          { match: { phase: 'validate' }, reply: validateWith([{ kind: 'file_exists', target: 'notes.txt' }]) },
        ],
      },
      ONE_ATTEMPT,
    );
    await memoryStore(world).update('mem-val', 'backend', (m) => setKnowledge(m, 'deploy_region', 'CORE-KNOWLEDGE-7'));
    await world.startWorker('backend', { AGENT_ID: 'mem-val', ...ONE_ATTEMPT });
    const buildId = await world.build([{ id: 'notes', role: 'backend' }]);
    expect((await world.waitForEnd(buildId)).state).toBe('succeeded');

    const [first, second] = reasons(world, 'notes').map((r) => promptOf(r).memory);
    expect(first).toContain('- deploy_region: CORE-KNOWLEDGE-7');
    expect(first).toContain('Your memory of this task: nothing from earlier attempts.');
    expect(first).not.toContain('VALIDATION-MARKER');
    expect(second).toContain('- deploy_region: CORE-KNOWLEDGE-7');
    expect(second).toContain('Your memory of this task from earlier attempts (most recent first):');
    expect(second).toMatch(/- observed: iteration 1 failed: file_contains notes.txt: does not contain "VALIDATION-MARKER"/);
    expect(second).toMatch(/- observed: Virtual environment: none/);
    expect(second).toMatch(/- validate: file_contains notes.txt/);
  });

  it('a task resumed after a SIGKILL on the same agent sees what its first attempt observed', async () => {
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, reply: REASON },
        { match: { phase: 'plan' }, reply: plan1([{ action: 'write_file', params: { path: 'a.txt', content: 'a\n' } }]) },
        { match: { phase: 'validate' }, reply: validateWith([{ kind: 'file_exists', target: 'a.txt' }]) },
      ],
    });
    const doomed = await world.startWorker('backend', { AGENT_ID: 'mem-kill', CODEGOD_CRASH_AT: 'after-observe' });
    const buildId = await world.build([{ id: 'resumed', role: 'backend' }]);
    expect((await doomed.exited).signal).toBe('SIGKILL');
    expect(world.requests('reason')).toHaveLength(0);

    await world.startWorker('backend', { AGENT_ID: 'mem-kill' });
    expect((await world.waitForEnd(buildId)).state).toBe('succeeded');
    const [resumed] = reasons(world, 'resumed');
    const memory = promptOf(resumed!).memory;
    expect(memory).toContain('Your memory of this task from earlier attempts (most recent first):');
    expect(memory).toMatch(/- observed: Virtual environment: none/);
    expect(memory).toMatch(/- observed: Python: /);
  });

  it('the stuck detector and `codegod wipe` give fresh reasoning keeping core knowledge; `codegod memory restore` brings the memory back', async () => {
    world = await AgentWorld.start(
      {
        rules: [
          { match: { phase: 'reason' }, reply: REASON },
          { match: { phase: 'plan' }, reply: plan1([failingCommand(['ATT', 'EMPT-', 'MARKER'])]) },
        ],
      },
      { ...ONE_ATTEMPT, CODEGOD_MAX_ITERATIONS: '1' },
    );
    const env = configEnv(world.config);
    await memoryStore(world).update('mem-be', 'backend', (m) => setKnowledge(m, 'deploy_region', 'CORE-KNOWLEDGE-7'));
    await world.startWorker('backend', { AGENT_ID: 'mem-be', ...ONE_ATTEMPT, CODEGOD_MAX_ITERATIONS: '1' });
    const buildId = await world.build([{ id: 'redo', role: 'backend' }]);
    const attempt = async (): Promise<string> => {
      const before = reasons(world!, 'redo').length;
      const build = await world!.waitForEnd(buildId);
      expect(build.state).toBe('failed');
      const calls = reasons(world!, 'redo');
      // One iteration, stuck, wiped, one more iteration: two reason calls per attempt.
      expect(calls.length - before).toBe(2);
      const [first, afterStuckWipe] = calls.slice(before).map((r) => promptOf(r).memory);
      // The stuck detector's wipe: the iteration after it remembers nothing of the task, and keeps core knowledge.
      expect(afterStuckWipe).toContain('Your memory of this task: nothing from earlier attempts.');
      expect(afterStuckWipe).not.toContain('MARKER');
      expect(afterStuckWipe).toContain('- deploy_region: CORE-KNOWLEDGE-7');
      return first!;
    };
    const retry = async () => expect((await runCli(['retry', buildId, 'redo'], env)).code).toBe(0);

    const firstAttempt = await attempt();
    expect(firstAttempt).not.toContain('ATTEMPT-MARKER');

    // A new attempt (codegod retry) remembers the last one: what it observed and what it was blocked on.
    await retry();
    const second = await attempt();
    expect(second).toMatch(/- observed: iteration \d+ failed: step 1 \(run_command\) failed: [^\n]*\n[\s\S]*ATTEMPT-MARKER/);
    expect(second).toMatch(/- you were blocked on: stuck after a memory wipe/);
    expect(second).toContain('- deploy_region: CORE-KNOWLEDGE-7');

    expect((await runCli(['memory', 'checkpoint', 'mem-be', 'before-wipe'], env)).code).toBe(0);
    const wiped = await runCli(['wipe', '--agent', 'mem-be', '--yes'], env);
    expect(wiped.code, wiped.stderr).toBe(0);
    await retry();
    const afterWipe = await attempt();
    expect(afterWipe).toContain('Your memory of this task: nothing from earlier attempts.');
    expect(afterWipe).not.toContain('MARKER');
    expect(afterWipe).not.toContain('blocked on');
    expect(afterWipe).toContain('- deploy_region: CORE-KNOWLEDGE-7');

    expect((await runCli(['memory', 'restore', 'mem-be', 'before-wipe'], env)).code).toBe(0);
    await retry();
    const restored = await attempt();
    expect(restored).toMatch(/- observed: iteration \d+ failed: step 1 \(run_command\) failed: [^\n]*\n[\s\S]*ATTEMPT-MARKER/);
    expect(restored).toMatch(/- you were blocked on: stuck after a memory wipe/);
  });

  it("one agent's memory never reaches another agent's prompts", async () => {
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, reply: REASON },
        { match: { phase: 'plan' }, times: 2, reply: plan1([failingCommand(['ONLY-', 'FIRST-', 'TRY'])]) },
        { match: { phase: 'plan' }, reply: plan1([{ action: 'write_file', params: { path: 'x.txt', content: 'x\n' } }]) },
        { match: { phase: 'validate' }, reply: validateWith([{ kind: 'file_exists', target: 'x.txt' }]) },
      ],
    });
    const store = memoryStore(world);
    await store.update('agent-a', 'backend', (m) => setKnowledge(m, 'secret_a', 'A-PRIVATE-KNOWLEDGE'));
    await store.update('agent-b', 'backend', (m) => setKnowledge(m, 'secret_b', 'B-PRIVATE-KNOWLEDGE'));
    await Promise.all([world.startWorker('backend', { AGENT_ID: 'agent-a', WORKER_CONCURRENCY: '1' }), world.startWorker('backend', { AGENT_ID: 'agent-b', WORKER_CONCURRENCY: '1' })]);
    const ids = Array.from({ length: 6 }, (_, i) => `t${i}`);
    const buildId = await world.build(ids.map((id) => ({ id, role: 'backend' })));
    expect((await world.waitForEnd(buildId, 90_000)).state).toBe('succeeded');

    const byAgent = new Map<string, string[]>();
    for (const id of ids) {
      const worker = (await world.engine.scheduler.dag.getTask(buildId, id)).worker!;
      byAgent.set(worker, [...(byAgent.get(worker) ?? []), ...world.requests(undefined, id).map((r) => promptOf(r).all)]);
    }
    expect([...byAgent.keys()].sort()).toEqual(['agent-a', 'agent-b']);
    for (const prompt of byAgent.get('agent-a')!) {
      expect(prompt).toContain('A-PRIVATE-KNOWLEDGE');
      expect(prompt).not.toContain('B-PRIVATE-KNOWLEDGE');
    }
    for (const prompt of byAgent.get('agent-b')!) {
      expect(prompt).toContain('B-PRIVATE-KNOWLEDGE');
      expect(prompt).not.toContain('A-PRIVATE-KNOWLEDGE');
    }
    // The failures (ONLY-FIRST-TRY) an agent observed stay with it and the task they happened in.
    const failedTasks = ids.filter((id) => world!.requests('plan', id).length > 1);
    for (const id of ids.filter((t) => !failedTasks.includes(t))) {
      for (const r of world.requests(undefined, id)) expect(promptOf(r).all).not.toContain('ONLY-FIRST-TRY');
    }
  });

  it('a malformed memory in Redis fails the task with a clear reason; `codegod wipe` clears it and the retry succeeds', async () => {
    world = await AgentWorld.start(
      {
        rules: [
          { match: { phase: 'reason' }, reply: REASON },
          { match: { phase: 'plan' }, reply: plan1([{ action: 'write_file', params: { path: 'ok.txt', content: 'ok\n' } }]) },
          { match: { phase: 'validate' }, reply: validateWith([{ kind: 'file_exists', target: 'ok.txt' }]) },
        ],
      },
      ONE_ATTEMPT,
    );
    const keys = world.engine.scheduler.keys;
    await world.engine.redis.set(keys.agentMemory('mem-bad'), '{"agentId": "mem-bad", "observations": 7');
    const worker = await world.startWorker('backend', { AGENT_ID: 'mem-bad', ...ONE_ATTEMPT });
    const buildId = await world.build([{ id: 'needs-memory', role: 'backend' }]);
    expect((await world.waitForEnd(buildId)).state).toBe('failed');
    const task = await world.engine.scheduler.dag.getTask(buildId, 'needs-memory');
    expect(task.error).toContain(`malformed data in Redis at ${keys.agentMemory('mem-bad')}: not JSON`);
    expect(task.error).toContain('clear it with: codegod wipe --agent mem-bad --yes');
    expect(world.requests()).toHaveLength(0);
    expect(worker.proc.exitCode).toBeNull();
    // Nothing overwrote it behind the user's back.
    expect(await world.engine.redis.get(keys.agentMemory('mem-bad'))).toBe('{"agentId": "mem-bad", "observations": 7');

    const env = configEnv(world.config);
    const wipe = await runCli(['wipe', '--agent', 'mem-bad', '--yes'], env);
    expect(wipe.code, wipe.stderr).toBe(0);
    expect(wipe.stdout).toBe('wiped the memory of agent mem-bad: it was malformed and is deleted (checkpoints kept)\n');
    expect((await runCli(['retry', buildId, 'needs-memory'], env)).code).toBe(0);
    expect((await world.waitForEnd(buildId)).state).toBe('succeeded');
  });
});

describe('team memory', () => {
  it('a write to a key another role owns is refused, and the agent is told why on its next turn', async () => {
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, reply: REASON },
        { match: { phase: 'plan', role: 'backend' }, reply: plan1([{ action: 'record_knowledge', params: { key: 'venv_path', value: '.venv' } }]) },
        { match: { phase: 'validate' }, reply: validateWith([{ kind: 'file_exists', target: '.' }]) },
        {
          match: { phase: 'plan', role: 'frontend' },
          times: 1,
          reply: plan1([{ action: 'record_knowledge', params: { key: 'venv_path', value: 'node_modules/.venv' } }]),
        },
        { match: { phase: 'plan', role: 'frontend' }, reply: plan1([{ action: 'record_knowledge', params: { key: 'package_manager', value: 'npm' } }]) },
      ],
    });
    await Promise.all([world.startWorker('backend'), world.startWorker('frontend')]);
    const buildId = await world.build([
      { id: 'venv', role: 'backend' },
      { id: 'ui', role: 'frontend', dependsOn: ['venv'] },
    ]);
    expect((await world.waitForEnd(buildId)).state).toBe('succeeded');

    const refusal =
      "refused: team knowledge 'venv_path' is owned by the backend agents: a frontend agent may read it but not write it (frontend owns: package_manager, build_command, entry_point, npm_*, node_*, package_*, build_*, frontend_*)";
    const [, secondPlan] = world.requests('plan', 'ui').map(promptOf);
    expect(secondPlan!.context).toContain(refusal);
    const trace = (await world.trace(buildId, 'ui'))!;
    expect(trace.iterations[0]!.act!.steps[0]!.output).toBe(refusal);
    const team = new TeamKnowledge(world.engine.redis, world.engine.scheduler.keys);
    expect(await team.entries(buildId)).toEqual([
      { key: 'package_manager', value: 'npm', owner: 'frontend' },
      { key: 'venv_path', value: '.venv', owner: 'backend' },
    ]);
    // The owner's finding is shown to the other role, with its owner.
    expect(promptOf(world.requests('reason', 'ui')[0]!).memory).toContain('- venv_path = .venv (owned by backend)');
  });
});
