import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config.js';
import { withTimeout } from '../timeout.js';
import { RedisUnreachableError } from '../domain/errors.js';

/**
 * Two kinds of connection. Long-lived processes (workers, orchestrator) wait out any Redis
 * outage: commands queue and are retried forever, which BullMQ requires
 * (`maxRetriesPerRequest: null`). Short-lived callers (CLI, benches) fail fast with one
 * readable line instead of hanging.
 */
export type ConnectionKind = 'service' | 'client';

/** The URL with any password masked, for messages. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

function options(config: Config, kind: ConnectionKind): RedisOptions {
  const base: RedisOptions = {
    connectionName: `codegod-${kind}`,
    ...(config.REDIS_PASSWORD ? { password: config.REDIS_PASSWORD } : {}),
  };
  if (kind === 'service') {
    return {
      ...base,
      maxRetriesPerRequest: null,
      enableReadyCheck: true,
      // Reconnect forever with a capped backoff: a restarted Redis must find its workers back.
      retryStrategy: (times) => Math.min(100 * times, 2_000),
    };
  }
  return {
    ...base,
    maxRetriesPerRequest: 1,
    connectTimeout: config.CODEGOD_CONNECT_TIMEOUT_MS,
    enableOfflineQueue: true,
    retryStrategy: (times) => (times > 3 ? null : 200 * times),
  };
}

export function createRedis(config: Config, kind: ConnectionKind): Redis {
  return new Redis(config.REDIS_URL, options(config, kind));
}

/**
 * Opens a client connection and proves it with PING within CODEGOD_CONNECT_TIMEOUT_MS, or
 * throws RedisUnreachableError naming the URL.
 */
export async function connectOrFail(config: Config, kind: ConnectionKind = 'client'): Promise<Redis> {
  const redis = new Redis(config.REDIS_URL, { ...options(config, kind), lazyConnect: true });
  redis.on('error', () => {
    /* reported through the ping below */
  });
  const timeout = config.CODEGOD_CONNECT_TIMEOUT_MS;
  try {
    await withTimeout(
      (async () => {
        await redis.connect();
        await redis.ping();
      })(),
      timeout,
      () => new Error(`no answer within ${timeout} ms`),
    );
    return redis;
  } catch (err) {
    redis.disconnect();
    const detail = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    throw new RedisUnreachableError(displayUrl(config.REDIS_URL), detail);
  }
}
