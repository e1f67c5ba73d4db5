import { hostname } from 'node:os';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Scheduler, PendingSuccess } from './scheduler.js';
import type { RoleWorkerOptions } from '../options.js';
import type { AgentPhase, AgentState, AgentStatus } from '../telemetry/agent-status.js';
import { parseControlMessage } from './control.js';
import { errorMessage } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import { crashPoints } from '../process.js';
import { settlesWithin } from '../timeout.js';
import { TaskJobDataSchema } from './queues.js';
import { parseTaskSpec, type StartOutcome } from './dag-store.js';
import type { TaskSpec } from '../domain/plan.js';
import type { Role } from '../domain/roles.js';
import { TaskFailedError, type TaskContext, type TaskExecutor } from './task-executor.js';
import { TaskStopper } from './task-stopper.js';
import { Heartbeat } from '../telemetry/heartbeat.js';
import { TaskDurationMetrics } from '../telemetry/task-metrics.js';

interface ActiveTask {
  buildId: string;
  taskId: string;
  since: number;
  stopper: TaskStopper;
  /** The phase the executor last reported; none yet for a task that reports none. */
  phase?: AgentPhase;
}

/** Decisions taken at the instant a task ends, before its outcome releases or skips anything. */
export interface CompletionHooks {
  /** Runs before a success is recorded (e.g. growing the DAG with follow-ups the result asks for). */
  beforeSuccess?(t: { buildId: string; taskId: string; gen: number; result: unknown }): Promise<void>;
  /** Runs instead of recording a final failure; true when the task was started over. */
  insteadOfFailure?(t: { buildId: string; taskId: string; gen: number; reason: string; agentId: string }): Promise<boolean>;
}

/**
 * The Redis connections a role worker uses. Its owner opens them (long-lived, `service`
 * kind) and closes them after the worker has stopped.
 */
export interface RoleWorkerConnections {
  /** Commands: task state, metrics, heartbeats (the scheduler's connection too). */
  commands: Redis;
  /** Subscribed to cancel notices. */
  subscriber: Redis;
  /** BullMQ's worker. */
  queue: Redis;
}

export interface RoleWorkerSetup {
  options: RoleWorkerOptions;
  role: Role;
  executor: TaskExecutor;
  logger: Logger;
  connections: RoleWorkerConnections;
  scheduler: Scheduler;
  hooks?: CompletionHooks;
}

/** Bounds of a stopping worker's steps after its grace: handing tasks back, and each closing step. */
export const ROLE_WORKER_STOP_MS = { handBack: 10_000, step: 2_000 } as const;

/** Counters of `P:metrics:tasks`, each kept in total and per role. */
const TASK_COUNTERS = ['started', 'succeeded', 'failed', 'retried'] as const;
type TaskCounter = (typeof TASK_COUNTERS)[number];

export type TaskOutcome = { status: 'succeeded' } | { status: 'skipped'; reason: string };

/**
 * The worker process of one role: pulls that role's jobs, runs each task through the
 * executor with a timeout and a cancel signal, records the outcome atomically and releases
 * dependents. Delivery is at-least-once (a job whose worker died runs again after its lock
 * expires); the start script makes a re-delivered finished task a no-op.
 */
export class RoleWorker {
  readonly agentId: string;
  private readonly options: RoleWorkerOptions;
  private readonly role: Role;
  private readonly executor: TaskExecutor;
  private readonly logger: Logger;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly queueConnection: Redis;
  private readonly scheduler: Scheduler;
  private readonly active = new Map<string, ActiveTask>();
  private readonly pendingMetrics = new Map<string, number>();
  /** `<role>:<counter>` field names, made once rather than per task. */
  private readonly roleCounterFields: Record<TaskCounter, string>;
  private readonly durations = new TaskDurationMetrics();
  private readonly crash: (point: string) => void;
  /** The crash point between a success's record and its release, made once. */
  private readonly afterComplete: () => void;
  private readonly hooks: CompletionHooks;
  private worker: Worker | undefined;
  private readonly heartbeat: Heartbeat;
  /** Set once the stop grace is spent: aborted tasks go back to their queue instead of failing. */
  private handingBack = false;
  private readonly startedAt = Date.now();
  private completed = 0;
  private failed = 0;
  private lifecycle: 'running' | 'stopping' | 'offline' = 'running';
  /** How the last task ended when it was not a success: its retry waits, or it failed for good. */
  private lastFailure: { kind: 'backoff'; until: number } | { kind: 'error' } | undefined;
  /** A status write is queued for this turn of the event loop. */
  private publishQueued = false;

