import { hostname } from 'node:os';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AgentStatus } from '../shared/telemetry/agent-status.js';
import { errorMessage, NotFoundError } from '../shared/domain/errors.js';
import { Heartbeat } from '../shared/telemetry/heartbeat.js';
import type { Logger } from '../shared/logger.js';
import type { OrchestratorOptions } from '../shared/options.js';
import { GOALS_QUEUE, GoalJobDataSchema } from '../shared/engine/queues.js';
import { settlesWithin } from '../shared/timeout.js';
import type { HttpServer } from './http/server.js';
import { planningFailureCode, type Planner } from './planner.js';
import type { Reconciler } from '../shared/engine/reconciler.js';
import type { Retention } from '../shared/engine/retention.js';
import type { Scheduler } from '../shared/engine/scheduler.js';

/**
 * How a stopping orchestrator spends its time, well under the 10 s it is given: goals being
 * planned get `drainMs` to finish, then are handed back to the queue (another orchestrator,
 * or this one's successor, plans them at once); what is left to close gets `cleanupMs`.
 * Past that, connections are dropped whatever Redis is doing.
 */
export const ORCHESTRATOR_STOP_MS = { drain: 3_000, handBack: 2_000, cleanup: 2_000 } as const;

/** What an orchestrator runs on, made and closed by `openOrchestrator`. */
export interface OrchestratorSetup {
  options: OrchestratorOptions;
  logger: Logger;
  /** Commands: build records, planning notes, the heartbeat. */
  redis: Redis;
  /** The goals worker's own connection (BullMQ blocks on it). */
  queueConnection: Redis;
  scheduler: Scheduler;
  reconciler: Reconciler;
  retention: Retention;
  planner: Planner;
  /** Starts the dashboard and API. */
  startHttp: () => Promise<HttpServer>;
}

/**
 * The master orchestrator process: it consumes the goals queue (goal → plan → running DAG),
 * serves the dashboard and API, runs the reconciler and applies the retention policy. It
 * holds no state of its own: builds live in Redis, so any number of orchestrators may run and
 * any of them may die; a goal job whose orchestrator died is planned again by another, and
 * the reconciler repairs what a crash left half-done.
 */
export class OrchestratorService {
  readonly scheduler: Scheduler;
  readonly reconciler: Reconciler;
  readonly retention: Retention;
  readonly agentId: string;
  private readonly options: OrchestratorOptions;
  private readonly logger: Logger;
  private readonly redis: Redis;
  private readonly queueConnection: Redis;
  private readonly planner: Planner;
  private readonly startHttp: () => Promise<HttpServer>;
  private goals: Worker | undefined;
  private http: HttpServer | undefined;
  private readonly heartbeat: Heartbeat;
  private readonly planning = new Map<string, number>();
  private readonly startedAt = Date.now();
  private planned = 0;
  private failed = 0;

  constructor(setup: OrchestratorSetup) {
    this.agentId = `master-${hostname()}-${process.pid}`;
    this.options = setup.options;
    this.logger = setup.logger;
    this.redis = setup.redis;
    this.queueConnection = setup.queueConnection;
    this.scheduler = setup.scheduler;
    this.reconciler = setup.reconciler;
    this.retention = setup.retention;
    this.planner = setup.planner;
    this.startHttp = setup.startHttp;
    this.heartbeat = new Heartbeat(this.redis, this.scheduler.keys, {
      agentId: this.agentId,
      status: () => this.status(),
      healthFile: this.options.healthFile,
      logger: this.logger,
    });
  }

  /** Where the dashboard and API answer, once started. */
  get httpUrl(): string | undefined {
    return this.http?.url;
  }

  async start(): Promise<void> {
    const { options } = this;
    // First: a port that is taken ends the start before any goal is taken.
    this.http = await this.startHttp();
    this.goals = new Worker(GOALS_QUEUE, (job, token, signal) => this.plan(job, token, signal), {
      connection: this.queueConnection,
      prefix: this.scheduler.keys.queuePrefix,
      concurrency: 4,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount,
    });
    this.goals.on('error', (err) => this.logger.warn({ err: errorMessage(err) }, 'goals worker error'));
    this.reconciler.start(options.reconcileIntervalMs);
    this.retention.start({
      retentionMs: options.retentionMs,
      agentExpiryMs: options.agentExpiryMs,
      intervalMs: options.retentionIntervalMs,
    });
    await this.heartbeat.start(options.heartbeatMs);
    this.logger.info({ agentId: this.agentId, reconcileEveryMs: options.reconcileIntervalMs }, 'orchestrator started');
  }

