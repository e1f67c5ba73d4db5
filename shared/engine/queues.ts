import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { JobOptions } from '../options.js';
import type { Keys } from '../redis/keys.js';
import { ROLES, type Role } from '../domain/roles.js';

/**
 * One BullMQ queue per role, plus `goals` for the orchestrator. Job ids are deterministic —
 * `<build>.<task>.<generation>` — so adding the same task twice (a reconciler racing a
 * worker, a retried release) is a no-op in BullMQ, and a retried task (next generation) gets
 * a fresh job. BullMQ ids may not contain ':' nor be all digits; ours never are.
 */
export const GOALS_QUEUE = 'goals';
export type QueueName = Role | typeof GOALS_QUEUE;
export const ALL_QUEUES: readonly QueueName[] = [GOALS_QUEUE, ...ROLES];

export const TaskJobDataSchema = z.object({
  buildId: z.string().min(1),
  taskId: z.string().min(1),
  gen: z.number().int().min(0),
  /** The task spec as stored at release (JSON), so a first delivery needs no read to start. */
  spec: z.string().optional(),
  /** Re-added by the reconciler: the worker must check the task's state before running it. */
  recovered: z.boolean().optional(),
});
export type TaskJobData = z.infer<typeof TaskJobDataSchema>;

/** The goals queue's job: a submitted build waiting for its plan (job id = build id). */
export const GoalJobDataSchema = z.object({ buildId: z.string().min(1) });
export type GoalJobData = z.infer<typeof GoalJobDataSchema>;

function goalJobOptions(options: JobOptions): JobsOptions {
  return { ...taskJobOptions(options), attempts: 3 };
}

/** A task released into its queue: what is needed to build its job. */
export interface ReadyTask {
  taskId: string;
  role: Role;
  gen: number;
  /** The spec JSON as stored in the task record. */
  spec: string;
}

export function taskJobId(buildId: string, taskId: string, gen: number): string {
  return `${buildId}.${taskId}.${gen}`;
}

export function taskJobOptions(options: JobOptions): JobsOptions {
  return {
    attempts: options.taskAttempts,
    backoff: { type: 'exponential', delay: options.backoffMs },
    removeOnComplete: { count: options.keepCompleted },
    removeOnFail: { count: options.keepFailed },
  };
}

/** Lazily opened queues sharing one connection; `enqueue` adds ready tasks to their role queues. */
export class TaskQueues {
  private readonly queues = new Map<QueueName, Queue>();
  private readonly jobOptions: JobsOptions;
  private readonly goalJobOptions: JobsOptions;

  constructor(
    private readonly connection: Redis,
    private readonly keys: Keys,
    options: JobOptions,
  ) {
    this.jobOptions = taskJobOptions(options);
    this.goalJobOptions = goalJobOptions(options);
  }

  get(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: this.keys.queuePrefix });
      // Connection errors are the shared connection's to report (its owner logs them and
      // ioredis reconnects); unhandled here, they would be printed as crashes.
      q.on('error', () => undefined);
      this.queues.set(name, q);
    }
    return q;
  }

  /**
   * Adds one job per ready task, in bulk per role. Idempotent thanks to the job ids.
   * `recovered` marks jobs the reconciler re-adds, whose task may have run already.
   */
  async enqueue(buildId: string, ready: readonly ReadyTask[], opts: { recovered?: boolean } = {}): Promise<void> {
    if (ready.length === 0) return;
    const byRole = new Map<Role, ReadyTask[]>();
    for (const r of ready) {
      const list = byRole.get(r.role);
      if (list) list.push(r);
      else byRole.set(r.role, [r]);
    }
    await Promise.all(
      [...byRole].map(async ([role, tasks]) => {
        const queue = this.get(role);
        // addBulk keeps a 5,000-root build to a handful of round trips.
        for (let i = 0; i < tasks.length; i += 1_000) {
          await queue.addBulk(
            tasks.slice(i, i + 1_000).map((t) => ({
              name: t.taskId,
              data: { buildId, taskId: t.taskId, gen: t.gen, spec: t.spec, ...(opts.recovered ? { recovered: true } : {}) } satisfies TaskJobData,
              opts: { ...this.jobOptions, jobId: taskJobId(buildId, t.taskId, t.gen) },
            })),
          );
        }
      }),
    );
  }

  /** Queues the planning of a submitted build. Idempotent (job id = build id). */
  async enqueueGoal(buildId: string): Promise<void> {
    await this.get(GOALS_QUEUE).add('goal', { buildId } satisfies GoalJobData, { ...this.goalJobOptions, jobId: buildId });
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
