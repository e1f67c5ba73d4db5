import { mkdtempSync, writeFileSync } from 'node:fs';
import { taskView } from '../helpers/fixtures.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BuildRecordSchema, type BuildRecord } from '../../shared/domain/build.js';
import type { BuildReport } from '../../shared/engine/report.js';
import type { LoopState } from '../../shared/memory/loop-state.js';
import { failureLine, outcomeJson, renderOutcome } from '../../orchestrator/cli/build.js';
import type { AgentView } from '../../orchestrator/cli/context.js';
import { agentChecks, formatCheck, parseInfo, redisServerChecks, workspaceCheck } from '../../orchestrator/cli/doctor.js';
import { ordered } from '../../orchestrator/cli/status.js';
import { renderTrace, traceTokens } from '../../orchestrator/cli/trace.js';

const ID = 'b-m3x0k2a1-4f2a9c';

function build(over: Record<string, unknown>): BuildRecord {
  return BuildRecordSchema.parse({ id: ID, goal: 'Create a Flask app', state: 'succeeded', createdAt: 1_000, finishedAt: 61_000, total: 2, open: 0, maxTasks: 10, ...over });
}

const task = taskView;

function report(over: Partial<BuildReport> = {}): BuildReport {
  return {
    buildId: ID,
    goal: 'Create a Flask app',
    state: 'succeeded',
    wallMs: 60_000,
    criticalPathMs: 42_000,
    tasks: [
      { id: 'api', role: 'backend', title: 'Flask API', state: 'succeeded', attempts: 1, durationMs: 30_000, tokens: 1_500, origin: 'plan' },
      { id: 'tests', role: 'testing', title: 'pytest', state: 'succeeded', attempts: 2, durationMs: 12_000, tokens: 800, origin: 'plan' },
    ],
    files: ['app.py', 'tests/test_app.py'],
    llm: { calls: 12, promptTokens: 2_000, completionTokens: 300 },
    ...over,
  };
}

describe('build report', () => {
  it('renders a succeeded build with its files, tokens and tasks', () => {
    const lines = renderOutcome(build({ succeeded: 2 }), [task('api'), task('tests')], report());
    const text = lines.join('\n');
    expect(text).toContain(`build ${ID} succeeded in 1m 00s (critical path 42.0s)`);
    expect(text).toContain('2 succeeded · 0 failed · 0 skipped · 0 cancelled (2 in all)');
    expect(text).toContain('12 calls · 2,300 tokens (2,000 prompt · 300 completion)');
    expect(text).toMatch(/files +2 written\n +app\.py\n +tests\/test_app\.py/);
    expect(text).toMatch(/tests +testing +succeeded +2 +12\.0s +800 +pytest/);
    expect(failureLine(build({ succeeded: 2 }), [])).toBeUndefined();
  });

  it('names the failed task, its reason and the trace command', () => {
    const b = build({ state: 'failed', succeeded: 1, failed: 1, failedTask: 'api', failureCode: 'TASK_FAILED', reason: 'task api failed: boom' });
    const tasks = [task('api', { state: 'failed', error: 'pytest: 3 failed' }), task('ui', { state: 'skipped', role: 'frontend' })];
    expect(failureLine(b, tasks)).toBe(`codegod: build ${ID} failed: task api (backend) failed: pytest: 3 failed; see codegod trace ${ID} api`);
    const text = renderOutcome(b, tasks, report({ state: 'failed' })).join('\n');
    expect(text).toContain('failed   api (backend): pytest: 3 failed');
    expect(text).toContain(`trace    codegod trace ${ID} api`);
    const json = outcomeJson(b, tasks, report({ state: 'failed' }));
    expect(json).toMatchObject({ buildId: ID, state: 'failed', exitCode: 1, failure: { task: 'api', role: 'backend', error: 'pytest: 3 failed', trace: `codegod trace ${ID} api` } });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });

  it('explains failures that are not a task with the reason and failure code', () => {
    const b = build({ state: 'failed', failureCode: 'PLAN_INVALID', reason: 'the plan was invalid 3 times: task x depends on y' });
    expect(failureLine(b, [])).toBe(`codegod: build ${ID} failed (PLAN_INVALID): the plan was invalid 3 times: task x depends on y`);
    expect(outcomeJson(b, [], report({ state: 'failed', tasks: [] }))).toMatchObject({ exitCode: 6, failure: null });
    expect(failureLine(build({ state: 'cancelled', reason: 'cancelled by user' }), [])).toBe(`codegod: build ${ID} was cancelled: cancelled by user`);
  });
});

