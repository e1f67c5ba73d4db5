import { createHash } from 'node:crypto';
import { CodegodError, DataCorruptError, errorMessage } from '../../shared/domain/errors.js';
import type { z } from 'zod';
import type { LlmClient } from '../../shared/llm/client.js';
import type { Logger } from '../../shared/logger.js';
import { addObservation, addReasoning, completeTask, setBlockedOn, setKnowledge, startTask } from '../../shared/memory/reducers.js';
import type { AgentMemory, ReasoningPhase } from '../../shared/memory/schema.js';
import type { MemoryStore } from '../../shared/memory/store.js';
import type { TaskSpec } from '../../shared/domain/plan.js';
import type { Sandbox } from '../../shared/sandbox/sandbox.js';
import type { Followup, FollowupRequest } from '../../shared/domain/followup.js';
import type { AgentPhase } from '../../shared/engine/task-executor.js';
import type { ActionContext, KnowledgeAccess } from '../actions/action.js';
import { TaskFailedError } from '../../shared/engine/task-executor.js';
import type { RoleDefinition } from '../roles/role.js';
import type { Iteration, LoopState, LoopStateStore, StepRecord } from '../../shared/memory/loop-state.js';
import { PHASE_MAX_TOKENS, ReasonSchema, ValidatePlanSchema, type Check, type TaskResult } from '../../shared/domain/agent-phases.js';
import type { TaskEffects } from './effects.js';
import { buildHandoff, type DependencyHandoff } from './handoff.js';
import { memoryLines, taskTag } from './memory-view.js';
import { planSchemaFor } from './plan-schema.js';
import { PromptBudgetError, PromptBuilder, type BudgetedMessage, type PhaseInput, type Prompt } from './prompts.js';

export interface LoopDeps {
  role: RoleDefinition;
  llm: LlmClient;
  memory: MemoryStore;
  states: LoopStateStore;
  sandbox: Sandbox;
  knowledge: KnowledgeAccess;
  logger: Logger;
  maxIterations: number;
  /** Test-only fault injection (see shared/process.ts crashPoints). */
  crash: (point: string) => void;
  /** Throws (LLM_BUDGET) when the build's token budget is spent; called before every LLM call. */
  beforeLlm: () => Promise<void>;
  actionContext: Omit<ActionContext, 'sandbox' | 'signal' | 'knowledge' | 'logger'>;
  /** What the task's sandbox and knowledge writes did, drained around each Act step. */
  effects: TaskEffects;
  /** Estimated tokens one prompt may hold (CODEGOD_PROMPT_BUDGET_TOKENS). */
  promptBudget: number;
}

export interface LoopTask {
  buildId: string;
  taskId: string;
  gen: number;
  spec: TaskSpec;
  goal?: string | undefined;
  /** The build's model override, if any. */
  model?: string | undefined;
  agentId: string;
  signal: AbortSignal;
  /** What the task's dependencies handed on. */
  handoffs: readonly DependencyHandoff[];
  /** Tells the worker which phase the task is in (its live state). */
  setPhase: (phase: AgentPhase) => void;
}

const OUTPUT_CLIP = 4_000;
/** Passing checks that run a project's tests: worth remembering as the way to test. */
const TEST_COMMAND = /\b(unittest|pytest|--test\b|npm (run )?test|jest|vitest|mocha)/;

function clip(text: string, max = OUTPUT_CLIP): string {
  return text.length <= max ? text : `${text.slice(0, max / 2)}\n…[${text.length - max} characters clipped]…\n${text.slice(-max / 2)}`;
}

