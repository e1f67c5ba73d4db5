import type { Redis } from 'ioredis';
import { Scheduler } from '../../shared/engine/scheduler.js';
import { TERMINAL_BUILD_STATES, type BuildRecord } from '../../shared/domain/build.js';
import type { Config } from '../../shared/config.js';
import { listAgents } from '../../shared/telemetry/agent-status.js';
import { createKeys } from '../../shared/redis/keys.js';
import { createLogger } from '../../shared/logger.js';
import { parsePlan, type Plan } from '../../shared/domain/plan.js';
import { createRedis } from '../../shared/redis/connection.js';
import type { ChildHandle } from './processes.js';
import { waitFor } from './processes.js';
import { redisOptions, compileOptions } from '../../shared/options.js';

type Spec = { id: string; role?: string; description?: string; dependsOn?: string[] };

/** A plan from terse specs: role defaults to backend, description holds scripted directives. */
export function plan(specs: Spec[], maxTasks = 10_000): Plan {
  return parsePlan(
    {
      tasks: specs.map((s) => ({
        id: s.id,
        role: s.role ?? 'backend',
        title: `task ${s.id}`,
        description: s.description ?? 'noop',
        dependsOn: s.dependsOn ?? [],
      })),
    },
    { maxTasks },
  );
}

export interface EngineHarness {
  redis: Redis;
  scheduler: Scheduler;
  close(): Promise<void>;
}

export function engine(config: Config): EngineHarness {
  const redis = createRedis(redisOptions(config), 'service');
  // Fault tests stop Redis under this connection; ioredis reconnects on its own.
  redis.on('error', () => undefined);
  const scheduler = new Scheduler(redis, createKeys(config.CODEGOD_PREFIX), compileOptions(config).scheduler, createLogger('silent'));
  return {
    redis,
    scheduler,
    async close() {
      await scheduler.close();
      redis.disconnect();
    },
  };
}

export async function waitForBuildEnd(scheduler: Scheduler, buildId: string, timeoutMs = 30_000): Promise<BuildRecord> {
  return waitFor(async () => {
    const b = await scheduler.dag.getBuild(buildId);
    return TERMINAL_BUILD_STATES.has(b.state) ? b : undefined;
  }, `build ${buildId} to end`, timeoutMs);
}

/** Waits until each child's worker has registered in codegod:agents:status as running (neither stopping nor offline). */
export async function waitForWorkers(redis: Redis, config: Config, children: ChildHandle[]): Promise<void> {
  const keys = createKeys(config.CODEGOD_PREFIX);
  await waitFor(async () => {
    const { agents } = await listAgents(redis, keys);
    const live = new Set(agents.filter((a) => a.state !== 'stopping' && a.state !== 'offline').map((a) => a.pid));
    return children.every((c) => live.has(c.pid));
  }, 'workers to start', 30_000, 100);
}
