import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Redis } from 'ioredis';
import { errorMessage } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import { Periodic } from '../periodic.js';
import type { Keys } from '../redis/keys.js';
import type { AgentStatus } from './agent-status.js';

export interface HeartbeatOptions {
  agentId: string;
  /** The status as of now; called for every publish. */
  status: () => AgentStatus;
  /** Touched on every beat when set (CODEGOD_HEALTH_FILE): container health checks read its age. */
  healthFile?: string | undefined;
  /** More work of the owner's to do on every beat (flushing counters, noticing missed cancels). */
  onBeat?: () => Promise<void>;
  logger: Logger;
}

/**
 * A process's presence in `P:agents:status`, for workers and orchestrators alike: its status
 * published on every beat (and on demand, for live phase changes), the health file touched.
 * A failed beat is logged and the next one tries again.
 */
export class Heartbeat {
  private readonly periodic = new Periodic(() => this.beat());

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly opts: HeartbeatOptions,
  ) {}

  /** Beats now, then every `intervalMs`, until `stop`. */
  async start(intervalMs: number): Promise<void> {
    await this.periodic.start(intervalMs);
  }

  async stop(): Promise<void> {
    await this.periodic.stop();
  }

  /** Writes the current status now. */
  publish(): Promise<unknown> {
    return this.redis.hset(this.keys.agentsStatus, this.opts.agentId, JSON.stringify(this.opts.status()));
  }

  async beat(): Promise<void> {
    try {
      await this.publish();
      if (this.opts.healthFile) {
        await mkdir(dirname(this.opts.healthFile), { recursive: true });
        await writeFile(this.opts.healthFile, String(Date.now()));
      }
      await this.opts.onBeat?.();
    } catch (err) {
      this.opts.logger.warn({ err: errorMessage(err) }, 'heartbeat failed');
    }
  }
}