describe('status DAG order', () => {
  it('lists dependencies first, level by level, ties by id; cycles last', () => {
    const tasks = [task('z', { deps: ['b', 'c'] }), task('c', { deps: ['a'] }), task('b', { deps: ['a'] }), task('a'), task('x', { deps: ['y'] }), task('y', { deps: ['x'] })];
    expect(ordered(tasks).map((t) => t.id)).toEqual(['a', 'b', 'c', 'z', 'x', 'y']);
  });

  it('orders a chain of 20,000 tasks without deep recursion', () => {
    const chain = Array.from({ length: 20_000 }, (_, i) => task(`t${i}`, { deps: i ? [`t${i - 1}`] : [] })).reverse();
    const out = ordered(chain);
    expect(out[0]!.id).toBe('t0');
    expect(out[19_999]!.id).toBe('t19999');
  });
});

const usage = (p: number, c: number) => ({ promptTokens: p, completionTokens: c, calls: 1 });

const TRACE: LoopState = {
  version: 1,
  gen: 0,
  status: 'succeeded',
  outcome: 'API answers on /todos',
  wiped: false,
  failedPlans: [],
  failedErrors: [],
  startedAt: 10_000,
  updatedAt: 25_000,
  iterations: [
    {
      n: 1,
      observe: { facts: { python: '3.12' }, findings: ['no app.py yet'], ms: 40 },
      reason: {
        output: { problem_analysis: 'p', root_causes: [], approach: 'write app.py with Flask', risks: [], success_criteria: 's', conclusion: 'create the app first' },
        ms: 1_200,
        usage: usage(400, 100),
      },
      plan: {
        steps: [{ action: 'run_command', params: { command: 'pytest' }, expected: 'passes' }],
        estimated_duration: '1m',
        confidence: 0.7,
        ms: 900,
        usage: { ...usage(300, 80), prompt: { estimate: 4_000, cut: ['handoff', 'observations'] } },
      },
      act: {
        steps: [{ index: 0, action: 'run_command', params: { command: 'pytest' }, expected: 'passes', ok: false, output: 'line1\nE   ImportError: flask', exitCode: 1, ms: 2_100 }],
        done: false,
        ms: 2_200,
      },
      validate: {
        checks: [{ kind: 'command', target: 'pytest', args: ['-q'], contains: 'passed', ok: false, output: '1 error' }],
        valid: false,
        output: 'flask is missing',
        ms: 700,
        usage: usage(200, 20),
      },
      failure: 'validation failed: flask is missing',
    },
    { n: 2, reason: { output: { problem_analysis: 'p', root_causes: ['flask not installed'], approach: 'install flask', risks: [], success_criteria: 's', conclusion: 'install then test' }, ms: 800, usage: usage(500, 50) } },
  ],
};

