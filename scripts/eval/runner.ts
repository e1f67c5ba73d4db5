import type { Redis } from 'ioredis';
import { startLocalOrchestrator } from '../../orchestrator/main.js';
import type { Config } from '../../shared/config.js';
import { TERMINAL_BUILD_STATES, type BuildRecord } from '../../shared/domain/build.js';
import { errorMessage } from '../../shared/domain/errors.js';
import { Scheduler } from '../../shared/engine/scheduler.js';
import type { Logger } from '../../shared/logger.js';
import { TeamKnowledge } from '../../shared/memory/team-knowledge.js';
import { createRedis } from '../../shared/redis/connection.js';
import { createKeys } from '../../shared/redis/keys.js';
import type { Running } from '../../shared/programs.js';
import { startLocalWorkers } from '../../workers/main.js';
import { BuildJudge, type CheckOutcome, type ProjectTests } from './checks.js';
import type { SuiteGoal } from './suite.js';
import { redisOptions, compileOptions } from '../../shared/options.js';

/**
 * Runs goals one after another on an orchestrator and one worker per role in this process
 * (what `codegod build --local` runs), against the configured LLM endpoint, and judges each
 * build: outcome, the project's own tests, the suite's checks, time, LLM calls and tokens.
 * One goal at a time, so each goal's time is its own.
 */
export interface GoalResult {
  id: string;
  buildId: string | null;
  /** The build's final state, or `timeout` / `error` when it never got one. */
  outcome: string;
  reason: string | null;
  ms: number;
  llmCalls: number;
  promptTokens: number;
  completionTokens: number;
  tasks: { total: number; succeeded: number; failed: number };
  projectTests: ProjectTests;
  checks: CheckOutcome[];
  checksPassed: number;
}

export interface RunnerOptions {
  config: Config;
  logger: Logger;
  /** Limit of one goal when the goal sets none. */
  timeoutSec: number;
  onGoal?: (result: GoalResult) => void;
}

const POLL_MS = 500;

async function waitForEnd(scheduler: Scheduler, buildId: string, deadline: number): Promise<BuildRecord | undefined> {
  for (;;) {
    const build = await scheduler.dag.getBuild(buildId);
    if (TERMINAL_BUILD_STATES.has(build.state)) return build;
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export class SuiteRunner {
  private readonly redis: Redis;
  private readonly scheduler: Scheduler;
  private running: Running[] = [];

  constructor(private readonly opts: RunnerOptions) {
    this.redis = createRedis(redisOptions(opts.config), 'service');
    this.scheduler = new Scheduler(this.redis, createKeys(opts.config.CODEGOD_PREFIX), compileOptions(opts.config).scheduler, opts.logger);
  }

  async start(): Promise<void> {
    this.running.push(await startLocalOrchestrator(this.opts.config, this.opts.logger));
    this.running.push(await startLocalWorkers(this.opts.config, this.opts.logger));
  }

  async run(goals: readonly SuiteGoal[]): Promise<GoalResult[]> {
    const results: GoalResult[] = [];
    for (const goal of goals) {
      const result = await this.runGoal(goal);
      results.push(result);
      this.opts.onGoal?.(result);
    }
    return results;
  }

  private async runGoal(goal: SuiteGoal): Promise<GoalResult> {
    const t0 = Date.now();
    const limitMs = (goal.timeoutSec ?? this.opts.timeoutSec) * 1_000;
    let buildId: string | null = null;
    let build: BuildRecord | undefined;
    let outcome: string;
    let reason: string | null = null;
    try {
      buildId = await this.scheduler.submitGoal({ goal: goal.goal });
      build = await waitForEnd(this.scheduler, buildId, t0 + limitMs);
      if (!build) {
        await this.scheduler.cancel(buildId, `evaluation limit of ${limitMs / 1_000} s reached`).catch(() => undefined);
        build = await this.scheduler.dag.getBuild(buildId);
        outcome = 'timeout';
      } else outcome = build.state;
      reason = build.reason ?? null;
    } catch (err) {
      outcome = 'error';
      reason = errorMessage(err);
    }
    const ms = Date.now() - t0;
    const empty: ProjectTests = { ran: false, passed: false, summary: 'not run: no build' };
    let projectTests = empty;
    let checks: CheckOutcome[] = goal.checks.map((c) => ({ name: c.name, passed: false, detail: 'not run: no build' }));
    if (buildId !== null && build !== undefined && build.total > 0) {
      const knowledge = await new TeamKnowledge(this.redis, this.scheduler.keys).get(buildId);
      const judge = await BuildJudge.open(this.opts.config, buildId, knowledge, this.opts.logger, AbortSignal.timeout(30 * 60_000));
      try {
        projectTests = await judge.projectTests();
        checks = [];
        for (const check of goal.checks) checks.push(await judge.check(check));
      } finally {
        await judge.close();
      }
    }
    return {
      id: goal.id,
      buildId,
      outcome,
      reason,
      ms,
      llmCalls: build?.llmCalls ?? 0,
      promptTokens: build?.promptTokens ?? 0,
      completionTokens: build?.completionTokens ?? 0,
      tasks: { total: build?.total ?? 0, succeeded: build?.succeeded ?? 0, failed: build?.failed ?? 0 },
      projectTests,
      checks,
      checksPassed: checks.filter((c) => c.passed).length,
    };
  }

  async stop(): Promise<void> {
    for (const r of this.running.reverse()) await r.stop().catch(() => undefined);
    this.running = [];
    await this.scheduler.close().catch(() => undefined);
    this.redis.disconnect();
  }
}
