import type { Redis } from 'ioredis';
import type { Config } from '../shared/config.js';
import { errorMessage } from '../shared/errors.js';
import { createKeys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import { createRedis } from '../shared/redis.js';
import { Reconciler } from './reconciler.js';
import { Scheduler } from './scheduler.js';

/**
 * The master orchestrator process. It holds no state of its own: builds live in Redis, so
 * any number of orchestrators may run and any of them may die; the reconciler (at start-up
 * and periodically) repairs what a crash left half-done.
 */
export class OrchestratorService {
  readonly scheduler: Scheduler;
  readonly reconciler: Reconciler;
  private readonly redis: Redis;

  constructor(
    readonly config: Config,
    private readonly logger: Logger,
  ) {
    this.redis = createRedis(config, 'service');
    this.redis.on('error', (err) => logger.warn({ err: errorMessage(err) }, 'redis connection error; retrying'));
    this.scheduler = new Scheduler(this.redis, createKeys(config.CODEGOD_PREFIX), config, logger);
    this.reconciler = new Reconciler(this.scheduler, this.redis, logger);
  }

  async start(): Promise<void> {
    this.reconciler.start(this.config.CODEGOD_RECONCILE_INTERVAL_MS);
    this.logger.info({ reconcileEveryMs: this.config.CODEGOD_RECONCILE_INTERVAL_MS }, 'orchestrator started');
  }

  async stop(): Promise<void> {
    await this.reconciler.stop();
    await this.scheduler.close();
    await this.redis.quit().catch(() => undefined);
    this.logger.info('orchestrator stopped');
  }
}
