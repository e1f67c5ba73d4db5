import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { ScenarioInput } from '../../scripts/llm-server/scenario.js';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import { configEnv, testConfig } from '../helpers/config.js';
import { runCli, stdoutJson } from '../helpers/cli.js';
import { engine, waitForWorkers, type EngineHarness } from '../helpers/engine.js';
import { FAST_RECOVERY, ROOT, startOrchestrator, startWorker, type ChildHandle } from '../helpers/processes.js';

/**
 * The planner's re-asks and the errors users meet, through the real CLI against a real
 * orchestrator and workers: each ends with one readable line and its documented exit code.
 */
const SCENARIO = join(ROOT, 'scripts/llm-server/scenarios/todo-app.yaml');
const todo = () => parseYaml(readFileSync(SCENARIO, 'utf8')) as ScenarioInput & { rules: Array<Record<string, unknown>> };
const t = (id: string, role: string, dependsOn: string[] = []) => ({ id, role, title: `t ${id}`, description: `do ${id}`, dependsOn, acceptanceCriteria: ['done'] });

let llm: ScriptedLlmServer;
let env: Record<string, string>;
let h: EngineHarness;
const children: ChildHandle[] = [];
const workspaceRoot = mkdtempSync(join(tmpdir(), 'codegod-e2e-'));

beforeAll(async () => {
  llm = await startScriptedLlmServer({ scenario: todo() });
  const extra = { ...FAST_RECOVERY, VLLM_API_URL: llm.url, CODEGOD_EXECUTOR: 'agent', CODEGOD_WORKSPACE_ROOT: workspaceRoot, CODEGOD_PLAN_ATTEMPTS: '4' };
  const config = testConfig(extra);
  env = configEnv(config, { LOG_LEVEL: 'warn' });
  h = engine(config);
  children.push(startOrchestrator(config, extra));
  const workers = ['backend', 'frontend', 'devops', 'testing'].map((r) => startWorker(config, r, extra));
  children.push(...workers);
  await waitForWorkers(h.redis, config, workers);
}, 60_000);

afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGTERM')));
  await h?.close();
  await llm?.close();
  rmSync(workspaceRoot, { recursive: true, force: true });
});

/** The last line on stderr: the one-line error. */
const lastLine = (stderr: string) => stderr.trim().split('\n').pop() ?? '';

describe('planner re-asks', () => {
  it('rejects a cyclic plan, an unknown role and a dangling dependency, re-asking with the problems, then builds', async () => {
    const scenario = todo();
    llm.reset({
      ...scenario,
      rules: [
        { match: { phase: 'plan-dag' }, times: 1, reply: { summary: 'cyclic', tasks: [t('a', 'backend', ['b']), t('b', 'backend', ['a'])] } },
        { match: { phase: 'plan-dag' }, times: 1, reply: { summary: 'bad role', tasks: [t('a', 'wizard')] } },
        { match: { phase: 'plan-dag' }, times: 1, reply: { summary: 'dangling', tasks: [t('a', 'backend', ['ghost'])] } },
        ...scenario.rules,
      ],
    });
    const run = await runCli(['build', 'Create a Flask + React todo app', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const asks = llm.requests.filter((r) => r.phase === 'plan-dag');
    expect(asks).toHaveLength(4);
    const text = (i: number) => JSON.stringify(asks[i]!.messages);
    expect(text(1)).toMatch(/dependency cycle: (a → b → a|b → a → b)/);
    expect(text(2)).toMatch(/unknown role 'wizard'/);
    expect(text(3)).toMatch(/depends on unknown task 'ghost'/);
    const report = stdoutJson<{ buildId: string; state: string }>(run.stdout);
    expect(report.state).toBe('succeeded');
    expect((await h.scheduler.dag.getBuild(report.buildId)).planAttempts).toBe(3);
  }, 120_000);

  it('a plan still invalid after the re-asks: exit 6 with one line listing the problems', async () => {
    llm.reset({ rules: [{ match: { phase: 'plan-dag' }, reply: { summary: 'cyclic', tasks: [t('a', 'backend', ['b']), t('b', 'frontend', ['a'])] } }] });
    const run = await runCli(['build', 'Create a Flask + React todo app'], env);
    expect(run.code).toBe(6);
    expect(lastLine(run.stderr)).toMatch(/^codegod: build b-\S+ failed \(PLAN_INVALID\): invalid plan: still invalid after 4 attempts; dependency cycle/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(llm.requests.filter((r) => r.phase === 'plan-dag')).toHaveLength(4);
  }, 60_000);
});

describe('errors users meet', () => {
  it('an unknown model: exit 5 naming the model and how to fix it', async () => {
    llm.reset(todo());
    const run = await runCli(['build', 'Create a Flask + React todo app', '--model', 'no-such-model'], env);
    expect(run.code).toBe(5);
    expect(lastLine(run.stderr)).toMatch(/LLM_MODEL_UNKNOWN.*no-such-model/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('an LLM that refuses json_schema and json_object: exit 5 with one line naming the endpoint and both refusals', async () => {
    llm.reset({ rules: [{ match: {}, fault: 'reject_response_format', wording: 'llamacpp', reply: { summary: 'never sent', tasks: [] } }] });
    const run = await runCli(['build', 'Create a Flask + React todo app'], env);
    expect(run.code).toBe(5);
    expect(lastLine(run.stderr)).toMatch(
      new RegExp(
        `^codegod: build b-\\S+ failed \\(LLM_STRUCTURED_OUTPUT_REFUSED\\): the LLM at ${llm.url.replace(/[.]/g, '\\.')} refuses structured output for planner/plan-dag: ` +
          "json_schema \\(HTTP 400: JSON schema conversion failed:\\) and json_object \\(HTTP 400: response_format type 'json_object' is not supported by this server\\)",
      ),
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
    // Planning is not retried for a refusal: one json_schema and one json_object request.
    expect(llm.requests.filter((r) => r.phase === 'plan-dag').map((r) => r.responseFormat)).toEqual(['json_schema', 'json_object']);
  }, 60_000);

  it('a token budget that runs out: the build stops cleanly, exit 7', async () => {
    llm.reset(todo());
    const run = await runCli(['build', 'Create a Flask + React todo app', '--budget-tokens', '5000', '--json'], env);
    expect(run.code, run.stderr).toBe(7);
    const report = stdoutJson<{ buildId: string; state: string; reason: string }>(run.stdout);
    expect(report.state).toBe('failed');
    expect(report.reason).toMatch(/token budget spent: used \d+ of 5000 tokens/);
    const build = await h.scheduler.dag.getBuild(report.buildId);
    expect(build.failureCode).toBe('LLM_BUDGET');
    const states = [...(await h.scheduler.dag.getTaskStates(report.buildId)).values()];
    expect(states).not.toContain('running');
    expect(states).not.toContain('queued');
  }, 60_000);

  it('an oversized goal: exit 2 with one line, nothing stored', async () => {
    const before = await h.scheduler.dag.listBuilds(1_000);
    const run = await runCli(['build', 'x'.repeat(5_000)], env);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe('codegod: the goal is 5000 characters long; the limit is 4000 (CODEGOD_MAX_GOAL_CHARS)');
    expect(await h.scheduler.dag.listBuilds(1_000)).toEqual(before);
  });
});
