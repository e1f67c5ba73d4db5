import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../../shared/config.js';
import { createKeys, type Keys } from '../../shared/redis/keys.js';
import { addObservation, completeTask, setKnowledge, startTask } from '../../shared/memory/reducers.js';
import { MemoryStore } from '../../shared/memory/store.js';
import { exportMemories } from '../../shared/memory/transfer.js';
import { freePort } from '../../shared/redis/redis-server.js';
import { ROLES } from '../../shared/domain/roles.js';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import { freshLoopState, LoopStateStore, type LoopState } from '../../shared/memory/loop-state.js';
import { createLogger } from '../../shared/logger.js';
import { cli } from '../helpers/cli-io.js';
import { configEnv, testConfig } from '../helpers/config.js';
import { engine, plan, type EngineHarness } from '../helpers/engine.js';

let config: Config;
let env: Record<string, string>;
let keys: Keys;
let h: EngineHarness;

beforeEach(() => {
  config = testConfig();
  env = configEnv(config);
  keys = createKeys(config.CODEGOD_PREFIX);
  h = engine(config);
});

afterEach(() => h.close());

const UNKNOWN = 'b-zzzzzzzz-000000';

function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('cancel and retry', () => {
  it('cancels a running build once; a second cancel and unknown builds are errors', async () => {
    const id = await h.scheduler.createBuild({ goal: 'g', plan: plan([{ id: 'a' }, { id: 'b', dependsOn: ['a'] }]) });
    const r = await cli(['cancel', id, '--json'], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ buildId: id, state: 'cancelled', cancelledTasks: 2 });
    expect((await h.scheduler.dag.getBuild(id)).state).toBe('cancelled');
    // The queued root's job is gone, so no worker will pick it up later.
    expect(await h.scheduler.queues.get('backend').getJobCounts('waiting')).toEqual({ waiting: 0 });

    const again = await cli(['cancel', id], env);
    expect(again.code).toBe(2);
    expect(oneLine(again.stderr)).toBe(`codegod: build ${id} already ended (cancelled); nothing to cancel`);
    const unknown = await cli(['cancel', UNKNOWN], env);
    expect(unknown.code).toBe(4);
    expect(oneLine(unknown.stderr)).toBe(`codegod: build ${UNKNOWN} not found`);

    const status = await cli(['status', id], env);
    expect(status.stdout).toMatch(new RegExp(`build ${id} {2}cancelled in`));
    expect(status.stdout).toMatch(/a +backend +cancelled/);
  });

  it('retries a failed task: the task gets a new generation and a job, the build reopens', async () => {
    const id = await h.scheduler.createBuild({ goal: 'g', plan: plan([{ id: 'a' }, { id: 'b', dependsOn: ['a'] }]) });
    const start = await h.scheduler.dag.startTask(id, 'a', 0, 'w1');
    expect(start.kind).toBe('run');
    await h.scheduler.taskFailed(id, 'a', 0, 'boom');
    expect((await h.scheduler.dag.getBuild(id)).state).toBe('failed');

    const notFailed = await cli(['retry', id, 'b'], env);
    expect(notFailed.code).toBe(2);
    expect(oneLine(notFailed.stderr)).toMatch(/cannot retry b .*only failed tasks can be retried/);
    const unknownTask = await cli(['retry', id, 'zz'], env);
    expect(unknownTask.code).toBe(4);
    expect(oneLine(unknownTask.stderr)).toBe(`codegod: task ${id}/zz not found`);
    expect((await cli(['retry', UNKNOWN], env)).code).toBe(4);

    const r = await cli(['retry', id, '--json'], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ buildId: id, state: 'running', retried: ['a'] });
    const a = await h.scheduler.dag.getTask(id, 'a');
    expect(a).toMatchObject({ state: 'queued', gen: 1 });
    expect((await h.scheduler.dag.getTask(id, 'b')).state).toBe('pending');
    expect(await h.scheduler.queues.get('backend').getJob(`${id}.a.1`)).toBeDefined();
    const nothing = await cli(['retry', id], env);
    expect(nothing.code).toBe(2);
    expect(oneLine(nothing.stderr)).toMatch(/has no failed task to retry/);
  });
});

