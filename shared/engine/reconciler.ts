import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { CodegodError, DataCorruptError, errorMessage, NotFoundError } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import { GOALS_QUEUE, taskJobId, type QueueName, type ReadyTask } from './queues.js';
import { RoleSchema } from '../domain/roles.js';
import { Periodic } from '../periodic.js';
import type { Scheduler } from './scheduler.js';

/** Jobs read from BullMQ at once. */
const JOB_READ_BATCH = 500;
const UNREADABLE = Symbol('unreadable job');
/** A job hash whose JSON fields do not parse reads as UNREADABLE; any other error (Redis gone) stands. */
function unreadable(err: unknown): typeof UNREADABLE {
  if (err instanceof SyntaxError) return UNREADABLE;
  throw err;
}

export interface ReconcileReport {
  builds: number;
  /** Tasks queued or running whose job had vanished, added again. */
  requeued: number;
  /** Tasks whose job BullMQ gave up on (e.g. stalled too often), recorded as failures. */
  failedFromJobs: number;
  /** Ended or unknown builds dropped from the active index. */
  retired: number;
  /** Builds or tasks failed because their data in Redis was malformed. */
  corrupt: number;
}

/**
 * Repairs what a crash can leave behind. Every transition is atomic, but the job add that
 * follows it is a second step; the reconciler closes that gap (tasks `queued` or `running`
 * with no job are re-added under the same id) and turns jobs that BullMQ failed for good
 * without our processor seeing it (stalled past maxStalledCount) into task failures. It is
 * idempotent, so any number of orchestrators may run it at once.
 */
