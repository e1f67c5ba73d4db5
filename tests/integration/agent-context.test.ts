import { afterEach, describe, expect, it } from 'vitest';
import type { TaskResult } from '../../shared/domain/agent-phases.js';
import type { Handoff } from '../../shared/domain/handoff.js';
import { followupId } from '../../shared/engine/followups.js';
import { estimateMessagesTokens } from '../../shared/llm/tokens.js';
import { AgentWorld, plan1, promptOf, REASON, validateWith } from '../helpers/agent.js';

/**
 * Handoff between tasks, through the scripted LLM server's request log with real worker
 * processes: what a dependent task's prompts carry of what its dependencies delivered, what a
 * follow-up is told of the failure that caused it, and the prompt budget holding with 200
 * large dependency results.
 */
let world: AgentWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const FAST_FAIL = { CODEGOD_MAX_ITERATIONS: '1', CODEGOD_TASK_ATTEMPTS: '1', CODEGOD_REPLANS_PER_TASK: '0' };
const HELPER_FOLLOWUP = { role: 'backend' as const, title: 'Add the helper module', rerun: false };

describe('handoff between tasks', () => {
  it("a dependent's prompts carry its dependency's summary, files, passing commands and checks; a follow-up carries the failure that caused it", async () => {
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, reply: REASON },
        {
          match: { phase: 'plan', task: 'api' },
          reply: plan1([
            { action: 'write_file', params: { path: 'backend/app.py', content: "print('hello from the api')\n" } },
            { action: 'run_command', params: { command: 'python3', args: ['backend/app.py'] } },
            { action: 'record_knowledge', params: { key: 'api_entry_point', value: 'backend/app.py' } },
          ]),
        },
        {
          match: { phase: 'validate', task: 'api' },
          reply: {
            ...validateWith([
              { kind: 'command', target: 'python3', args: ['-m', 'py_compile', 'backend/app.py'] },
              { kind: 'file_exists', target: 'backend/app.py' },
            ]),
            summary: 'API-SUMMARY-7: backend/app.py prints a greeting',
          },
        },
        { match: { phase: 'plan', task: 'container' }, reply: plan1([{ action: 'write_file', params: { path: 'Dockerfile', content: 'FROM python:3.12-slim\n' } }]) },
        { match: { phase: 'validate', task: 'container' }, reply: validateWith([{ kind: 'file_exists', target: 'Dockerfile' }]) },
        // The check fails first with output only the command's run produces (the evidence)...
        {
          match: { phase: 'plan', task: 'check' },
          times: 1,
          reply: plan1([{ action: 'run_command', params: { command: 'python3', args: ['-c', "import sys; print('MISSING-' + 'HELPER-' + 'EVIDENCE', file=sys.stderr); sys.exit(1)"] } }]),
        },
        // ...then asks the backend for the fix.
        {
          match: { phase: 'plan', task: 'check' },
          reply: plan1([
            { action: 'report_followup', params: { role: HELPER_FOLLOWUP.role, title: HELPER_FOLLOWUP.title, description: 'The check needs backend/helper.py.', rerun: HELPER_FOLLOWUP.rerun } },
          ]),
        },
        { match: { phase: 'plan', role: 'backend' }, reply: plan1([{ action: 'write_file', params: { path: 'backend/helper.py', content: 'X = 1\n' } }]) },
        { match: { phase: 'validate', role: 'backend' }, reply: validateWith([{ kind: 'file_exists', target: 'backend/helper.py' }]) },
      ],
    });
    await Promise.all([world.startWorker('backend'), world.startWorker('devops'), world.startWorker('testing')]);
    const buildId = await world.build([
      { id: 'api', role: 'backend' },
      { id: 'container', role: 'devops', dependsOn: ['api'] },
      { id: 'check', role: 'testing', dependsOn: ['api'] },
    ]);
    const build = await world.waitForEnd(buildId, 90_000);
    expect(build.state, build.reason).toBe('succeeded');

    const api = await world.result(buildId, 'api');
    expect(api.handoff).toEqual({
      summary: 'API-SUMMARY-7: backend/app.py prints a greeting',
      files: ['backend/app.py'],
      filesTotal: 1,
      commands: ['python3 backend/app.py'],
      checks: ['command: python3 -m py_compile backend/app.py', 'file_exists: backend/app.py'],
      knowledge: { api_entry_point: 'backend/app.py' },
    } satisfies Handoff);

    const container = world.requests(undefined, 'container');
    expect(container.map((r) => r.phase)).toEqual(['reason', 'plan', 'validate']);
    for (const r of container) {
      const { task } = promptOf(r);
      expect(task).toContain('What the tasks you depend on handed on:');
      expect(task).toContain('- api (backend): task api');
      expect(task).toContain('summary: API-SUMMARY-7: backend/app.py prints a greeting');
      expect(task).toContain('files written (1): backend/app.py');
      expect(task).toContain('commands that passed: python3 backend/app.py');
      expect(task).toContain('checks that passed: command: python3 -m py_compile backend/app.py; file_exists: backend/app.py');
      expect(task).toContain('knowledge recorded: api_entry_point=backend/app.py');
    }
    // Every agent reads the build's team knowledge, with the role that owns each key.
    expect(promptOf(container[0]!).memory).toContain('- api_entry_point = backend/app.py (owned by backend)');

    // The follow-up's prompts carry the failing command and its output, which its description never mentioned.
    const followup = world.requests(undefined, followupId({ ...HELPER_FOLLOWUP, description: '' }));
    expect(followup.length).toBeGreaterThanOrEqual(2);
    for (const r of followup) {
      const { task } = promptOf(r);
      expect(task).toContain('The check needs backend/helper.py.');
      expect(task).toContain('What task check saw fail:');
      expect(task).toContain('MISSING-HELPER-EVIDENCE');
      expect(task).toContain('$ python3 -c');
    }
    const check = await world.result(buildId, 'check');
    expect(check.followups[0]!.evidence).toContain('MISSING-HELPER-EVIDENCE');
  });

  it('malformed handoff data in Redis fails the dependent task with the key and the problem, and the worker goes on', async () => {
    world = await AgentWorld.start(
      {
        rules: [
          { match: { phase: 'reason' }, reply: REASON },
          { match: { phase: 'plan' }, reply: plan1([{ action: 'write_file', params: { path: 'ok.txt', content: 'ok\n' } }]) },
          { match: { phase: 'validate' }, reply: validateWith([{ kind: 'file_exists', target: 'ok.txt' }]) },
        ],
      },
      FAST_FAIL,
    );
    await world.startWorker('backend', FAST_FAIL);
    // The dependency is devops work no worker takes; its "delivery" is written the way a worker records one.
    const buildId = await world.build([
      { id: 'dep', role: 'devops' },
      { id: 'user', role: 'backend', dependsOn: ['dep'] },
    ]);
    const outcome = await world.engine.scheduler.taskSucceeded(buildId, { taskId: 'dep', gen: 0, workerId: 'hand', startedAt: Date.now(), result: { success: 'maybe' } });
    expect(outcome).toEqual({ kind: 'done', applied: true });
    const build = await world.waitForEnd(buildId);
    expect(build.state).toBe('failed');
    const user = await world.engine.scheduler.dag.getTask(buildId, 'user');
    expect(user.state).toBe('failed');
    expect(user.error).toMatch(/^DATA_CORRUPT|malformed/);
    expect(user.error).toContain(world.engine.scheduler.keys.task(buildId, 'dep'));
    expect(user.error).toContain('the result of dependency dep is malformed (success: ');
    expect(world.requests(undefined, 'user')).toHaveLength(0);

    // The worker is still there and takes the next task.
    const next = await world.build([{ id: 'next', role: 'backend' }]);
    expect((await world.waitForEnd(next)).state).toBe('succeeded');
  });

  it('holds every prompt to the budget with 200 large dependency results, an oversized one cut and a huge one not read', async () => {
    const budget = 3_000;
    world = await AgentWorld.start(
      {
        rules: [
          { match: { phase: 'reason' }, reply: REASON },
          { match: { phase: 'plan' }, reply: plan1([{ action: 'write_file', params: { path: 'fan-in.txt', content: 'all in\n' } }]) },
          { match: { phase: 'validate' }, reply: validateWith([{ kind: 'file_exists', target: 'fan-in.txt' }]) },
        ],
      },
      { CODEGOD_PROMPT_BUDGET_TOKENS: String(budget) },
    );
    await world.startWorker('backend', { CODEGOD_PROMPT_BUDGET_TOKENS: String(budget) });
    const deps = Array.from({ length: 200 }, (_, i) => `d${i}`);
    const all = ['huge', 'big', ...deps];
    const buildId = await world.build([...all.map((id) => ({ id, role: 'devops' })), { id: 'fan-in', role: 'backend', dependsOn: all }]);

    const large = (i: number): TaskResult => ({
      success: true,
      output: `delivered ${i}`,
      reasoning: [],
      actions_taken: [],
      validation: { valid: true, output: 'ok' },
      followups: [],
      iterations: 1,
      wiped: false,
      handoff: {
        summary: `DEP-${i}-SUMMARY ${'s'.repeat(1_900)}`,
        files: Array.from({ length: 200 }, (_, f) => `src/module_${i}/file_${f}_${'p'.repeat(40)}.py`),
        filesTotal: 950,
        commands: Array.from({ length: 40 }, (_, c) => `python3 -m unittest tests.test_${i}_${c} ${'a'.repeat(150)}`),
        checks: Array.from({ length: 40 }, (_, c) => `command: python3 check_${i}_${c}.py ${'c'.repeat(150)}`),
        knowledge: Object.fromEntries(Array.from({ length: 20 }, (_, k) => [`api_key_${k}`, 'v'.repeat(400)])),
      },
    });
    const bigOutput = `BIG-OUTPUT-START ${'o'.repeat(600_000)}`;
    const entries = [
      { taskId: 'huge', result: { ...large(-1), handoff: undefined, output: 'h'.repeat(3 * 1024 * 1024) } },
      { taskId: 'big', result: { ...large(-2), handoff: undefined, output: bigOutput } },
      ...deps.map((taskId, i) => ({ taskId, result: large(i) })),
    ];
    await Promise.all(entries.map((e) => world!.engine.scheduler.taskSucceeded(buildId, { ...e, gen: 0, workerId: 'hand', startedAt: Date.now() })));

    const build = await world.waitForEnd(buildId, 60_000);
    expect(build.state, build.reason).toBe('succeeded');
    const calls = world.requests(undefined, 'fan-in');
    expect(calls.map((r) => r.phase)).toEqual(['reason', 'plan', 'validate']);
    for (const r of calls) {
      const messages = r.messages as Array<{ content: string }>;
      expect(estimateMessagesTokens(messages)).toBeLessThanOrEqual(budget);
      const { task } = promptOf(r);
      expect(task).toContain('Your task (fan-in): task fan-in');
      expect(task).toContain('- huge (devops): task huge (its result (');
      expect(task).toContain('over the 1048576-byte read limit and was not read)');
      expect(task).toContain('- big (devops): BIG-OUTPUT-START');
      expect(task).not.toContain('o'.repeat(200));
      expect(task).toContain('- d0 (devops): DEP-0-SUMMARY');
      expect(task).toMatch(/…\[cut: \d+ more dependencies did not fit the prompt budget: d\d+, /);
    }
    // The prompts are the same size as recorded per call, and the trace says what was cut.
    const trace = (await world.trace(buildId, 'fan-in'))!;
    expect(trace.iterations[0]!.reason!.usage.prompt).toEqual({ estimate: estimateMessagesTokens(calls[0]!.messages as Array<{ content: string }>), cut: ['handoff'] });
    const stream = await world.engine.redis.xrange(world.engine.scheduler.keys.llmCalls(buildId), '-', '+');
    const estimates = stream.map(([, f]) => Number(f[f.indexOf('promptEstimate') + 1]));
    expect(estimates).toHaveLength(3);
    for (const e of estimates) expect(e).toBeLessThanOrEqual(budget);
  });
});