const usage = { promptTokens: 100, completionTokens: 20, calls: 1 };

function seededTrace(): LoopState {
  const state = freshLoopState(0);
  state.status = 'failed';
  state.outcome = 'tests still fail';
  state.iterations = [
    {
      n: 1,
      observe: { facts: { python: '3.12' }, findings: ['requirements.txt lacks flask'], ms: 30 },
      reason: {
        output: { problem_analysis: 'flask missing', root_causes: ['no flask'], approach: 'pip install flask', risks: [], success_criteria: 'pytest passes', conclusion: 'install flask, then run the tests' },
        ms: 900,
        usage,
      },
      plan: { steps: [{ action: 'run_command', params: { command: 'pytest' }, expected: 'all pass' }], estimated_duration: '30s', confidence: 0.8, ms: 700, usage },
      act: { steps: [{ index: 0, action: 'run_command', params: { command: 'pytest' }, expected: 'all pass', ok: false, output: 'ModuleNotFoundError: flask', exitCode: 2, ms: 1_500 }], done: true, ms: 1_600 },
      validate: { checks: [{ kind: 'command', target: 'pytest', args: [], contains: 'passed', ok: false, output: 'error' }], valid: false, output: 'pytest fails', ms: 400, usage },
      failure: 'validation failed: pytest fails',
    },
  ];
  return state;
}

