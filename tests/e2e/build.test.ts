import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { ScenarioInput } from '../../scripts/llm-server/scenario.js';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import type { Config } from '../../shared/config.js';
import { readEvents } from '../../shared/engine/events.js';
import { configEnv, testConfig } from '../helpers/config.js';
import { stdoutJson, runCli, startCli } from '../helpers/cli.js';
import { engine, waitForBuildEnd, waitForWorkers, type EngineHarness } from '../helpers/engine.js';
import { FAST_RECOVERY, ROOT, startOrchestrator, startWorker, waitFor, type ChildHandle } from '../helpers/processes.js';

/**
 * `codegod build` end to end: the real CLI binary, real Redis, real orchestrator and worker
 * processes (agent executor), and the scripted LLM server playing the todo-app scenario —
 * the same one the README's demo uses.
 */
const SCENARIO = join(ROOT, 'scripts/llm-server/scenarios/todo-app.yaml');
const GOAL = 'Create a Flask + React todo app';

let llm: ScriptedLlmServer;
let config: Config;
let env: Record<string, string>;
let h: EngineHarness;
let orchestrator: ChildHandle;
const workers: ChildHandle[] = [];
const workspaceRoot = mkdtempSync(join(tmpdir(), 'codegod-e2e-'));
/** The scenario as written. */
const rawScenario = () => parseYaml(readFileSync(SCENARIO, 'utf8')) as ScenarioInput & { rules: Array<Record<string, unknown>> };

beforeAll(async () => {
  llm = await startScriptedLlmServer({ scenarioPath: SCENARIO });
  const extra = { ...FAST_RECOVERY, VLLM_API_URL: llm.url, CODEGOD_EXECUTOR: 'agent', CODEGOD_WORKSPACE_ROOT: workspaceRoot, LLM_TIMEOUT_MS: '5000' };
  config = testConfig(extra);
  env = configEnv(config, { LOG_LEVEL: 'warn' });
  h = engine(config);
  orchestrator = startOrchestrator(config, extra);
  for (const role of ['backend', 'frontend', 'devops', 'testing']) workers.push(startWorker(config, role, extra));
  await waitForWorkers(h.redis, config, workers);
}, 60_000);

afterAll(async () => {
  await Promise.all([orchestrator, ...workers].map((c) => c?.kill('SIGTERM')));
  await h?.close();
  await llm?.close();
  rmSync(workspaceRoot, { recursive: true, force: true });
});

