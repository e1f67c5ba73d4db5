import type { Redis } from 'ioredis';
import { errorMessage } from '../domain/errors.js';
import type { Role } from '../domain/roles.js';
import type { Logger } from '../logger.js';
import type { CodegodOptions } from '../options.js';
import { createRedis } from '../redis/connection.js';
import { createKeys } from '../redis/keys.js';
import { settlesWithin } from '../timeout.js';
import { ROLE_WORKER_STOP_MS, RoleWorker, type CompletionHooks } from './role-worker.js';
import { Scheduler } from './scheduler.js';
import type { TaskExecutor } from './task-executor.js';

export interface OpenRoleWorkerInput {
  options: Pick<CodegodOptions, 'redis' | 'scheduler' | 'roleWorker'>;
  role: Role;
  executor: TaskExecutor;
  logger: Logger;
  /** Over options.roleWorker.agentId. */
  agentId?: string;
  /** Completion hooks, made with the worker's scheduler and command connection. */
  hooks?: (scheduler: Scheduler, redis: Redis) => CompletionHooks;
}

export interface OpenedRoleWorker {
  worker: RoleWorker;
  start(): Promise<void>;
  /** Stops the worker gracefully (RoleWorker.close), then closes its executor, scheduler and connections. */
  close(graceMs?: number): Promise<void>;
}

/**
 * A role worker with what it runs on: three long-lived connections (commands, cancel
 * notices, BullMQ) and a scheduler on the first, all closed after the worker has stopped,
 * each step bounded whatever Redis is doing.
 */
export function openRoleWorker(input: OpenRoleWorkerInput): OpenedRoleWorker {
  const { options, role, executor, logger } = input;
  const log = logger.child({ role });
  const open = (): Redis => {
    const conn = createRedis(options.redis, 'service');
    conn.on('error', (err) => log.warn({ err: errorMessage(err) }, 'redis connection error; retrying'));
    return conn;
  };
  const connections = { commands: open(), subscriber: open(), queue: open() };
  const scheduler = new Scheduler(connections.commands, createKeys(options.redis.prefix), options.scheduler, logger);
  const hooks = input.hooks?.(scheduler, connections.commands);
  const roleWorker = input.agentId === undefined ? options.roleWorker : { ...options.roleWorker, agentId: input.agentId };
  const worker = new RoleWorker({ options: roleWorker, role, executor, logger, connections, scheduler, ...(hooks ? { hooks } : {}) });
  return {
    worker,
    start: () => worker.start(),
    async close(graceMs) {
      await worker.close(graceMs);
      await settlesWithin(Promise.all([executor.close?.(), scheduler.close()]), ROLE_WORKER_STOP_MS.step);
      connections.subscriber.disconnect();
      connections.queue.disconnect();
      if (!(await settlesWithin(connections.commands.quit(), 500))) connections.commands.disconnect();
    },
  };
}
