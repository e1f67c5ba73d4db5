/**
 * Task durations from worker memory to Redis to a Prometheus histogram: TaskDurationMetrics
 * flushes into a real MULTI, two "workers" add up, and the orchestrator's /metrics collector
 * exposes one cumulative histogram per role and outcome.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrchestratorMetrics } from '../../orchestrator/http/metrics.js';
import type { Config } from '../../shared/config.js';
import { createKeys, type Keys } from '../../shared/redis/keys.js';
import { TaskQueues } from '../../shared/engine/queues.js';
import { createRedis } from '../../shared/redis/connection.js';
import { readTaskDurations, TASK_DURATION_BUCKETS, TaskDurationMetrics } from '../../shared/telemetry/task-metrics.js';
import { testConfig } from '../helpers/config.js';
import { parseExposition } from '../helpers/prometheus.js';
import { redisOptions, compileOptions } from '../../shared/options.js';

let config: Config;
let redis: Redis;
let keys: Keys;
let queues: TaskQueues;

beforeAll(() => {
  config = testConfig();
  redis = createRedis(redisOptions(config), 'service');
  keys = createKeys(config.CODEGOD_PREFIX);
  queues = new TaskQueues(redis, keys, compileOptions(config).scheduler.jobs);
});

afterAll(async () => {
  await queues.close();
  redis.disconnect();
});

async function flush(m: TaskDurationMetrics): Promise<void> {
  const multi = redis.multi();
  m.flush(multi, keys);
  await multi.exec();
}

describe('TaskDurationMetrics', () => {
  it('adds what several workers observed into one cumulative histogram', async () => {
    const a = new TaskDurationMetrics();
    const b = new TaskDurationMetrics();
    a.observe('backend', 'succeeded', 400);
    a.observe('backend', 'succeeded', 4_000);
    b.observe('backend', 'succeeded', 100_000);
    b.observe('backend', 'failed', 7_200_000);
    a.observe('testing', 'retried', 20_000);
    expect(a.empty).toBe(false);
    await Promise.all([flush(a), flush(b)]);
    expect(a.empty).toBe(true);

    const series = await readTaskDurations(redis, keys);
    expect(series.map((s) => `${s.role}:${s.outcome}`)).toEqual(['backend:failed', 'backend:succeeded', 'testing:retried']);
    const ok = series.find((s) => s.outcome === 'succeeded')!;
    expect(ok.count).toBe(3);
    expect(ok.sumSeconds).toBeCloseTo(104.4, 5);
    const at = (le: number) => ok.buckets.find((x) => x.le === le)!.count;
    expect([at(1), at(5), at(60), at(120), at(Infinity)]).toEqual([1, 2, 2, 3, 3]);
    const failed = series.find((s) => s.outcome === 'failed')!;
    expect(failed.buckets.filter((x) => x.le !== Infinity).every((x) => x.count === 0)).toBe(true);
    expect(failed.buckets.at(-1)).toEqual({ le: Infinity, count: 1 });
  });

  it('keeps counts whose MULTI never ran and sends them with the next flush', async () => {
    const m = new TaskDurationMetrics();
    m.observe('devops', 'succeeded', 2_000);
    const lost = redis.multi();
    const batch = m.flush(lost, keys);
    lost.discard();
    m.restore(batch);
    await flush(m);
    const devops = (await readTaskDurations(redis, keys)).find((s) => s.role === 'devops')!;
    expect(devops.count).toBe(1);
    expect(devops.sumSeconds).toBe(2);
  });

  it('ignores fields it did not write', async () => {
    await redis.hset(keys.metricsDurations, 'garbage', '1', 'frontend:succeeded:le:7', '3', 'frontend:succeeded:count', 'x');
    const frontend = (await readTaskDurations(redis, keys)).find((s) => s.role === 'frontend');
    expect(frontend?.buckets.map((b) => b.count).every((c) => c === 0)).toBe(true);
  });
});

describe('the /metrics collector', () => {
  it('exposes the stored durations as a Prometheus histogram, and reads Redis afresh on every scrape', async () => {
    const metrics = new OrchestratorMetrics(redis, keys, queues, config.CODEGOD_HEARTBEAT_MS);
    const before = parseExposition(await metrics.render());
    expect(before.types.get('codegod_task_duration_seconds')).toBe('histogram');
    const bucket = (exp: typeof before, le: string) => exp.value('codegod_task_duration_seconds_bucket', { role: 'backend', outcome: 'succeeded', le });
    expect(bucket(before, '+Inf')).toBe(3);
    expect(before.value('codegod_task_duration_seconds_count', { role: 'backend', outcome: 'succeeded' })).toBe(3);
    expect(before.value('codegod_task_duration_seconds_sum', { role: 'backend', outcome: 'succeeded' })).toBeCloseTo(104.4, 5);
    const les = before.samples
      .filter((s) => s.name === 'codegod_task_duration_seconds_bucket' && s.labels.role === 'backend' && s.labels.outcome === 'succeeded')
      .map((s) => s.labels.le);
    expect(les).toEqual([...TASK_DURATION_BUCKETS.map(String), '+Inf']);

    const m = new TaskDurationMetrics();
    m.observe('backend', 'succeeded', 10);
    await flush(m);
    const after = parseExposition(await metrics.render());
    expect(bucket(after, '1')).toBe(bucket(before, '1')! + 1);
    expect(bucket(after, '+Inf')).toBe(4);
  });
});