  constructor(setup: RoleWorkerSetup) {
    const { options, role } = setup;
    this.options = options;
    this.role = role;
    this.executor = setup.executor;
    this.agentId = options.agentId ?? `${role}-${hostname()}-${process.pid}`;
    this.logger = setup.logger.child({ agentId: this.agentId, role });
    this.redis = setup.connections.commands;
    this.subscriber = setup.connections.subscriber;
    this.queueConnection = setup.connections.queue;
    this.scheduler = setup.scheduler;
    this.crash = crashPoints(options.crashAt);
    this.afterComplete = () => this.crash('after-complete');
    this.roleCounterFields = Object.fromEntries(TASK_COUNTERS.map((c) => [c, `${role}:${c}`])) as Record<TaskCounter, string>;
    this.hooks = setup.hooks ?? {};
    this.heartbeat = new Heartbeat(this.redis, this.scheduler.keys, {
      agentId: this.agentId,
      status: () => this.status(),
      healthFile: options.healthFile,
      onBeat: () => this.onBeat(),
      logger: this.logger,
    });
  }

  async start(): Promise<void> {
    const { options } = this;
    const keys = this.scheduler.keys;
    // The processor takes no third parameter: BullMQ then makes no AbortController per job.
    // Its signal would abort only on Worker.cancelJob, which codegod never calls: cancels and
    // timeouts reach a task through its TaskStopper, whose signal the executor gets, and a
    // graceful shutdown lets running tasks finish.
    this.worker = new Worker(this.role, (job, token) => this.process(job, token), {
      connection: this.queueConnection,
      prefix: keys.queuePrefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount,
      autorun: false,
    });
    this.worker.on('error', (err) => this.logger.warn({ err: errorMessage(err) }, 'queue worker error'));
    await this.subscriber.subscribe(keys.control);
    this.subscriber.on('message', (_channel, raw) => {
      const msg = parseControlMessage(raw);
      if (msg?.type === 'cancel') this.cancelBuild(msg.buildId, msg.reason);
    });
    await this.heartbeat.start(options.heartbeatMs);
    void this.worker.run().catch((err) => this.logger.error({ err: errorMessage(err) }, 'worker stopped'));
    this.logger.info({ concurrency: options.concurrency, queue: this.role }, 'worker started');
  }

