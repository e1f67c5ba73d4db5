import type { Redis } from 'ioredis';
import { RedisAuditSink } from '../../shared/telemetry/audit.js';
import type { AgentOptions, CodegodOptions, SandboxOptions } from '../../shared/options.js';
import { CodegodError, DataCorruptError, errorMessage } from '../../shared/domain/errors.js';
import { Scheduler } from '../../shared/engine/scheduler.js';
import { createKeys, type Keys } from '../../shared/redis/keys.js';
import { LlmClient } from '../../shared/llm/client.js';
import { RedisUsageRecorder } from '../../shared/telemetry/llm-usage.js';
import { createRedis } from '../../shared/redis/connection.js';
import type { Logger } from '../../shared/logger.js';
import { MemoryStore } from '../../shared/memory/store.js';
import { crashPoints } from '../../shared/process.js';
import { Sandbox } from '../../shared/sandbox/sandbox.js';
import { TeamKnowledge } from '../../shared/memory/team-knowledge.js';
import type { KnowledgeAccess } from '../actions/action.js';
import { AgentLoop } from '../agent/loop.js';
import { LoopStateStore } from '../../shared/memory/loop-state.js';
import { TaskFailedError, type TaskContext, type TaskExecutor } from '../../shared/engine/task-executor.js';
import { TaskEffects } from '../agent/effects.js';
import { readDependencyHandoffs, type DependencyHandoff } from '../agent/handoff.js';
import { roleDefinition } from '../roles/index.js';

/** What the agent executor works with; its opener makes them and releases them on close. */
export interface AgentExecutorDeps {
  redis: Redis;
  keys: Keys;
  /** One per process, so the in-flight limit holds across all concurrent tasks. */
  llm: LlmClient;
  /** Reads dependencies' handoffs; cancels a build whose token budget is spent. */
  scheduler: Scheduler;
  logger: Logger;
  /** Closes what the opener made for this executor. */
  release?: () => Promise<void>;
}

/**
 * The executor that makes a worker an agent: each task runs the ORPAV loop against the LLM,
 * acting on the build's workspace through the sandbox. One LLM client per process, so the
 * in-flight limit (LLM_MAX_INFLIGHT) holds across all of the worker's concurrent tasks.
 */
export class AgentExecutor implements TaskExecutor {
  private readonly redis: Redis;
  private readonly keys: Keys;
  private readonly llm: LlmClient;
  private readonly memory: MemoryStore;
  private readonly team: TeamKnowledge;
  private readonly states: LoopStateStore;
  private readonly crash: (point: string) => void;
  private readonly scheduler: Scheduler;
  private readonly release: (() => Promise<void>) | undefined;

  /** `sandboxOptions` makes each task's sandbox; connections and clients come in `deps`. */
  constructor(
    private readonly options: AgentOptions,
    private readonly sandboxOptions: SandboxOptions,
    deps: AgentExecutorDeps,
  ) {
    const { redis, keys, logger } = deps;
    this.redis = redis;
    this.keys = keys;
    this.llm = deps.llm;
    this.scheduler = deps.scheduler;
    this.release = deps.release;
    this.memory = new MemoryStore(redis, keys, logger);
    this.team = new TeamKnowledge(redis, keys);
    this.states = new LoopStateStore(redis, keys, logger);
    this.crash = crashPoints(options.crashAt);
  }

  /** The LLM client, for benchmarks that watch requests in flight. */
  get client(): LlmClient {
    return this.llm;
  }

  async execute(ctx: TaskContext): Promise<unknown> {
    const { buildId, taskId } = ctx;
    const effects = new TaskEffects(new RedisAuditSink(this.redis, this.keys, buildId));
    const sandbox = await Sandbox.fromOptions(this.sandboxOptions, { buildId, sink: effects, taskId, agentId: ctx.agentId, logger: ctx.logger });
    // Where isolation was asked for and the kernel cannot give it, the task fails with the
    // reason and its fix before any agent action (retrying would meet the same kernel).
    if (sandbox.isolation?.tier === 'unavailable') throw new TaskFailedError(`agent commands are refused: ${sandbox.isolation.reason}`, false);
    try {
      return await this.runLoop(ctx, sandbox, effects);
    } finally {
      await sandbox.close();
    }
  }