describe('trace', () => {
  it('shows each phase: observations, conclusion, plan steps, actions with exit codes, checks and verdict', () => {
    expect(traceTokens(TRACE)).toBe(400 + 100 + 300 + 80 + 200 + 20 + 500 + 50);
    const text = renderTrace(task('api'), TRACE).join('\n');
    expect(text).toMatch(/^task api \(backend\) succeeded · trace succeeded · generation 0 · 2 iteration\(s\) · 1,650 tokens · 15\.0s/);
    expect(text).toContain('outcome: API answers on /todos');
    expect(text).toMatch(/iteration 1 {2}\(failed\)/);
    expect(text).toContain('- no app.py yet');
    expect(text).toContain('facts: python=3.12');
    expect(text).toContain('conclusion: create the app first');
    expect(text).toContain('1. run_command command=pytest');
    expect(text).toMatch(/1\. run_command FAILED exit 1 in 2\.1s/);
    expect(text).toContain('E   ImportError: flask');
    expect(text).toMatch(/validate +700ms {2}220 tokens · NOT valid/);
    expect(text).toContain('380 tokens (prompt cut to fit its budget: handoff, observations) · confidence 0.7');
    expect(text).toContain('FAIL command pytest -q contains "passed"');
    expect(text).toContain('verdict: flask is missing');
    expect(text).toContain('failure: validation failed: flask is missing');
    expect(text).toContain('root causes: flask not installed');
  });

  it("keeps the last lines of a failed step's output (with their indentation) unless asked for all", () => {
    const long = { ...TRACE, iterations: [{ n: 1, act: { steps: [{ ...TRACE.iterations[0]!.act!.steps[0]!, output: Array.from({ length: 20 }, (_, i) => `out ${i}`).join('\n') }], done: true, ms: 1 } }] };
    const short = renderTrace(task('api'), long).join('\n');
    expect(short).toContain('… 8 earlier line(s)');
    expect(short).not.toContain('out 5\n');
    expect(short).toContain('out 19');
    expect(renderTrace(task('api'), long, true).join('\n')).toContain('out 0');
    const traceback = { ...long, iterations: [{ n: 1, act: { steps: [{ ...long.iterations[0]!.act.steps[0]!, output: 'Traceback:\n  File "a.py", line 1\n\n    import flask\nModuleNotFoundError: flask\n' }], done: true, ms: 1 } }] };
    expect(renderTrace(task('api'), traceback).join('\n')).toContain('  File "a.py", line 1\n               import flask\n           ModuleNotFoundError: flask');
  });
});

function agent(over: Partial<AgentView>): AgentView {
  return {
    agentId: 'a',
    role: 'backend',
    state: 'idle',
    currentTask: null,
    currentTasks: [],
    heartbeat: 0,
    startedAt: 0,
    uptimeMs: 0,
    tasksCompleted: 0,
    tasksFailed: 0,
    concurrency: 4,
    pid: 1,
    host: 'h',
    heartbeatAgeMs: 100,
    stale: false,
    live: true,
    ...over,
  };
}

describe('doctor checks', () => {
  it('reads version, eviction policy and AOF from INFO', () => {
    const good = parseInfo('# Server\r\nredis_version:7.2.4\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n# Persistence\r\naof_enabled:1\r\n');
    expect(redisServerChecks(good, 'redis://x').map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
    const bad = redisServerChecks(parseInfo('redis_version:6.0.9\nmaxmemory_policy:allkeys-lru\naof_enabled:0\n'), 'redis://x');
    expect(bad.map((r) => r.status)).toEqual(['warn', 'warn', 'warn']);
    expect(bad[1]!.detail).toMatch(/allkeys-lru; set it to noeviction/);
    expect(bad[2]!.detail).toMatch(/appendonly yes/);
    expect(redisServerChecks(parseInfo('redis_version:4.0.14\n'), 'redis://x')[0]!.status).toBe('fail');
  });

  it('warns for roles without a live worker and for a missing orchestrator', () => {
    const results = agentChecks([
      agent({ agentId: 'b1', role: 'backend' }),
      agent({ agentId: 'f1', role: 'frontend', stale: true, live: false }),
      agent({ agentId: 'm1', role: 'master' }),
    ]);
    const byCheck = Object.fromEntries(results.map((r) => [r.check, r]));
    expect(byCheck['backend workers']).toMatchObject({ status: 'ok', detail: '1 running, 4 task slot(s)' });
    expect(byCheck['frontend workers']!.status).toBe('warn');
    expect(byCheck['frontend workers']!.detail).toMatch(/none running \(1 stale\).*codegod worker --role frontend/);
    expect(byCheck['orchestrator']).toMatchObject({ status: 'ok' });
    expect(agentChecks([]).find((r) => r.check === 'orchestrator')!.status).toBe('warn');
    expect(formatCheck({ status: 'ok', check: 'Redis', detail: 'fine' })).toBe('ok    Redis               fine');
  });

  it('checks that the workspace root is writable or can be created', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codegod-ws-'));
    expect(await workspaceCheck(dir)).toMatchObject({ status: 'ok', detail: `${dir} is writable` });
    expect((await workspaceCheck(join(dir, 'a', 'b'))).detail).toMatch(/does not exist yet; it will be created/);
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    expect(await workspaceCheck(file)).toMatchObject({ status: 'fail' });
    expect(await workspaceCheck(join(file, 'sub'))).toMatchObject({ status: 'fail' });
  });
});