describe('trace', () => {
  it("shows a task's seeded ORPAV trace, readable and as JSON, and every task briefly", async () => {
    const id = await h.scheduler.createBuild({ goal: 'g', plan: plan([{ id: 'tests', role: 'testing' }, { id: 'docs' }]) });
    const store = new LoopStateStore(h.redis, keys, createLogger('silent'));
    await store.save(id, 'tests', seededTrace());

    const r = await cli(['trace', id, 'tests'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^task tests \(testing\) queued · trace failed · generation 0 · 1 iteration\(s\) · 360 tokens/);
    expect(r.stdout).toContain('- requirements.txt lacks flask');
    expect(r.stdout).toContain('conclusion: install flask, then run the tests');
    expect(r.stdout).toContain('1. run_command command=pytest');
    expect(r.stdout).toMatch(/1\. run_command FAILED exit 2 in 1\.5s/);
    expect(r.stdout).toContain('ModuleNotFoundError: flask');
    expect(r.stdout).toContain('FAIL command pytest contains "passed"');
    expect(r.stdout).toContain('verdict: pytest fails');

    const json = JSON.parse((await cli(['trace', id, 'tests', '--json'], env)).stdout) as { trace: LoopState; role: string };
    expect(json.role).toBe('testing');
    expect(json.trace.iterations[0]!.act!.steps[0]!.exitCode).toBe(2);

    const brief = await cli(['trace', id], env);
    expect(brief.code).toBe(0);
    expect(brief.stdout).toMatch(/tests +testing +queued +1 +failed +360/);
    expect(brief.stdout).toMatch(/docs +backend +queued +- +-/);

    const untraced = await cli(['trace', id, 'docs'], env);
    expect(untraced.code).toBe(0);
    expect(untraced.stdout).toContain('task docs (backend) is queued and has no trace');

    expect((await cli(['trace', id, 'nope'], env)).code).toBe(4);
    expect((await cli(['trace', UNKNOWN], env)).code).toBe(4);

    await h.redis.hset(keys.loopState(id, 'docs'), 'state', '{not json');
    const corrupt = await cli(['trace', id, 'docs'], env);
    expect(corrupt.code).toBe(1);
    expect(oneLine(corrupt.stderr)).toMatch(/^codegod: malformed data in Redis at .*:loop:docs/);
  });
});

describe('wipe and memory', () => {
  it('round-trips memories through checkpoint, wipe, restore, export and import', async () => {
    const store = new MemoryStore(h.redis, keys);
    const buildId = 'b-m3x0k2a1-4f2a9c';
    await store.update('backend-1', 'backend', (m) =>
      addObservation(completeTask(startTask(setKnowledge(m, 'venv_path', '/w/.venv'), { buildId, taskId: 'api', title: 'API' }), { buildId, taskId: 'api' }), 'pytest passed'),
    );
    await store.update('frontend-1', 'frontend', (m) => completeTask(m, { buildId, taskId: 'ui' }));
    const before = await exportMemories(store);

    const cp = await cli(['memory', 'checkpoint', 'backend-1', 'before'], env);
    expect(cp.code).toBe(0);
    expect(cp.stdout).toContain("checkpoint 'before' of backend-1 saved");
    const listed = JSON.parse((await cli(['memory', 'list', '--json'], env)).stdout) as { agents: Array<Record<string, unknown>> };
    expect(listed.agents).toEqual([
      expect.objectContaining({ agentId: 'backend-1', role: 'backend', completedTasks: 1, knowledge: 1, observations: 1, checkpoints: ['before'] }),
      expect.objectContaining({ agentId: 'frontend-1', role: 'frontend', completedTasks: 1, checkpoints: [] }),
    ]);
    expect((await cli(['memory', 'list', 'backend-1'], env)).stdout).toMatch(/before +[\d.]+m?s ago +1 +1/);
    expect((await cli(['memory', 'list', 'ghost'], env)).code).toBe(4);

    // On a terminal, wipe asks; anything but yes keeps the memory.
    const declined = await cli(['wipe', '--agent', 'backend-1'], env, { stdinTTY: true, stdinText: 'n\n' });
    expect(declined.code).toBe(2);
    expect(declined.stderr).toContain('wipe the memory of agent backend-1? [y/N]');
    expect((await exportMemories(store)).agents[0]!.memory!.completedTasks).toHaveLength(1);
    const confirmed = await cli(['wipe', '--agent', 'backend-1'], env, { stdinTTY: true, stdinText: 'yes\n' });
    expect(confirmed.code).toBe(0);
    const wiped = (await exportMemories(store)).agents[0]!.memory!;
    expect(wiped).toMatchObject({ completedTasks: [], observations: [], currentTask: null, knowledge: { venv_path: '/w/.venv' }, role: 'backend' });

    const restored = await cli(['memory', 'restore', 'backend-1', 'before'], env);
    expect(restored.code).toBe(0);
    expect((await exportMemories(store)).agents[0]!.memory!.completedTasks).toEqual([`${buildId}/api`]);
    const missing = await cli(['memory', 'restore', 'backend-1', 'nope'], env);
    expect(missing.code).toBe(4);
    expect(oneLine(missing.stderr)).toMatch(/agent backend-1 has no checkpoint 'nope' \(it has: before\)/);

    const dir = mkdtempSync(join(tmpdir(), 'codegod-mem-'));
    const exported = await cli(['memory', 'export', 'memory.json'], env, { cwd: dir });
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain('exported 2 agent(s) to memory.json');
    const file = join(dir, 'memory.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const all = await cli(['wipe', '--all', '--yes', '--json'], env);
    expect(JSON.parse(all.stdout)).toEqual({ wiped: 2 });
    expect((await exportMemories(store)).agents.every((a) => a.memory!.completedTasks.length === 0)).toBe(true);

    const imported = await cli(['memory', 'import', file, '--replace'], env);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toContain('imported 2 memories and 1 checkpoint(s)');
    const after = await exportMemories(store);
    const strip = (doc: typeof before) => doc.agents.map((a) => ({ ...a, memory: a.memory && { ...a.memory, version: 0, updatedAt: '' } }));
    expect(strip(after)).toEqual(strip({ ...before, agents: before.agents.map((a) => (a.agentId === 'backend-1' ? { ...a, checkpoints: after.agents[0]!.checkpoints } : a)) }));
    expect(JSON.parse(readFileSync(file, 'utf8')).agents).toHaveLength(2);

    const byRole = await cli(['wipe', '--role', 'frontend', '--yes', '--json'], env);
    expect(JSON.parse(byRole.stdout)).toEqual({ wiped: 1 });
    expect((await cli(['wipe', '--agent', 'ghost', '--yes'], env)).code).toBe(4);
  });

  it('refuses import files that are missing, not JSON or not an export, writing nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codegod-mem-'));
    writeFileSync(join(dir, 'bad.json'), '{"version": 1');
    writeFileSync(join(dir, 'wrong.json'), JSON.stringify({ version: 1, exportedAt: 'yesterday', agents: [{ agentId: 'a b' }] }));
    const missing = await cli(['memory', 'import', 'nope.json'], env, { cwd: dir });
    expect(missing.code).toBe(2);
    expect(oneLine(missing.stderr)).toBe('codegod: cannot read nope.json (ENOENT)');
    const bad = await cli(['memory', 'import', 'bad.json'], env, { cwd: dir });
    expect(bad.code).toBe(2);
    expect(oneLine(bad.stderr)).toMatch(/^codegod: bad\.json is not JSON/);
    const wrong = await cli(['memory', 'import', 'wrong.json'], env, { cwd: dir });
    expect(wrong.code).toBe(2);
    expect(oneLine(wrong.stderr)).toMatch(/^codegod: invalid memory export: /);
    expect(await new MemoryStore(h.redis, keys).listAgents()).toEqual([]);
  });
});