export class Reconciler {
  private periodic: Periodic | undefined;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly redis: Redis,
    private readonly logger: Logger,
  ) {}

  async reconcileOnce(): Promise<ReconcileReport> {
    const report: ReconcileReport = { builds: 0, requeued: 0, failedFromJobs: 0, retired: 0, corrupt: 0 };
    for (const buildId of await this.scheduler.dag.activeBuilds()) {
      report.builds++;
      try {
        await this.reconcileBuild(buildId, report);
      } catch (err) {
        if (err instanceof DataCorruptError) {
          report.corrupt++;
          await this.failCorruptBuild(buildId, err.message);
        } else if (!(err instanceof NotFoundError)) {
          this.logger.error({ buildId, err: errorMessage(err) }, 'reconcile failed for build');
        }
      }
    }
    if (report.requeued || report.failedFromJobs || report.corrupt) this.logger.warn(report, 'reconciler repaired builds');
    return report;
  }

  private async reconcileBuild(buildId: string, report: ReconcileReport): Promise<void> {
    const { dag, queues, keys } = this.scheduler;
    let build;
    try {
      build = await dag.getBuild(buildId);
    } catch (err) {
      if (err instanceof NotFoundError) {
        await dag.markInactive(buildId);
        report.retired++;
        return;
      }
      throw err;
    }
    if (build.state === 'planning') {
      // A submitted goal whose job vanished (a crash between the two writes, or a Redis
      // restart) is queued again; the build id is the job id, so this is idempotent. A goal
      // job BullMQ gave up on without the orchestrator seeing it (stalled too often) fails
      // the build instead of leaving it planning for ever.
      const [job] = await this.jobsOf([[GOALS_QUEUE, buildId]]);
      if (job === undefined) {
        await queues.enqueueGoal(buildId);
        report.requeued++;
      } else if (job !== UNREADABLE && job.failedReason !== undefined && (await job.getState()) === 'failed') {
        await this.scheduler.cancel(buildId, `planning failed for good: ${job.failedReason}`, 'failed', 'PLANNING_FAILED');
        report.failedFromJobs++;
      }
      return;
    }
    if (build.state !== 'running') {
      await dag.markInactive(buildId);
      report.retired++;
      return;
    }
    const states = await dag.getTaskStates(buildId);
    const open = [...states].filter(([, s]) => s === 'queued' || s === 'running').map(([id]) => id);
    if (open.length === 0) return;

    const pipe = this.redis.pipeline();
    for (const id of open) pipe.hmget(keys.task(buildId, id), 'role', 'gen', 'spec');
    const rows = (await pipe.exec()) ?? [];
    const candidates: ReadyTask[] = [];
    for (const [i, id] of open.entries()) {
      const [role, gen, spec] = (rows[i]?.[1] ?? []) as Array<string | null>;
      const parsedRole = RoleSchema.safeParse(role);
      const parsedGen = Number(gen);
      if (!parsedRole.success || gen === null || !Number.isInteger(parsedGen) || parsedGen < 0) {
        report.corrupt++;
        await this.scheduler.taskFailed(buildId, id, gen ?? '', `malformed data in Redis at ${keys.task(buildId, id)}: role or gen invalid`);
        continue;
      }
      candidates.push({ taskId: id, role: parsedRole.data, gen: parsedGen, spec: spec ?? '' });
    }

    const jobs = await this.jobsOf(candidates.map((t) => [t.role, taskJobId(buildId, t.taskId, t.gen)]));
    const missing: ReadyTask[] = [];
    for (const [i, t] of candidates.entries()) {
      const job = jobs[i];
      if (job === undefined) {
        missing.push(t);
      } else if (job !== UNREADABLE && job.failedReason !== undefined && job.finishedOn !== undefined && (await job.getState()) === 'failed') {
        const done = await this.scheduler.taskFailed(buildId, t.taskId, t.gen, `job failed for good: ${job.failedReason}`);
        if (done.applied) report.failedFromJobs++;
      }
    }
    if (missing.length === 0) return;
    // Re-read: a task may have finished between the scan and now; only still-open ones go back.
    const fresh = await dag.getTaskStates(buildId);
    const requeue = missing.filter((t) => ['queued', 'running'].includes(fresh.get(t.taskId) ?? ''));
    await queues.enqueue(buildId, requeue, { recovered: true });
    report.requeued += requeue.length;
    if (requeue.length) this.logger.warn({ buildId, tasks: requeue.map((t) => t.taskId) }, 're-enqueued tasks that had no job');
  }

  /**
   * The jobs of these (queue, job id) pairs, through BullMQ's API; undefined where there is
   * none. A batch's reads go out together (ioredis pipelines what is sent in one turn), so a
   * build of thousands of open tasks costs a few round trips. A job whose hash BullMQ cannot
   * parse is its workers' to fail (they refuse malformed job data); here it counts as present.
   */
  private async jobsOf(refs: ReadonlyArray<readonly [QueueName, string]>): Promise<Array<Job | typeof UNREADABLE | undefined>> {
    const { queues } = this.scheduler;
    const out: Array<Job | typeof UNREADABLE | undefined> = [];
    for (let i = 0; i < refs.length; i += JOB_READ_BATCH) {
      const batch = refs.slice(i, i + JOB_READ_BATCH);
      out.push(...(await Promise.all(batch.map(([queue, id]) => queues.get(queue).getJob(id).catch(unreadable)))));
    }
    return out;
  }

  /** A build whose own record is malformed cannot run: end it failed with the reason. */
  private async failCorruptBuild(buildId: string, reason: string): Promise<void> {
    this.logger.error({ buildId, reason }, 'build data is malformed; failing the build');
    await this.scheduler.dag.failCorruptBuild(buildId, reason);
  }

  /** Runs now, then every `intervalMs`; overlapping runs are skipped. */
  start(intervalMs: number): void {
    this.periodic = new Periodic(() =>
      this.reconcileOnce().catch((err) => {
        if (!(err instanceof CodegodError)) this.logger.error({ err: errorMessage(err) }, 'reconcile pass failed');
      }),
    );
    this.periodic.start(intervalMs);
  }

  async stop(): Promise<void> {
    await this.periodic?.stop();
  }
}
