import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startScriptedLlmServer, type RequestLogEntry, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import type { ScenarioInput } from '../../scripts/llm-server/scenario.js';
import type { BuildRecord } from '../../shared/domain/build.js';
import type { Config } from '../../shared/config.js';
import { createLogger } from '../../shared/logger.js';
import { LoopStateStore, type LoopState } from '../../shared/memory/loop-state.js';
import type { TaskResult } from '../../shared/domain/agent-phases.js';
import { testConfig } from './config.js';
import { engine, plan, waitForBuildEnd, waitForWorkers, type EngineHarness } from './engine.js';
import { FAST_RECOVERY, startWorker, type ChildHandle } from './processes.js';

/**
 * Reason and validate replies that fit any task; plans are what scenarios differ in. Keys
 * are in schema order, as a grammar-constrained model writes them (the scripted server
 * checks that).
 */
export const REASON = {
  problem_analysis: 'The workspace lacks what the task asks for.',
  root_causes: ['not created yet'],
  approach: 'Create the files and check them.',
  risks: ['none'],
  success_criteria: 'The files exist and the check command passes.',
  conclusion: 'Write the files, then run the check.',
};

export const plan1 = (steps: Array<{ action: string; params: Record<string, unknown>; expected?: string }>) => ({
  steps: steps.map((s) => ({ action: s.action, params: s.params, expected: s.expected ?? 'works' })),
  estimated_duration: '10 seconds',
  confidence: 0.9,
});

export const validateWith = (checks: Array<{ kind: string; target: string; args?: string[]; contains?: string | null }>) => ({
  checks: checks.map((c) => ({ kind: c.kind, target: c.target, args: c.args ?? [], contains: c.contains ?? null })),
  summary: 'checked',
});

/**
 * The parts of an agent's prompt as the scripted server received it: the system message, the
 * task message (task and what its dependencies handed on), the context message (memory,
 * observations, failed iterations) with its MEMORY section, and the phase message.
 */
export function promptOf(r: RequestLogEntry): { system: string; task: string; context: string; memory: string; phase: string; all: string } {
  const text = (r.messages ?? []).map((m) => String((m as { content?: unknown }).content ?? ''));
  const [system = '', task = '', context = '', phase = ''] = text;
  const memory = /^MEMORY\n([\s\S]*?)(?:\n\nOBSERVATIONS|$)/.exec(context)?.[1] ?? '';
  return { system, task, context, memory, phase, all: text.join('\n') };
}

/**
 * One agent test world: a scripted LLM server, a private workspace root, a real worker
 * process running the agent executor, and the engine to create builds and read results.
 */
export class AgentWorld {
  readonly workspaceRoot = mkdtempSync(join(tmpdir(), 'codegod-ws-'));
  readonly config: Config;
  readonly engine: EngineHarness;
  readonly workers: ChildHandle[] = [];
  private readonly states: LoopStateStore;

  private constructor(
    readonly llm: ScriptedLlmServer,
    extra: Record<string, string>,
  ) {
    this.config = testConfig({ ...this.env(), ...extra });
    this.engine = engine(this.config);
    this.states = new LoopStateStore(this.engine.redis, this.engine.scheduler.keys, createLogger('silent'));
  }

  static async start(scenario: ScenarioInput, extra: Record<string, string> = {}): Promise<AgentWorld> {
    const llm = await startScriptedLlmServer({ scenario });
    return new AgentWorld(llm, extra);
  }

  env(): Record<string, string> {
    return {
      ...FAST_RECOVERY,
      VLLM_API_URL: this.llm.url,
      CODEGOD_EXECUTOR: 'agent',
      CODEGOD_WORKSPACE_ROOT: this.workspaceRoot,
      LLM_TIMEOUT_MS: '3000',
      LLM_MAX_RETRIES: '2',
      CODEGOD_TASK_ATTEMPTS: '2',
    };
  }

  async startWorker(role: string, extra: Record<string, string> = {}): Promise<ChildHandle> {
    const w = startWorker(this.config, role, { ...this.env(), ...extra });
    this.workers.push(w);
    await waitForWorkers(this.engine.redis, this.config, [w]);
    return w;
  }

  /** A build of one task (or a few) with the given role; returns its id. */
  async build(tasks: Array<{ id: string; role: string; description?: string; dependsOn?: string[] }>, goal = 'agent test'): Promise<string> {
    return this.engine.scheduler.createBuild({ goal, plan: plan(tasks.map((t) => ({ description: `Do ${t.id}`, ...t }))) });
  }

  waitForEnd(buildId: string, timeoutMs = 45_000): Promise<BuildRecord> {
    return waitForBuildEnd(this.engine.scheduler, buildId, timeoutMs);
  }

  async result(buildId: string, taskId: string): Promise<TaskResult> {
    const t = await this.engine.scheduler.dag.getTask(buildId, taskId);
    return JSON.parse(t.result ?? 'null') as TaskResult;
  }

  async trace(buildId: string, taskId: string): Promise<LoopState | undefined> {
    return this.states.read(buildId, taskId);
  }

  workspace(buildId: string): string {
    return join(this.workspaceRoot, buildId);
  }

  requests(phase?: string, task?: string) {
    return this.llm.requests.filter((r) => (!phase || r.phase === phase) && (!task || r.task === task));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.kill('SIGTERM')));
    await this.engine.close();
    await this.llm.close();
    rmSync(this.workspaceRoot, { recursive: true, force: true });
  }
}