  /**
   * One attempt of one task (the BullMQ processor).
   *
   * A re-delivered job (its worker died, or the reconciler re-added it) first asks Redis
   * whether the task may run — it may be done already. A first delivery cannot find its task
   * done (a task is released to its queue once per generation), so it starts the executor at
   * once with the spec the job carries and records the start on the next turn of the event
   * loop; a task that finishes before then records start and success in one step. Either way
   * the start check runs, and a "no" aborts the executor.
   */
  private async process(job: Job, token: string | undefined): Promise<TaskOutcome> {
    const data = TaskJobDataSchema.safeParse(job.data);
    if (!data.success) throw new UnrecoverableError(`malformed job data: ${data.error.issues[0]?.message ?? 'invalid'}`);
    const { buildId, taskId, gen } = data.data;
    const dag = this.scheduler.dag;
    const skipped = (reason: string): TaskOutcome => {
      this.logger.debug({ buildId, taskId, reason }, 'task skipped');
      return { status: 'skipped', reason };
    };
    const carried = job.attemptsStarted <= 1 && !data.data.recovered && data.data.spec ? parseTaskSpec(data.data.spec) : undefined;
    let spec: TaskSpec;
    let attempt = 1;
    let started: Promise<StartOutcome> | undefined;
    if (carried?.ok) spec = carried.spec;
    else {
      started = dag.startTask(buildId, taskId, gen, this.agentId);
      const start = await started;
      if (start.kind === 'skip') return skipped(start.reason);
      spec = start.spec;
      attempt = start.attempt;
    }
    // The child logger is made only when someone logs: thousands of no-op tasks a second
    // should not each pay for one.
    let child: Logger | undefined;
    const log = () => (child ??= this.logger.child({ buildId, taskId }));
    this.metric('started');
    const stopper = new TaskStopper();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stopper.stop(`timed out after ${this.options.taskTimeoutMs} ms`);
    }, this.options.taskTimeoutMs);
    const startedAt = Date.now();
    const recordStart = (): Promise<StartOutcome> =>
      (started ??= dag.startTask(buildId, taskId, gen, this.agentId).then((outcome) => {
        if (outcome.kind === 'skip') stopper.stop(`skipped: ${outcome.reason}`);
        return outcome;
      }));
    const deferred = started ? undefined : setImmediate(() => void recordStart().catch((err) => log().warn({ err: errorMessage(err) }, 'could not record the start')));
    const active: ActiveTask = { buildId, taskId, since: startedAt, stopper };
    this.active.set(job.id!, active);
    try {
      let result: unknown;
      try {
        const ctx: TaskContext = {
          buildId,
          taskId,
          spec,
          role: this.role,
          gen,
          attempt,
          agentId: this.agentId,
          get signal() {
            return stopper.signal;
          },
          get logger() {
            return log();
          },
          setPhase: (phase) => {
            if (active.phase === phase) return;
            active.phase = phase;
            this.publishSoon();
          },
        };
        result = await stopper.race(() => this.executor.execute(ctx));
      } catch (err) {
        clearImmediate(deferred);
        if (this.handingBack && stopper.stopped && !timedOut) {
          // The worker is stopping and its grace is spent: the task goes back to its queue as
          // it is (its checkpoint lets the next worker resume), costing no attempt.
          log().info('worker stopping; task handed back');
          await job.moveToWait(token);
          throw new WaitingError();
        }
        const start = await recordStart();
        if (start.kind === 'skip') return skipped(start.reason);
        const cancelled = stopper.stopped && !timedOut;
        const reason = timedOut ? String(stopper.reason) : cancelled ? `cancelled: ${String(stopper.reason ?? '')}` : errorMessage(err);
        return await this.recordFailure(job, { buildId, taskId, gen }, reason, err, cancelled, Date.now() - startedAt);
      }
      this.crash('before-complete');
      await this.hooks.beforeSuccess?.({ buildId, taskId, gen, result });
      clearImmediate(deferred);
      if (started) {
        const start = await started;
        if (start.kind === 'skip') return skipped(start.reason);
      }
      const entry: PendingSuccess = { taskId, gen, workerId: this.agentId, result, beforeRelease: this.afterComplete };
      if (!started) entry.startedAt = startedAt;
      const outcome = await this.scheduler.taskSucceeded(buildId, entry);
      if (outcome.kind === 'skip') return skipped(outcome.reason);
      this.completed++;
      this.lastFailure = undefined;
      this.metric('succeeded');
      this.durations.observe(this.role, 'succeeded', Date.now() - startedAt);
      this.logger.info({ buildId, taskId, attempt }, 'task succeeded');
      return { status: 'succeeded' };
    } finally {
      clearTimeout(timer);
      this.active.delete(job.id!);
      // An executor that reports phases is watched live: its end shows at once too.
      if (active.phase !== undefined) this.publishSoon();
    }
  }

  /**
   * A failed attempt: retried by BullMQ while attempts remain, else recorded as the task's
   * failure (which skips its dependents). Cancellation is never retried.
   */
  private async recordFailure(
    job: Job,
    t: { buildId: string; taskId: string; gen: number },
    reason: string,
    err: unknown,
    cancelled: boolean,
    ms: number,
  ): Promise<never> {
    const retryable = !cancelled && !(err instanceof TaskFailedError && !err.retryable);
    const final = !retryable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    const log = this.logger.child({ buildId: t.buildId, taskId: t.taskId });
    if (final) {
      if (!cancelled && (await this.hooks.insteadOfFailure?.({ ...t, reason, agentId: this.agentId }))) {
        this.durations.observe(this.role, 'retried', ms);
        throw new UnrecoverableError(`re-planned after: ${reason}`);
      }
      if (!cancelled) {
        await this.scheduler.taskFailed(t.buildId, t.taskId, t.gen, reason);
        this.failed++;
        this.lastFailure = { kind: 'error' };
        this.metric('failed');
      }
      this.durations.observe(this.role, cancelled ? 'cancelled' : 'failed', ms);
      log.warn({ reason, attempt: job.attemptsMade + 1 }, cancelled ? 'task cancelled' : 'task failed for good');
      throw new UnrecoverableError(reason);
    }
    log.warn({ reason, attempt: job.attemptsMade + 1 }, 'task attempt failed; will retry');
    // BullMQ's exponential backoff: the base delay doubled for every attempt made before this one.
    this.lastFailure = { kind: 'backoff', until: Date.now() + this.options.taskBackoffMs * 2 ** job.attemptsMade };
    this.metric('retried');
    this.durations.observe(this.role, 'retried', ms);
    throw new Error(reason);
  }

  private cancelBuild(buildId: string, reason: string): void {
    for (const t of this.active.values()) {
      if (t.buildId === buildId && !t.stopper.stopped) {
        this.logger.info({ buildId, taskId: t.taskId }, 'aborting task of a cancelled build');
        t.stopper.stop(reason);
      }
    }
  }

  /** Counted in memory and flushed with each heartbeat: no Redis round trip per task. */
  private metric(name: TaskCounter): void {
    this.pendingMetrics.set(name, (this.pendingMetrics.get(name) ?? 0) + 1);
    const perRole = this.roleCounterFields[name];
    this.pendingMetrics.set(perRole, (this.pendingMetrics.get(perRole) ?? 0) + 1);
  }

  private async flushMetrics(): Promise<void> {
    if (this.pendingMetrics.size === 0 && this.durations.empty) return;
    const batch = [...this.pendingMetrics];
    this.pendingMetrics.clear();
    const multi = this.redis.multi();
    for (const [field, n] of batch) multi.hincrby(this.scheduler.keys.metricsTasks, field, n);
    const durations = this.durations.flush(multi, this.scheduler.keys);
    try {
      await multi.exec();
    } catch (err) {
      for (const [field, n] of batch) this.pendingMetrics.set(field, (this.pendingMetrics.get(field) ?? 0) + n);
      this.durations.restore(durations);
      throw err;
    }
  }

  /** See AGENT_STATES: the lifecycle, else the oldest task's phase, else how the last task ended. */
  private state(now: number): AgentState {
    if (this.lifecycle !== 'running') return this.lifecycle;
    const [oldest] = this.active.values();
    if (oldest) return oldest.phase ?? 'acting';
    if (this.lastFailure?.kind === 'backoff' && now < this.lastFailure.until) return 'backoff';
    if (this.lastFailure?.kind === 'error') return 'error';
    return 'idle';
  }

  private status(): AgentStatus {
    const now = Date.now();
    const currentTasks = [...this.active.values()].map((t) => ({ buildId: t.buildId, taskId: t.taskId, since: t.since, ...(t.phase ? { phase: t.phase } : {}) }));
    return {
      agentId: this.agentId,
      role: this.role,
      state: this.state(now),
      currentTasks,
      heartbeat: now,
      startedAt: this.startedAt,
      tasksCompleted: this.completed,
      tasksFailed: this.failed,
      concurrency: this.options.concurrency,
      pid: process.pid,
      host: hostname(),
    };
  }

  /**
   * Publishes the status once this turn of the event loop is over, so phase changes show live
   * (not only at the next heartbeat) and several in one turn cost one write.
   */
  private publishSoon(): void {
    if (this.publishQueued) return;
    this.publishQueued = true;
    setImmediate(() => {
      this.publishQueued = false;
      if (this.lifecycle === 'offline') return;
      this.heartbeat.publish().catch((err: unknown) => {
        this.logger.warn({ err: errorMessage(err) }, 'could not publish the agent status');
      });
    });
  }

  /**
   * On every heartbeat, after the status is published: counters are flushed, and tasks whose
   * build was cancelled while the cancel notice was missed (pub/sub is fire-and-forget) are aborted.
   */
  private async onBeat(): Promise<void> {
    await this.flushMetrics();
    const builds = new Set([...this.active.values()].map((t) => t.buildId));
    for (const buildId of builds) {
      const state = await this.redis.hget(this.scheduler.keys.build(buildId), 'state');
      if (state === 'cancelled') this.cancelBuild(buildId, 'build cancelled');
    }
  }

  /**
   * Graceful stop: take no new jobs and let running tasks finish (BullMQ waits for them) for
   * up to `graceMs` (CODEGOD_STOP_GRACE_MS); tasks still running then are aborted and handed
   * back to their queue, where another worker resumes them from their checkpoint. The agent
   * is then marked offline. Every step that needs Redis is bounded, so a worker stops in its
   * grace period (plus ROLE_WORKER_STOP_MS) whatever Redis is doing; a task it could not hand
   * back is re-delivered once its lock expires. The executor, scheduler and connections it
   * was given stay open: their owner closes them after this.
   */
  async close(graceMs = this.options.stopGraceMs): Promise<void> {
    this.lifecycle = 'stopping';
    await settlesWithin(this.heartbeat.stop().then(() => this.heartbeat.publish()), ROLE_WORKER_STOP_MS.step);
    const drained = this.worker?.close() ?? Promise.resolve();
    if (!(await settlesWithin(drained, graceMs))) {
      this.handingBack = true;
      for (const t of this.active.values()) t.stopper.stop('worker stopping');
      if (!(await settlesWithin(drained, ROLE_WORKER_STOP_MS.handBack))) this.logger.warn('tasks not handed back in time; they re-run once their lock expires');
    }
    await settlesWithin(this.flushMetrics(), ROLE_WORKER_STOP_MS.step);
    this.lifecycle = 'offline';
    await settlesWithin(this.heartbeat.publish(), ROLE_WORKER_STOP_MS.step);
    this.logger.info('worker stopped');
  }
}