  /**
   * Plans one submitted goal. An unreachable LLM is retried by the queue (with backoff);
   * an invalid plan after the re-asks, an unknown model or a spent budget fail the build with
   * a failure code the CLI turns into its exit code.
   */
  private async plan(job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    const data = GoalJobDataSchema.safeParse(job.data);
    if (!data.success) throw new UnrecoverableError('malformed goal job data');
    const { buildId } = data.data;
    const log = this.logger.child({ buildId });
    const { dag } = this.scheduler;
    let build;
    try {
      build = await dag.getBuild(buildId);
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    if (build.state !== 'planning') return;
    this.planning.set(buildId, Date.now());
    try {
      await dag.note(buildId, 'build.planning', { data: `attempt ${job.attemptsMade + 1}` });
      const outcome = await this.planner.plan({
        buildId,
        goal: build.goal,
        maxTasks: build.maxTasks,
        model: build.model,
        ...(signal ? { signal } : {}),
        onReject: async (problems, attempt) => {
          log.warn({ attempt, problems }, 'plan rejected; asking again');
          await this.redis.hincrby(this.scheduler.keys.build(buildId), 'planAttempts', 1);
          await dag.note(buildId, 'build.planning', { data: `plan ${attempt} rejected`, reason: problems.join('; ').slice(0, 2_000) });
        },
      });
      await dag.note(buildId, 'build.planned', { data: JSON.stringify(outcome.plan) });
      await this.scheduler.createBuild({ buildId, goal: build.goal, plan: outcome.plan, maxTasks: build.maxTasks });
      this.planned++;
      log.info({ tasks: outcome.plan.tasks.length, attempts: outcome.attempts }, 'goal planned');
    } catch (err) {
      if (signal?.aborted) {
        // Stopping: the goal goes back to the queue as it was, costing no attempt.
        log.info('orchestrator stopping; goal handed back');
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const code = planningFailureCode(err);
      const attemptsLeft = job.attemptsMade + 1 < (job.opts.attempts ?? 1);
      if (code === 'LLM_UNREACHABLE' && attemptsLeft) {
        log.warn({ err: errorMessage(err) }, 'planning failed; the goal will be retried');
        throw err;
      }
      this.failed++;
      log.warn({ err: errorMessage(err), code }, 'planning failed; the build fails');
      await this.scheduler.cancel(buildId, errorMessage(err), 'failed', code).catch(() => undefined);
      throw new UnrecoverableError(errorMessage(err));
    } finally {
      this.planning.delete(buildId);
    }
  }

  private status(): AgentStatus {
    const now = Date.now();
    const currentTasks = [...this.planning].map(([buildId, since]) => ({ buildId, taskId: 'plan', since, phase: 'planning' as const }));
    return {
      agentId: this.agentId,
      role: 'master',
      state: this.planning.size > 0 ? 'planning' : 'idle',
      currentTasks,
      heartbeat: now,
      startedAt: this.startedAt,
      tasksCompleted: this.planned,
      tasksFailed: this.failed,
      concurrency: 4,
      pid: process.pid,
      host: hostname(),
    };
  }

  /**
   * Takes no new goal, lets the goals in hand finish or hands them back, and stops its own
   * work — in bounded time whatever Redis is doing (ORCHESTRATOR_STOP_MS): every step is
   * raced against its budget. `release` closes what the goals used (the scheduler) once no
   * goal is in hand, within the same cleanup budget. Whether the cleanup finished in time:
   * if not, the caller drops its connections rather than waiting on them.
   */
  async stop(release: () => Promise<unknown> = async () => undefined): Promise<boolean> {
    const heartbeat = this.heartbeat.stop();
    const http = this.http?.close();
    const reconciler = Promise.all([this.reconciler.stop(), this.retention.stop()]);
    const goals = this.goals?.close();
    if (goals && !(await settlesWithin(goals, ORCHESTRATOR_STOP_MS.drain))) {
      this.goals!.cancelAllJobs('orchestrator stopping');
      if (!(await settlesWithin(goals, ORCHESTRATOR_STOP_MS.handBack))) this.logger.warn('goals in hand not handed back in time; they are planned again once their lock expires');
    }
    const cleanup = Promise.all([
      heartbeat,
      http,
      reconciler,
      this.redis.hdel(this.scheduler.keys.agentsStatus, this.agentId).catch(() => 0),
      release().catch(() => undefined),
    ]);
    return settlesWithin(cleanup, ORCHESTRATOR_STOP_MS.cleanup);
  }
}