describe('doctor', () => {
  let llm: ScriptedLlmServer;
  beforeAll(async () => {
    llm = await startScriptedLlmServer({ scenario: { models: ['coder-7b', 'other'] } });
  });
  afterAll(() => llm.close());

  it('reports Redis and the LLM down, each on one line, within a bounded time, exit 1', async () => {
    const [redisPort, llmPort] = [await freePort(), await freePort()];
    const started = Date.now();
    const r = await cli(['doctor'], { ...env, REDIS_URL: `redis://127.0.0.1:${redisPort}`, VLLM_API_URL: `http://127.0.0.1:${llmPort}/v1` });
    expect(r.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^fail  Redis +cannot reach Redis at redis://127\\.0\\.0\\.1:${redisPort}`));
    expect(lines.find((l) => l.includes('LLM'))).toMatch(new RegExp(`^fail  LLM +cannot reach the LLM at http://127\\.0\\.0\\.1:${llmPort}/v1 \\(ECONNREFUSED\\); start vLLM`));
    expect(lines.find((l) => l.includes('workers'))).toMatch(/^warn  workers +not checked/);
    expect(lines.every((l) => /^(ok|warn|fail) {2}/.test(l))).toBe(true);
    expect(r.stderr).toBe('');
  });

  it('passes with Redis, the LLM, workers, an orchestrator and a writable workspace; warns for the rest', async () => {
    const now = Date.now();
    const agent = (agentId: string, role: string, heartbeat = now) =>
      JSON.stringify({ agentId, role, state: 'idle', currentTasks: [], heartbeat, startedAt: now, tasksCompleted: 0, tasksFailed: 0, concurrency: 2, pid: 1, host: 'h' });
    for (const role of ROLES.filter((r) => r !== 'devops')) await h.redis.hset(keys.agentsStatus, `${role}-1`, agent(`${role}-1`, role));
    await h.redis.hset(keys.agentsStatus, 'devops-old', agent('devops-old', 'devops', now - 3_600_000));
    await h.redis.hset(keys.agentsStatus, 'master-1', agent('master-1', 'master'));
    const workspace = mkdtempSync(join(tmpdir(), 'codegod-ws-'));

    const r = await cli(['doctor', '--json'], { ...env, VLLM_API_URL: llm.url, LLM_MODEL: 'coder-7b', CODEGOD_WORKSPACE_ROOT: workspace });
    expect(r.code).toBe(0);
    const { ok, checks } = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ status: string; check: string; detail: string }> };
    expect(ok).toBe(true);
    const by = Object.fromEntries(checks.map((c) => [c.check, c]));
    expect(by['Redis']!.status).toBe('ok');
    expect(by['Redis eviction']!.status).toBe('ok');
    // The test server runs without AOF: a warning, not a failure.
    expect(by['Redis persistence']).toMatchObject({ status: 'warn' });
    expect(by['LLM']).toMatchObject({ status: 'ok', detail: `${llm.url} serves coder-7b (serves 2 models)` });
    expect(by['backend workers']).toMatchObject({ status: 'ok', detail: '1 running, 2 task slot(s)' });
    expect(by['devops workers']!.status).toBe('warn');
    expect(by['devops workers']!.detail).toMatch(/none running \(1 stale\)/);
    expect(by['orchestrator']!.status).toBe('ok');
    expect(by['workspace']).toMatchObject({ status: 'ok', detail: `${workspace} is writable` });

    const unknownModel = await cli(['doctor'], { ...env, VLLM_API_URL: llm.url, LLM_MODEL: 'gpt-9', CODEGOD_WORKSPACE_ROOT: workspace });
    expect(unknownModel.code).toBe(1);
    expect(unknownModel.stdout).toMatch(/^fail  LLM +model 'gpt-9' is not served by .* \(it serves: coder-7b, other\); set LLM_MODEL$/m);
  });

  it('reports no orchestrator and an unusable workspace, each with a fix hint', async () => {
    await h.redis.hdel(keys.agentsStatus, 'master-1');
    const file = join(mkdtempSync(join(tmpdir(), 'codegod-ws-')), 'not-a-dir');
    writeFileSync(file, 'x');
    const r = await cli(['doctor', '--json'], { ...env, VLLM_API_URL: llm.url, LLM_MODEL: 'coder-7b', CODEGOD_WORKSPACE_ROOT: join(file, 'workspaces') });
    expect(r.code).toBe(1);
    const { checks } = JSON.parse(r.stdout) as { checks: Array<{ status: string; check: string; detail: string; fix?: string }> };
    const by = Object.fromEntries(checks.map((c) => [c.check, c]));
    expect(by['orchestrator']!.status).toBe('warn');
    expect(JSON.stringify(by['orchestrator'])).toMatch(/codegod orchestrator/);
    expect(by['workspace']!.status).toBe('fail');
    expect(JSON.stringify(by['workspace'])).toMatch(/CODEGOD_WORKSPACE_ROOT/);
  });

  it('flags stale agents in status', async () => {
    const old = Date.now() - 120_000;
    await h.redis.hset(
      keys.agentsStatus,
      'backend-gone',
      JSON.stringify({ agentId: 'backend-gone', role: 'backend', state: 'acting', currentTasks: [{ buildId: UNKNOWN, taskId: 'api', since: old, phase: 'acting' }], heartbeat: old, startedAt: old - 3_600_000, tasksCompleted: 3, tasksFailed: 0, concurrency: 1, pid: 1, host: 'h' }),
    );
    await h.redis.hset(keys.agentsStatus, 'broken', '{nope');
    const r = await cli(['status'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`backend-gone +backend +acting \\(stale\\) +${UNKNOWN}/api +1h 00m +2m 00s ago +3`));
    expect(r.stdout).toMatch(/1 agent\(s\) stale: no heartbeat for over 2m 00s/);
    expect(r.stdout).toContain('unreadable agent entries: broken');
    const json = JSON.parse((await cli(['status', '--json'], env)).stdout) as { agents: Array<{ agentId: string; stale: boolean; live: boolean }>; malformedAgents: string[] };
    expect(json.agents).toEqual([expect.objectContaining({ agentId: 'backend-gone', stale: true, live: false })]);
    expect(json.malformedAgents).toEqual(['broken']);
  });
});
