import { randomBytes } from 'node:crypto';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import type { TestProject } from 'vitest/node';
import { RedisServer, freePort } from '../../shared/redis/redis-server.js';
import { engineRequired, hasBridgeNetwork, probeDockerEngine } from './docker-engine.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/** The image of the tests' Redis: the compose file's by default. */
const REDIS_IMAGE = process.env.CODEGOD_TEST_REDIS_IMAGE ?? 'redis:7.4-alpine';

/** The settings the deployment runs Redis with (persistence off: tests need no restart). */
const REDIS_SETTINGS = ['save ""', 'appendonly no', 'maxmemory-policy noeviction'];
const CONFIG_PATH = '/usr/local/etc/codegod-test-redis.conf';

/**
 * Redis in a container through testcontainers, with a random password like every Redis codegod
 * starts. The settings travel as a config file, not arguments, so the password is in no
 * process's command line on this machine. An engine without a bridge network (a daemon run
 * with --bridge=none, as in CI here) cannot publish ports: the container then shares the host's
 * network and listens on a free port of 127.0.0.1.
 */
async function startRedisContainer(client: Parameters<typeof hasBridgeNetwork>[0]): Promise<{ url: string; container: StartedTestContainer }> {
  const password = randomBytes(24).toString('hex');
  const bridge = await hasBridgeNetwork(client);
  const port = bridge ? 6379 : await freePort();
  const settings = [...REDIS_SETTINGS, `requirepass ${password}`, `port ${port}`, ...(bridge ? [] : ['bind 127.0.0.1'])];
  let base = new GenericContainer(REDIS_IMAGE)
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .withStartupTimeout(60_000)
    .withCopyContentToContainer([{ content: settings.join('\n') + '\n', target: CONFIG_PATH, mode: 0o644 }])
    .withCommand(['redis-server', CONFIG_PATH]);
  base = bridge ? base.withExposedPorts(6379) : base.withNetworkMode('host');
  const container = await base.start();
  const host = bridge ? container.getHost() : '127.0.0.1';
  const mapped = bridge ? container.getMappedPort(6379) : port;
  return { url: `redis://:${password}@${host}:${mapped}`, container };
}

/**
 * One Redis for the whole run: REDIS_URL when the caller gives one; else Redis in a container
 * through testcontainers when a Docker engine answers; else a private redis-server on a free
 * port (never whatever happens to listen on 6379). One line says which. Test files keep apart
 * through unique key prefixes; fault tests start servers of their own.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.REDIS_URL) {
    console.log(`tests: Redis at REDIS_URL (${process.env.REDIS_URL.replace(/\/\/[^@]*@/, '//***@')})`);
    project.provide('redisUrl', process.env.REDIS_URL);
    return async () => undefined;
  }
  const engine = await probeDockerEngine();
  if (engine.reachable) {
    const { url, container } = await startRedisContainer(engine.client);
    console.log(`tests: Redis in a container (testcontainers, ${REDIS_IMAGE}, engine ${engine.endpoint}) at ${url.replace(/\/\/[^@]*@/, '//')}`);
    project.provide('redisUrl', url);
    return async () => {
      await container.stop({ timeout: 1_000 });
    };
  }
  if (engineRequired()) {
    throw new Error(`CODEGOD_TEST_REQUIRE_ENGINE=1 but no Docker engine answers at ${engine.endpoint} (${engine.reason})`);
  }
  const server = await new RedisServer().start();
  console.log(`tests: Redis is a spawned redis-server at ${server.address} (no Docker engine at ${engine.endpoint}: ${engine.reason})`);
  project.provide('redisUrl', server.url);
  return () => server.stop();
}