  private async runLoop(ctx: TaskContext, sandbox: Sandbox, effects: TaskEffects): Promise<unknown> {
    const { buildId, taskId } = ctx;
    const knowledge: KnowledgeAccess = {
      get: () => this.team.get(buildId),
      entries: () => this.team.entries(buildId),
      set: async (key, value) => {
        await this.team.set(buildId, { buildId, role: ctx.role }, key, value);
        effects.noteKnowledge(key, value);
      },
    };
    const [[goal, model], handoffs] = await Promise.all([
      this.redis.hmget(this.keys.build(buildId), 'goal', 'model'),
      this.handoffs(buildId, ctx.spec.dependsOn),
    ]);
    const loop = new AgentLoop({
      role: roleDefinition(ctx.role),
      llm: this.llm,
      memory: this.memory,
      states: this.states,
      sandbox,
      knowledge,
      logger: ctx.logger,
      maxIterations: this.options.maxIterations,
      crash: this.crash,
      beforeLlm: () => this.checkBudget(buildId),
      actionContext: { buildId, taskId, role: ctx.role },
      effects,
      promptBudget: this.options.promptBudgetTokens,
    });
    return loop.run({
      buildId,
      taskId,
      gen: ctx.gen,
      spec: ctx.spec,
      goal: goal ?? undefined,
      model: model ?? undefined,
      agentId: ctx.agentId,
      signal: ctx.signal,
      handoffs,
      setPhase: (phase) => ctx.setPhase(phase),
    });
  }

  /** What the dependencies delivered; malformed data fails this task for good, with the key and the problem. */
  private async handoffs(buildId: string, dependsOn: readonly string[]): Promise<DependencyHandoff[]> {
    try {
      return await readDependencyHandoffs(this.scheduler.dag, buildId, dependsOn);
    } catch (err) {
      if (err instanceof DataCorruptError) throw new TaskFailedError(err.message, false);
      throw err;
    }
  }

  /**
   * A build with a token budget stops cleanly once its LLM calls have used it: open tasks
   * are cancelled and the build ends failed with LLM_BUDGET (the CLI's exit code 7).
   */
  private async checkBudget(buildId: string): Promise<void> {
    const [budget, prompt, completion] = (await this.redis.hmget(this.keys.build(buildId), 'budgetTokens', 'promptTokens', 'completionTokens')).map(Number);
    if (!budget) return;
    const used = (prompt ?? 0) + (completion ?? 0);
    if (used < budget) return;
    const reason = `token budget spent: used ${used} of ${budget} tokens`;
    await this.scheduler.cancel(buildId, reason, 'failed', 'LLM_BUDGET').catch(() => undefined);
    throw new CodegodError('LLM_BUDGET', reason);
  }

  async close(): Promise<void> {
    await this.release?.();
  }
}

/**
 * An agent executor on a connection, scheduler and LLM client of its own, all closed with it:
 * what a worker process runs.
 */
export function openAgentExecutor(options: CodegodOptions, logger: Logger): AgentExecutor {
  const redis = createRedis(options.redis, 'service');
  redis.on('error', (err) => logger.warn({ err: errorMessage(err) }, 'redis connection error; retrying'));
  const keys = createKeys(options.redis.prefix);
  const scheduler = new Scheduler(redis, keys, options.scheduler, logger);
  const llm = new LlmClient(options.llm, { recorder: new RedisUsageRecorder(redis, keys), logger });
  return new AgentExecutor(options.agent, options.sandbox, {
    redis,
    keys,
    llm,
    scheduler,
    logger,
    release: async () => {
      await scheduler.close();
      await redis.quit().catch(() => undefined);
    },
  });
}
