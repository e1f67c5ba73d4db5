import { Redis, type RedisOptions as IoRedisOptions } from 'ioredis';
import type { RedisOptions } from '../options.js';
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

function ioredisOptions(options: RedisOptions, kind: ConnectionKind): IoRedisOptions {
  const base: IoRedisOptions = {
    connectionName: `codegod-${kind}`,
    ...(options.password ? { password: options.password } : {}),
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
    connectTimeout: options.connectTimeoutMs,
    enableOfflineQueue: true,
    retryStrategy: (times) => (times > 3 ? null : 200 * times),
  };
}

export function createRedis(options: RedisOptions, kind: ConnectionKind): Redis {
  return new Redis(options.url, ioredisOptions(options, kind));
}

/**
 * Opens a client connection and proves it with PING within CODEGOD_CONNECT_TIMEOUT_MS, or
 * throws RedisUnreachableError naming the URL.
 */
export async function connectOrFail(options: RedisOptions, kind: ConnectionKind = 'client'): Promise<Redis> {
  const redis = new Redis(options.url, { ...ioredisOptions(options, kind), lazyConnect: true });
  redis.on('error', () => {
    /* reported through the ping below */
  });
  const timeout = options.connectTimeoutMs;
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
    throw new RedisUnreachableError(displayUrl(options.url), detail);
  }
}