function signature(value: unknown): string {
  return createHash('sha1').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** Errors of one failed iteration, normalised (numbers dropped) so "the same error twice" is seen through durations and pids. */
function errorSignature(failure: string): string {
  return signature(failure.replace(/\d+/g, '#').slice(0, 500));
}

/**
 * The observe → reason → plan → act → validate loop of one task.
 *
 * The state is checkpointed after every phase and after every Act step, so a task re-run
 * after a crash continues after the last completed phase (an interrupted Act re-runs only
 * the steps not recorded as done). A failed validation loops back to Observe with what went
 * wrong. When the loop is stuck — the same plan or the same error twice, or the iteration
 * budget spent — it wipes the agent's working memory and tries once more with fresh
 * reasoning; stuck again, the task fails with its trace.
 *
 * Context: every prompt carries what the task's dependencies handed on and, read at the start
 * of each iteration, the agent's memory — core knowledge always, and what it observed, reasoned
 * and was blocked on in earlier attempts at this task (see memory-view.ts). The loop writes that
 * memory as it goes: findings of Observe, one note per phase, why an iteration failed, and the
 * knowledge Act and Validate discover (venv, interpreter, entry points, test commands).
 */
export class AgentLoop {
  /** The agent's memory as it was before this attempt touched it; used by the first iteration. */
  private initialMemory: AgentMemory | null | undefined;
  private prompts: PromptBuilder | undefined;
  /** The context message of the iteration in progress. */
  private context: { n: number; message: BudgetedMessage } | undefined;

  constructor(private readonly deps: LoopDeps) {}

  async run(task: LoopTask): Promise<TaskResult> {
    const { deps } = this;
    const state = await deps.states.load(task.buildId, task.taskId, task.gen);
    if (state.status === 'succeeded') return this.result(state, true);
    try {
      this.prompts = new PromptBuilder(deps.role, task.spec, task.goal, task.handoffs, deps.promptBudget);
    } catch (err) {
      if (err instanceof PromptBudgetError) throw new TaskFailedError(err.message, false);
      throw err;
    }
    this.initialMemory = await this.readMemory(task);
    await this.remember(task, (m) => setBlockedOn(startTask(m, { buildId: task.buildId, taskId: task.taskId, title: task.spec.title }), null));

    for (;;) {
      let it = state.iterations[state.iterations.length - 1];
      if (!it || it.failure !== undefined) {
        it = { n: state.iterations.length + 1 };
        state.iterations.push(it);
      }
      try {
        const verdict = await this.iterate(task, state, it);
        if (verdict === 'valid') {
          state.status = 'succeeded';
          state.outcome = it.validate?.output ?? 'done';
          await this.save(task, state);
          await this.remember(task, (m) => completeTask(m, { buildId: task.buildId, taskId: task.taskId }));
          return this.result(state, true);
        }
      } catch (err) {
        if (task.signal.aborted) throw err;
        // An LLM reply that stayed invalid through the repair loop is this iteration's
        // failure, like a failed check; an unreachable LLM is the attempt's failure (retried).
        if (!(err instanceof CodegodError) || err.code !== 'LLM_BAD_RESPONSE') throw this.transient(err);
        it.failure = `the ${this.currentPhase(it)} reply was invalid: ${errorMessage(err)}`;
      }
      await this.afterFailure(task, state, it);
    }
  }

  private currentPhase(it: Iteration): string {
    return !it.reason ? 'reason' : !it.plan ? 'plan' : 'validate';
  }

  /**
   * The agent's memory; a malformed one fails the task (for good: it will not mend itself)
   * with the key and what is wrong, and how to clear it.
   */
  private async readMemory(task: LoopTask): Promise<AgentMemory | null> {
    try {
      return await this.deps.memory.get(task.agentId);
    } catch (err) {
      if (!(err instanceof DataCorruptError)) throw err;
      throw new TaskFailedError(`${err.message}; clear it with: codegod wipe --agent ${task.agentId} --yes`, false);
    }
  }

  /** The context message of iteration `it`: memory as it stands now, the facts Observe found, failed iterations. */
  private async contextOf(task: LoopTask, state: LoopState, it: Iteration): Promise<BudgetedMessage> {
    if (this.context?.n === it.n) return this.context.message;
    const initial = this.initialMemory;
    this.initialMemory = undefined;
    const [memory, team] = await Promise.all([initial !== undefined ? initial : this.readMemory(task), this.deps.knowledge.entries()]);
    const message = this.prompts!.context({
      memory: memoryLines(memory, team, { buildId: task.buildId, taskId: task.taskId, role: this.deps.role.role }),
      observations: it.observe!.facts,
      history: this.history(state, it),
    });
    this.context = { n: it.n, message };
    return message;
  }

  /** Runs the phases of one iteration that are not yet in the checkpoint. */
  private async iterate(task: LoopTask, state: LoopState, it: Iteration): Promise<'valid' | 'invalid'> {
    const { deps } = this;
    if (!it.observe) {
      task.setPhase('observing');
      const t0 = Date.now();
      const knowledge = await deps.knowledge.get();
      const obs = await deps.role.observe({ sandbox: deps.sandbox, signal: task.signal, task: task.spec, knowledge });
      it.observe = { facts: obs.facts, findings: obs.findings.slice(0, 20).map((f) => clip(f, 500)), ms: Date.now() - t0 };
      // Read before this iteration's notes land, so the context holds only earlier attempts.
      await this.contextOf(task, state, it);
      const noted = this.remember(task, (m) => obs.findings.slice(0, 5).reduce((acc, f) => addObservation(acc, `${taskTag(task.buildId, task.taskId)}${f}`), m));
      // The findings are in memory before the checkpoint counts Observe as done.
      await this.checkpoint(task, state, 'observe', noted);
    }
    const context = await this.contextOf(task, state, it);
    if (!it.reason) {
      task.setPhase('reasoning');
      const res = await this.ask(task, 'reason', ReasonSchema, context, {
        parts: [],
        instructions: 'Analyse the problem and answer with: problem_analysis, root_causes, approach, risks, success_criteria, conclusion.',
      });
      it.reason = { output: res.data, ms: res.ms, usage: res.usage };
      await this.checkpoint(task, state, 'reason');
      void this.note(task, 'reason', res.data.conclusion);
    }
    if (!it.plan) {
      task.setPhase('planning');
      const res = await this.ask(task, 'plan', planSchemaFor(deps.role.actions), context, {
        parts: [{ label: 'Your reasoning', value: it.reason.output }],
        instructions: 'Plan the steps (1 to 12) that achieve the task, using only your actions. Answer with: steps [{action, params, expected}], estimated_duration, confidence (0..1).',
      });
      it.plan = { ...res.data, ms: res.ms, usage: res.usage };
      await this.checkpoint(task, state, 'plan');
      void this.note(task, 'plan', res.data.steps.map((s) => s.action).join(', '));
    }
    if (!it.act?.done) {
      task.setPhase('acting');
      await this.act(task, state, it);
    }
    if (!it.validate) {
      task.setPhase('validating');
      await this.validate(task, state, it, context);
    }
    return it.validate!.valid ? 'valid' : 'invalid';
  }

  private async act(task: LoopTask, state: LoopState, it: Iteration): Promise<void> {
    const { deps } = this;
    const t0 = Date.now();
    it.act ??= { steps: [], done: false, ms: 0 };
    const ctx: ActionContext = { ...deps.actionContext, sandbox: deps.sandbox, signal: task.signal, knowledge: deps.knowledge, logger: deps.logger };
    for (const [index, step] of it.plan!.steps.entries()) {
      if (it.act.steps.some((s) => s.index === index)) continue;
      const s0 = Date.now();
      deps.effects.drain();
      const res = await deps.role.actions.run(step, ctx);
      const effects = deps.effects.drain();
      const record: StepRecord = {
        index,
        action: step.action,
        params: step.params,
        expected: step.expected,
        ok: res.ok,
        output: clip(res.output),
        ...(res.exitCode !== undefined ? { exitCode: res.exitCode } : {}),
        ms: Date.now() - s0,
        ...(res.followups?.length ? { followups: res.followups } : {}),
        ...(effects.files.length ? { files: effects.files } : {}),
        ...(effects.commands.length ? { commands: effects.commands } : {}),
        ...(Object.keys(effects.knowledge).length ? { knowledge: effects.knowledge } : {}),
      };
      it.act.steps.push(record);
      it.act.ms += Date.now() - s0;
      await this.save(task, state);
      // What the step found out about the environment is core knowledge: it survives wipes.
      if (record.knowledge) await this.learn(task, record.knowledge);
      deps.crash('after-step');
      // Later steps usually build on earlier ones: stop at the first failure and let
      // Validate and the next iteration see it.
      if (!res.ok) break;
    }
    it.act.done = true;
    it.act.ms = Math.max(it.act.ms, Date.now() - t0);
    await this.checkpoint(task, state, 'act');
  }

  private async validate(task: LoopTask, state: LoopState, it: Iteration, context: BudgetedMessage): Promise<void> {
    const t0 = Date.now();
    const failedStep = it.act!.steps.find((s) => !s.ok);
    const followups = it.act!.steps.flatMap((s) => (s.followups ?? []) as FollowupRequest[]);
    if (failedStep) {
      // No need to ask the LLM how to check work that did not happen.
      it.validate = {
        checks: [],
        valid: false,
        output: `step ${failedStep.index + 1} (${failedStep.action}) failed: ${clip(failedStep.output, 1_000)}`,
        ms: 0,
        usage: { promptTokens: 0, completionTokens: 0, calls: 0 },
      };
    } else if (followups.length > 0) {
      // The agent reported work for another role: this task's part is done; the
      // orchestrator schedules the follow-ups (and a re-run when asked).
      it.validate = {
        checks: [],
        valid: true,
        output: `follow-up requested: ${followups.map((f) => `${f.role}: ${f.title}`).join('; ')}`,
        ms: 0,
        usage: { promptTokens: 0, completionTokens: 0, calls: 0 },
      };
    } else {
      const res = await this.ask(task, 'validate', ValidatePlanSchema, context, {
        parts: [
          { label: 'Success criteria', value: it.reason!.output.success_criteria },
          { label: 'Actions taken', value: it.act!.steps.map((s) => ({ action: s.action, ok: s.ok, output: clip(s.output, 1_000) })) },
        ],
        instructions:
          'List 1 to 10 checks that prove the task is done: {kind: "command", target: program, args: [...], contains: text or null} (passes on exit 0), {kind: "file_exists", target: path, args: [], contains: null}, {kind: "file_contains", target: path, args: [], contains: text}. Answer with: checks, summary.',
      });
      const checks = [];
      for (const check of res.data.checks) checks.push({ ...check, ...(await this.runCheck(check, task.signal)) });
      const failed = checks.filter((c) => !c.ok).map((c) => `${c.kind} ${c.target}: ${c.output}`);
      // The role's own checks of what later tasks will use, whatever the LLM chose to check.
      failed.push(...(await this.verifyArtefacts(task)));
      it.validate = {
        checks,
        valid: failed.length === 0,
        output: failed.length === 0 ? res.data.summary || 'all checks passed' : failed.join('\n'),
        ms: Date.now() - t0,
        usage: res.usage,
      };
      const testCommand = checks.find((c) => c.ok && c.kind === 'command' && TEST_COMMAND.test([c.target, ...c.args].join(' ')));
      if (testCommand) await this.learn(task, { test_command: clip([testCommand.target, ...testCommand.args].join(' '), 500) });
    }
    await this.checkpoint(task, state, 'validate');
    void this.note(task, 'validate', it.validate.valid ? 'valid' : clip(it.validate.output, 300));
  }

  private async verifyArtefacts(task: LoopTask): Promise<string[]> {
    const { deps } = this;
    if (!deps.role.verify) return [];
    const knowledge = await deps.knowledge.get();
    return deps.role.verify({ sandbox: deps.sandbox, signal: task.signal, task: task.spec, knowledge });
  }

  /** Runs one success check in the sandbox: the verdict is code's, not the model's. */
  private async runCheck(check: Check, signal: AbortSignal): Promise<{ ok: boolean; output: string }> {
    const { sandbox } = this.deps;
    try {
      if (check.kind === 'file_exists') {
        const ok = await sandbox.exists(check.target);
        return { ok, output: ok ? 'exists' : 'missing' };
      }
      if (check.kind === 'file_contains') {
        const file = await sandbox.readFile(check.target);
        const ok = check.contains === null || file.includes(check.contains);
        return { ok, output: ok ? 'found' : `does not contain ${JSON.stringify(check.contains)}` };
      }
      const res = await sandbox.run({ command: check.target, args: check.args, signal });
      const out = `${res.stdout}\n${res.stderr}`;
      const ok = res.exitCode === 0 && (check.contains === null || out.includes(check.contains));
      return { ok, output: clip(`exit ${res.exitCode ?? res.signal}${res.timedOut ? ' (timed out)' : ''}\n${out.trim()}`, 1_500) };
    } catch (err) {
      if (signal.aborted) throw err;
      return { ok: false, output: errorMessage(err) };
    }
  }

  /** Records why the iteration failed, then decides: next iteration, wipe and retry, or fail. */
  private async afterFailure(task: LoopTask, state: LoopState, it: Iteration): Promise<void> {
    const { deps } = this;
    it.failure ??= it.validate?.output ?? 'validation failed';
    const planSig = it.plan ? signature(it.plan.steps) : undefined;
    const errSig = errorSignature(it.failure);
    const samePlan = planSig !== undefined && state.failedPlans.includes(planSig);
    const sameError = state.failedErrors.includes(errSig);
    if (planSig) state.failedPlans.push(planSig);
    state.failedErrors.push(errSig);
    const sinceWipe = state.iterations.length - (state.wipedAt ?? 0);
    const budgetSpent = sinceWipe >= deps.maxIterations;
    deps.logger.info({ iteration: it.n, failure: clip(it.failure, 300) }, 'iteration failed');
    // Awaited: the next iteration reads memory, and must find this there.
    await this.remember(task, (m) => addObservation(m, `${taskTag(task.buildId, task.taskId)}iteration ${it.n} failed: ${clip(it.failure!, 600)}`));
    if (!samePlan && !sameError && !budgetSpent) {
      await this.save(task, state);
      return;
    }
    const why = samePlan ? 'the same plan failed twice' : sameError ? 'the same error happened twice' : `${deps.maxIterations} iterations without success`;
    if (!state.wiped) {
      // Fresh reasoning: forget this task's failed attempts and the agent's working memory
      // (role and core knowledge stay), then try once more.
      deps.logger.warn({ why }, 'agent is stuck; wiping its working memory and retrying');
      state.wiped = true;
      state.wipedAt = state.iterations.length;
      state.failedPlans = [];
      state.failedErrors = [];
      await deps.memory.wipe(task.agentId);
      await this.remember(task, (m) => startTask(m, { buildId: task.buildId, taskId: task.taskId, title: task.spec.title }));
      await this.save(task, state);
      return;
    }
    state.status = 'failed';
    state.outcome = `stuck after a memory wipe: ${why}; last failure: ${clip(it.failure, 500)}`;
    await this.save(task, state);
    await this.remember(task, (m) => setBlockedOn(m, clip(state.outcome!, 500)));
    throw new TaskFailedError(`task ${task.taskId} failed: ${state.outcome}`, false, this.result(state, false));
  }

  /** An error that is not the task's fault (LLM down, Redis hiccup): the attempt is retried. */
  private transient(err: unknown): Error {
    if (err instanceof TaskFailedError) return err;
    const retryable = !(err instanceof CodegodError && ['LLM_MODEL_UNKNOWN', 'LLM_STRUCTURED_OUTPUT_REFUSED', 'CONFIG_INVALID', 'LLM_BUDGET'].includes(err.code));
    return new TaskFailedError(errorMessage(err), retryable);
  }

  /** One LLM phase: budget check, the prompt within its token budget, the phase's schema and token ceiling. */
  private async ask<S extends z.ZodType>(task: LoopTask, phase: keyof typeof PHASE_MAX_TOKENS, schema: S, context: BudgetedMessage, input: PhaseInput) {
    const { deps } = this;
    const t0 = Date.now();
    await deps.beforeLlm();
    const prompt: Prompt = this.prompts!.messages(context, phase, input);
    if (prompt.cut.length) deps.logger.debug({ phase, estimate: prompt.estimate, cut: prompt.cut }, 'prompt cut to fit its budget');
    const res = await deps.llm.structured({
      model: task.model,
      role: deps.role.role,
      phase,
      schema,
      messages: prompt.messages,
      maxTokens: PHASE_MAX_TOKENS[phase],
      signal: task.signal,
      taskContext: { buildId: task.buildId, taskId: task.taskId, agentId: task.agentId },
    });
    return {
      data: res.data,
      ms: Date.now() - t0,
      usage: {
        promptTokens: res.usage.promptTokens,
        completionTokens: res.usage.completionTokens,
        calls: 1,
        prompt: { estimate: prompt.estimate, cut: prompt.cut },
      },
    };
  }

  /** Failures of earlier iterations since the last wipe, most recent last: what the next attempt must avoid. */
  private history(state: LoopState, it: Iteration): string[] {
    const from = state.wipedAt ?? 0;
    const failed = state.iterations.slice(from).filter((x) => x !== it && x.failure);
    if (failed.length === 0) return ['none'];
    return [
      'These iterations failed; do not repeat them:',
      ...failed.map((x) => `- iteration ${x.n}: plan [${x.plan?.steps.map((s) => s.action).join(', ') ?? 'none'}] → ${clip(x.failure!, 800)}`),
    ];
  }

  /** The most recent failure before the last iteration: the evidence a follow-up asked for there carries. */
  private evidence(state: LoopState): string | undefined {
    const earlier = state.iterations.slice(0, -1).reverse().find((x) => x.failure);
    return earlier ? clip(earlier.failure!, 3_000) : undefined;
  }

  private result(state: LoopState, success: boolean): TaskResult {
    const last = state.iterations[state.iterations.length - 1];
    const steps = last?.act?.steps ?? [];
    const evidence = this.evidence(state);
    const followups = steps.flatMap((s) => (s.followups ?? []) as FollowupRequest[]).map((f): Followup => (evidence ? { ...f, evidence } : f));
    const output = state.outcome ?? last?.validate?.output ?? '';
    return {
      success,
      output,
      reasoning: state.iterations.flatMap((x) =>
        x.reason ? [`Iteration ${x.n} — observed: ${x.observe?.findings.slice(0, 3).join('; ') ?? ''}`, `Reasoning: ${x.reason.output.conclusion}`, `Plan: ${x.plan?.steps.length ?? 0} step(s) - ${x.plan?.steps.map((s) => s.action).join(', ') ?? ''}`] : [],
      ),
      actions_taken: steps.map((s) => ({ step: s.index + 1, action: s.action, success: s.ok, output: clip(s.output, 1_000), exitCode: s.exitCode ?? null })),
      validation: { valid: last?.validate?.valid ?? false, output: last?.validate?.output ?? '' },
      followups,
      iterations: state.iterations.length,
      wiped: state.wiped,
      ...(success ? { handoff: buildHandoff(state, output) } : {}),
    };
  }

  /** Saves the state (and waits for `alongside`, written at the same time) before the phase's crash point. */
  private async checkpoint(task: LoopTask, state: LoopState, phase: ReasoningPhase, alongside?: Promise<void>): Promise<void> {
    await Promise.all([this.save(task, state), alongside]);
    this.deps.crash(`after-${phase}`);
  }

  private save(task: LoopTask, state: LoopState): Promise<void> {
    return this.deps.states.save(task.buildId, task.taskId, state);
  }

  private note(task: LoopTask, phase: ReasoningPhase, summary: string): Promise<void> {
    return this.remember(task, (m) => addReasoning(m, { buildId: task.buildId, taskId: task.taskId, phase, summary: clip(summary, 500) }));
  }

  /** Knowledge discovered while acting or validating becomes the agent's core knowledge. */
  private learn(task: LoopTask, knowledge: Record<string, string>): Promise<void> {
    return this.remember(task, (m) => Object.entries(knowledge).reduce((acc, [k, v]) => setKnowledge(acc, k, v), m));
  }

  /**
   * Memory must never fail a task by being written: a failed write is logged. Notes made
   * along the way are not waited for (the store applies one agent's updates in order; each is
   * a compare-and-set on whatever memory is current); what the next iteration must read is.
   */
  private async remember(task: LoopTask, fn: Parameters<MemoryStore['update']>[2]): Promise<void> {
    try {
      await this.deps.memory.update(task.agentId, this.deps.role.role, fn);
    } catch (err) {
      this.deps.logger.warn({ err: errorMessage(err) }, 'could not update agent memory');
    }
  }
}
