import type { TestProject } from 'vitest/node';
import { RedisServer } from '../../shared/redis/redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/**
 * One Redis for the whole run: REDIS_URL when the caller gives one, else a private
 * redis-server on a free port (never whatever happens to listen on 6379). Test files keep
 * apart through unique key prefixes; fault tests start servers of their own.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.REDIS_URL) {
    project.provide('redisUrl', process.env.REDIS_URL);
    return async () => undefined;
  }
  const server = await new RedisServer().start();
  project.provide('redisUrl', server.url);
  return () => server.stop();
}