describe('codegod build, end to end', () => {
  let buildId: string;
  // One server answers every build of the file: a rule's `times` counts per build.

  it('builds the todo app: all four roles, parallel roots, a follow-up that fixes a missing piece, exit 0', async () => {
    const run = await runCli(['build', GOAL, '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const report = stdoutJson<{ buildId: string; state: string; exitCode: number; tasks: Array<{ id: string; role: string; state: string; origin: string }>; files: string[] }>(run.stdout);
    buildId = report.buildId;
    expect(report.state).toBe('succeeded');
    expect(report.exitCode).toBe(0);
    expect(new Set(report.tasks.map((t) => t.role))).toEqual(new Set(['backend', 'frontend', 'devops', 'testing']));
    expect(report.tasks.every((t) => t.state === 'succeeded')).toBe(true);
    expect(report.files).toEqual(expect.arrayContaining(['backend/todo_api.py', 'backend/validation.py', 'frontend/src/App.jsx', 'Dockerfile']));
    // Progress went to stderr while stdout kept only the JSON document.
    expect(run.stderr).toMatch(/api\s+running/);

    const tasks = new Map((await h.scheduler.dag.getTasks(buildId)).map((t) => [t.id, t]));
    const api = tasks.get('api')!;
    const ui = tasks.get('ui')!;
    expect(api.startedAt!).toBeLessThan(ui.finishedAt!);
    expect(ui.startedAt!).toBeLessThan(api.finishedAt!);

    // The testing agent reported the missing module; the backend follow-up fixed it and the re-run passed.
    const followup = [...tasks.values()].find((t) => t.origin === 'followup:test-api' && t.role === 'backend')!;
    const rerun = [...tasks.values()].find((t) => t.origin === 'followup:test-api' && t.role === 'testing')!;
    expect(followup.spec.title).toBe('Add the validation module');
    expect(rerun.deps).toEqual([followup.id]);
    expect(rerun.startedAt!).toBeGreaterThanOrEqual(followup.finishedAt!);
    const release = tasks.get('release')!;
    expect(release.deps).toContain(rerun.id);
    expect(release.startedAt!).toBeGreaterThanOrEqual(rerun.finishedAt!);
    const firstTry = JSON.parse(tasks.get('test-api')!.result!);
    expect(firstTry.followups[0]).toMatchObject({ role: 'backend', rerun: true });

    // The produced workspace's own tests pass.
    const ws = join(workspaceRoot, buildId);
    expect(execFileSync('python3', ['-m', 'unittest', 'discover', '-s', 'backend'], { cwd: ws, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).toBeDefined();
    const node = execFileSync(process.execPath, ['--test', 'test/todos.test.js'], { cwd: join(ws, 'frontend'), encoding: 'utf8' });
    expect(node).toMatch(/# pass 2/);
    expect(readFileSync(join(ws, 'backend/validation.py'), 'utf8')).toContain('def validate_title');
  }, 120_000);

  it('status and trace show the finished build', async () => {
    const status = await runCli(['status', buildId, '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    const doc = stdoutJson<{ build: { state: string } }>(status.stdout);
    expect(doc.build.state).toBe('succeeded');
    const trace = await runCli(['trace', buildId, 'test-api'], env);
    expect(trace.code, trace.stderr).toBe(0);
    expect(trace.stdout).toMatch(/report_followup/);
    expect(trace.stdout).toMatch(/No module named 'validation'/);
  });

  it('SIGKILL of the CLI: the build goes on and status shows it finished', async () => {
    const cli = startCli(['build', GOAL], env);
    const id = await waitFor(() => /build (b-[a-z0-9]+-[a-z0-9]+)/.exec(cli.text)?.[1], 'the build id on the CLI output', 20_000);
    await cli.kill('SIGKILL');
    const build = await waitForBuildEnd(h.scheduler, id, 90_000);
    expect(build.state).toBe('succeeded');
    const status = await runCli(['status', id, '--json'], env);
    expect(stdoutJson<{ build: { state: string } }>(status.stdout).build.state).toBe('succeeded');
  }, 120_000);

  it('SIGKILL of the orchestrator while it plans: a restarted orchestrator finishes the build', async () => {
    const raw = rawScenario();
    // Planning takes long enough to kill the orchestrator in the middle of it.
    llm.reset({ ...raw, rules: raw.rules.map((r, i) => (i === 0 ? { ...r, delayMs: 3_000 } : r)) });
    {
      const detached = await runCli(['build', GOAL, '--detach', '--json'], env);
      expect(detached.code, detached.stderr).toBe(0);
      const id = stdoutJson<{ buildId: string }>(detached.stdout).buildId;
      await waitFor(async () => (await readEvents(h.redis, h.scheduler.keys, id)).some((e) => e.type === 'build.planning'), 'planning to start');
      await orchestrator.kill('SIGKILL');
      expect((await h.scheduler.dag.getBuild(id)).state).toBe('planning');
      orchestrator = startOrchestrator(config, { ...FAST_RECOVERY, VLLM_API_URL: llm.url });
      const build = await waitForBuildEnd(h.scheduler, id, 90_000);
      expect(build.state).toBe('succeeded');
      expect(llm.requests.filter((r) => r.phase === 'plan-dag' && r.status === 200).length).toBeGreaterThanOrEqual(1);
    }
  }, 120_000);
});
