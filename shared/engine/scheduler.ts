import type { Redis } from 'ioredis';
import type { SchedulerOptions } from '../options.js';
import { DagStore, newBuildId, type Completion, type CompletionEntry, type GrowRequest, type TaskCompletion } from './dag-store.js';
import { CompletionBatcher } from './completion-batcher.js';
import { CodegodError, errorMessage, isRedisFull, RedisFullError } from '../domain/errors.js';
import { createReport } from './report.js';
import type { Keys } from '../redis/keys.js';
import type { Logger } from '../logger.js';
import type { Plan } from '../domain/plan.js';
import { GOALS_QUEUE, TaskQueues, taskJobId, type ReadyTask } from './queues.js';
import { validateGoal } from '../domain/goal.js';
import { ControlMessageSchema, type ControlMessage } from './control.js';

/** A success waiting for its batch, with the caller's hook to run between record and release. */
export type PendingSuccess = CompletionEntry & { beforeRelease?: () => void };

/**
 * Turns DAG transitions into BullMQ jobs. Every transition is one Lua script (dag-store.ts);
 * the jobs it releases are added right after with deterministic ids. A crash between the two
 * leaves tasks `queued` without a job, which the reconciler re-adds — so nothing is lost, and
 * the ids make the re-add harmless if the job was in fact added.
 */
export class Scheduler {
  readonly dag: DagStore;
  readonly queues: TaskQueues;
  private readonly completions = new CompletionBatcher((buildId: string, entries: PendingSuccess[]) => this.recordSuccesses(buildId, entries));

  constructor(
    private readonly redis: Redis,
    readonly keys: Keys,
    readonly options: SchedulerOptions,
    private readonly logger: Logger,
  ) {
    this.dag = new DagStore(redis, keys, options.eventsMaxLen);
    this.queues = new TaskQueues(redis, keys, options.jobs);
  }

  /**
   * Accepts a user's goal: validates it, stores the build in the `planning` state and queues
   * the goal for the orchestrator. Returns the build id at once; the build's event stream
   * tells the rest.
   */
  async submitGoal(input: { goal: string; maxTasks?: number; budgetTokens?: number; model?: string }): Promise<string> {
    const goal = validateGoal(input.goal, this.options.maxGoalChars);
    const buildId = newBuildId();
    try {
      await this.dag.submitBuild({
        buildId,
        goal,
        maxTasks: input.maxTasks ?? this.options.maxTasksPerBuild,
        budgetTokens: input.budgetTokens ?? 0,
        ...(input.model ? { model: input.model } : {}),
      });
      await this.queues.enqueueGoal(buildId);
    } catch (err) {
      // A full Redis takes no new build; the reconciler retires what half-made it in.
      if (isRedisFull(err)) throw new RedisFullError(err);
      throw err;
    }
    this.logger.info({ buildId }, 'goal submitted');
    return buildId;
  }

  /** Stores a validated plan as a build and enqueues its roots. */
  async createBuild(input: { goal: string; plan: Plan; buildId?: string; maxTasks?: number }): Promise<string> {
    const buildId = input.buildId ?? newBuildId();
    const ready = await this.dag.createBuild({
      buildId,
      goal: input.goal,
      plan: input.plan,
      maxTasks: input.maxTasks ?? this.options.maxTasksPerBuild,
    });
    await this.queues.enqueue(buildId, ready);
    this.logger.info({ buildId, tasks: input.plan.tasks.length, roots: ready.length }, 'build created');
    return buildId;
  }

  /**
   * Records a task's success, enqueues the dependents it made ready and retires the build if
   * it ended. Resolves once all that is done. Successes reported in the same turn of the
   * event loop are recorded together (CompletionBatcher); the entry's `beforeRelease` runs
   * between the record and the enqueue (a crash point for tests).
   */
  taskSucceeded(buildId: string, entry: PendingSuccess): Promise<TaskCompletion> {
    return this.completions.add(buildId, entry);
  }

  private async recordSuccesses(buildId: string, entries: PendingSuccess[]): Promise<TaskCompletion[]> {
    const batch = await this.dag.completeTasks(buildId, entries);
    for (const e of entries) e.beforeRelease?.();
    await this.queues.enqueue(buildId, batch.ready);
    if (batch.finished) await this.retire(buildId);
    return batch.outcomes;
  }

  async taskFailed(buildId: string, taskId: string, gen: number | string, error: string): Promise<Completion> {
    const completion = await this.dag.failTask(buildId, taskId, gen, error);
    if (completion.finished) await this.retire(buildId);
    if (completion.applied) this.logger.warn({ buildId, taskId, error }, 'task failed');
    return completion;
  }

  /**
   * Cancels a running build: open tasks become cancelled in one script (so nothing more is
   * released), waiting jobs are removed, and workers running its tasks are told to abort.
   * Workers also notice the cancelled state on their next heartbeat, should the notice be
   * missed.
   */
  async cancel(buildId: string, reason = 'cancelled by user', final: 'cancelled' | 'failed' = 'cancelled', failureCode = ''): Promise<void> {
    const withJobs = await this.dag.cancelBuild(buildId, reason, final, failureCode);
    await this.retire(buildId);
    await this.queues.get(GOALS_QUEUE).remove(buildId).catch(() => 0);
    await Promise.all(
      withJobs
        .filter((t) => t.previous === 'queued')
        .map((t) => this.queues.get(t.role).remove(taskJobId(buildId, t.taskId, t.gen)).catch(() => 0)),
    );
    const notice: ControlMessage = { type: 'cancel', buildId, reason };
    await this.redis.publish(this.keys.control, JSON.stringify(ControlMessageSchema.parse(notice)));
    this.logger.info({ buildId, reason, final, running: withJobs.filter((t) => t.previous === 'running').length }, 'build stopped');
  }

  /** Retries one failed task, or every failed task of the build when `taskId` is omitted. */
  async retry(buildId: string, taskId?: string): Promise<string[]> {
    let ids: string[];
    if (taskId) ids = [taskId];
    else {
      const states = await this.dag.getTaskStates(buildId);
      ids = [...states].filter(([, s]) => s === 'failed').map(([id]) => id);
      if (ids.length === 0) throw new CodegodError('BUILD_STATE', `build ${buildId} has no failed task to retry`);
    }
    const ready: ReadyTask[] = [];
    for (const id of ids) ready.push(await this.dag.retryTask(buildId, id));
    await this.redis.sadd(this.keys.activeBuilds, buildId);
    await this.queues.enqueue(buildId, ready);
    this.logger.info({ buildId, tasks: ids }, 'tasks retried');
    return ids;
  }

  async grow(buildId: string, request: GrowRequest): Promise<ReadyTask[]> {
    const ready = await this.dag.growBuild(buildId, request);
    await this.queues.enqueue(buildId, ready);
    this.logger.info({ buildId, added: request.tasks.map((t) => t.spec.id) }, 'build grown');
    return ready;
  }

  /**
   * An ended build leaves the active index and gets its report (stored on the build and
   * appended to its stream, where the CLI waits for it). A report that cannot be made is
   * logged; the build's outcome stands either way.
   */
  private async retire(buildId: string): Promise<void> {
    await this.dag.markInactive(buildId);
    try {
      const report = JSON.stringify(await createReport(this.redis, this.keys, this.dag, buildId));
      await this.redis.hset(this.keys.build(buildId), 'report', report);
      await this.dag.note(buildId, 'build.report', { data: report });
    } catch (err) {
      this.logger.warn({ buildId, err: errorMessage(err) }, 'could not write the build report');
    }
  }

  async close(): Promise<void> {
    await this.queues.close();
  }
}
