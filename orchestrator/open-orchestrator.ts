import type { Redis } from 'ioredis';
import type { Config } from '../shared/config.js';
import { errorMessage } from '../shared/domain/errors.js';
import { Reconciler } from '../shared/engine/reconciler.js';
import { Retention } from '../shared/engine/retention.js';
import { Scheduler } from '../shared/engine/scheduler.js';
import { LlmClient } from '../shared/llm/client.js';
import type { Logger } from '../shared/logger.js';
import { compileOptions } from '../shared/options.js';
import { createRedis } from '../shared/redis/connection.js';
import { createKeys } from '../shared/redis/keys.js';
import { RedisUsageRecorder } from '../shared/telemetry/llm-usage.js';
import { settlesWithin } from '../shared/timeout.js';
import { startHttpServer } from './http/server.js';
import { Planner } from './planner.js';
import { OrchestratorService } from './service.js';

export interface OpenedOrchestrator {
  service: OrchestratorService;
  /** Where the dashboard and API answer, once started. */
  readonly httpUrl: string | undefined;
  start(): Promise<void>;
  /** Stops the service (OrchestratorService.stop), closing its scheduler within its cleanup budget, then its connections. */
  close(): Promise<void>;
}

/**
 * An orchestrator with what it runs on: two long-lived connections (commands, and the goals
 * worker's), a scheduler on the first, the reconciler, retention, and a planner whose LLM
 * client records usage in Redis. `config` is compiled here, once.
 */
export function openOrchestrator(config: Config, logger: Logger): OpenedOrchestrator {
  const options = compileOptions(config);
  const open = (): Redis => {
    const conn = createRedis(options.redis, 'service');
    conn.on('error', (err) => logger.warn({ err: errorMessage(err) }, 'redis connection error; retrying'));
    return conn;
  };
  const connections = { commands: open(), queue: open() };
  const keys = createKeys(options.redis.prefix);
  const scheduler = new Scheduler(connections.commands, keys, options.scheduler, logger);
  const llm = new LlmClient(options.llm, { recorder: new RedisUsageRecorder(connections.commands, keys), logger });
  const service = new OrchestratorService({
    options: options.orchestrator,
    logger,
    redis: connections.commands,
    queueConnection: connections.queue,
    scheduler,
    reconciler: new Reconciler(scheduler, connections.commands, logger),
    retention: new Retention(scheduler, connections.commands, logger),
    planner: new Planner(llm, options.orchestrator.planAttempts),
    startHttp: () => startHttpServer({ options: options.http, redis: connections.commands, scheduler, logger }),
  });
  return {
    service,
    get httpUrl() {
      return service.httpUrl;
    },
    start: () => service.start(),
    async close() {
      const clean = await service.stop(() => scheduler.close());
      connections.queue.disconnect();
      if (!clean || !(await settlesWithin(connections.commands.quit(), 500))) connections.commands.disconnect();
      logger.info({ clean }, 'orchestrator stopped');
    },
  };
}
