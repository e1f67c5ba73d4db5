import type { ChainableCommander, Redis } from 'ioredis';
import { z } from 'zod';
import type { Keys } from '../redis/keys.js';
import type { Role } from '../domain/roles.js';

/**
 * Task durations as a Prometheus histogram shared by every worker process. Workers are
 * separate processes, so each one counts in memory (`observe`, no Redis round trip per task)
 * and adds its counts to one Redis hash on its heartbeat (`flush`); the orchestrator's
 * `/metrics` reads the hash back (`readTaskDurations`) and exposes it as one histogram.
 *
 * Fields of `keys.metricsDurations`, per role and outcome, in Prometheus's own semantics so
 * that `HGETALL` reads like the exposition:
 *
 * | field                          | what                                                      |
 * |--------------------------------|-----------------------------------------------------------|
 * | `<role>:<outcome>:le:<bound>`  | attempts that took at most `bound` seconds (cumulative)   |
 * | `<role>:<outcome>:le:+Inf`     | every attempt (equals `count`)                            |
 * | `<role>:<outcome>:sum_ms`      | total milliseconds (integer, so HINCRBY can add it)       |
 * | `<role>:<outcome>:count`       | attempts observed                                         |
 */

/** Upper bounds of the buckets, in seconds; `+Inf` is implicit. Fixed: changing them splits history. */
export const TASK_DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800] as const;

/**
 * How one attempt of a task ended: `succeeded`; `failed` for good; `retried` (the attempt
 * failed and the queue will run it again); `cancelled` (its build was cancelled).
 */
export const TASK_OUTCOMES = ['succeeded', 'failed', 'retried', 'cancelled'] as const;
export const TaskOutcomeSchema = z.enum(TASK_OUTCOMES);
export type TaskOutcome = z.infer<typeof TaskOutcomeSchema>;

/** Counts not yet in Redis: hash field → increment. */
export type DurationBatch = ReadonlyMap<string, number>;

export class TaskDurationMetrics {
  /** Per `role:outcome`: a count per bucket (the last is +Inf), then the sum in ms. */
  private pending = new Map<string, number[]>();

  /** Records one attempt of `ms` milliseconds. Counts in arrays: field names are made at flush. */
  observe(role: Role, outcome: TaskOutcome, ms: number): void {
    const value = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const series = `${role}:${outcome}`;
    let counts = this.pending.get(series);
    if (!counts) this.pending.set(series, (counts = new Array<number>(TASK_DURATION_BUCKETS.length + 2).fill(0)));
    for (let i = 0; i < TASK_DURATION_BUCKETS.length; i++) if (value <= TASK_DURATION_BUCKETS[i]! * 1_000) counts[i]! += 1;
    counts[TASK_DURATION_BUCKETS.length]! += 1;
    counts[TASK_DURATION_BUCKETS.length + 1]! += Math.round(value);
  }

  get empty(): boolean {
    return this.pending.size === 0;
  }

  /**
   * Queues the counts observed since the last flush on `multi` (the caller's MULTI, so a
   * scrape never sees a bucket without its count) and forgets them. Returns them, for
   * `restore` should the MULTI fail.
   */
  flush(multi: ChainableCommander, keys: Keys): DurationBatch {
    const batch = new Map<string, number>();
    for (const [series, counts] of this.pending) {
      TASK_DURATION_BUCKETS.forEach((bound, i) => batch.set(`${series}:le:${bound}`, counts[i]!));
      batch.set(`${series}:le:+Inf`, counts[TASK_DURATION_BUCKETS.length]!);
      batch.set(`${series}:count`, counts[TASK_DURATION_BUCKETS.length]!);
      batch.set(`${series}:sum_ms`, counts[TASK_DURATION_BUCKETS.length + 1]!);
    }
    this.pending = new Map();
    for (const [field, n] of batch) if (n !== 0) multi.hincrby(keys.metricsDurations, field, n);
    return batch;
  }

  /** Puts back counts whose flush did not reach Redis, so the next flush carries them. */
  restore(batch: DurationBatch): void {
    const slot = (suffix: string) =>
      suffix === 'le:+Inf' ? TASK_DURATION_BUCKETS.length : suffix === 'sum_ms' ? TASK_DURATION_BUCKETS.length + 1 : TASK_DURATION_BUCKETS.findIndex((b) => suffix === `le:${b}`);
    for (const [field, n] of batch) {
      const [role, outcome, ...rest] = field.split(':');
      const suffix = rest.join(':');
      if (suffix === 'count') continue;
      const series = `${role}:${outcome}`;
      let counts = this.pending.get(series);
      if (!counts) this.pending.set(series, (counts = new Array<number>(TASK_DURATION_BUCKETS.length + 2).fill(0)));
      const i = slot(suffix);
      if (i >= 0) counts[i]! += n;
    }
  }
}

export interface TaskDurationSeries {
  role: string;
  outcome: string;
  /** Cumulative counts per upper bound in seconds, ascending; the last bound is Infinity. */
  buckets: Array<{ le: number; count: number }>;
  sumSeconds: number;
  count: number;
}

const FIELD = /^([a-z][a-z0-9_-]{0,31}):([a-z]{1,32}):(?:le:(\+Inf|\d+(?:\.\d+)?)|(sum_ms|count))$/;

/**
 * The histogram as stored, one series per role and outcome. Fields that do not parse (a
 * hand-edited hash) or name a bound that is not one of TASK_DURATION_BUCKETS are ignored.
 */
export async function readTaskDurations(redis: Redis, keys: Keys): Promise<TaskDurationSeries[]> {
  const raw = await redis.hgetall(keys.metricsDurations);
  const known = new Set<number>(TASK_DURATION_BUCKETS);
  const series = new Map<string, { role: string; outcome: string; le: Map<number, number>; sumMs: number; count: number }>();
  for (const [field, value] of Object.entries(raw)) {
    const m = FIELD.exec(field);
    const n = Number(value);
    if (!m || !Number.isFinite(n) || n < 0) continue;
    const [, role, outcome, bound, stat] = m as unknown as [string, string, string, string | undefined, string | undefined];
    const id = `${role}:${outcome}`;
    let s = series.get(id);
    if (!s) {
      s = { role, outcome, le: new Map(), sumMs: 0, count: 0 };
      series.set(id, s);
    }
    if (stat === 'sum_ms') s.sumMs = n;
    else if (stat === 'count') s.count = n;
    else if (bound !== undefined && bound !== '+Inf' && known.has(Number(bound))) s.le.set(Number(bound), n);
  }
  return [...series.values()]
    .sort((a, b) => a.role.localeCompare(b.role) || a.outcome.localeCompare(b.outcome))
    .map((s) => {
      // Cumulative by construction; the running maximum only guards against a hand-edited hash.
      let running = 0;
      const buckets = TASK_DURATION_BUCKETS.map((le) => {
        running = Math.min(s.count, Math.max(running, s.le.get(le) ?? 0));
        return { le, count: running };
      });
      return {
        role: s.role,
        outcome: s.outcome,
        buckets: [...buckets, { le: Number.POSITIVE_INFINITY, count: s.count }],
        sumSeconds: s.sumMs / 1_000,
        count: s.count,
      };
    });
}
