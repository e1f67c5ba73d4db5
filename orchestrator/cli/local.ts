import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import type { Config } from '../../shared/config.js';
import { CodegodError, errorMessage, RedisUnreachableError } from '../../shared/domain/errors.js';
import { connectOrFail, displayUrl } from '../../shared/redis/connection.js';
import { RedisServer } from '../../shared/redis/redis-server.js';
import { ROLES } from '../../shared/domain/roles.js';
import { scrubProcessEnv } from '../../shared/sandbox/sandbox.js';
import type { Running } from '../../shared/programs.js';
import { submitAndFollow, type BuildOptions, type FollowHints } from './build.js';
import { openSession, type CliContext } from './context.js';
import { EXIT } from './exit-codes.js';
import { formatDuration } from './format.js';
import { redisOptions } from '../../shared/options.js';

/** Where `build --local` keeps its private Redis's data (AOF), under the current directory. */
export const LOCAL_REDIS_DIR = join('.codegod', 'redis');

/** The path of an executable `name` on PATH, if any. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Redis for a local build: the one at REDIS_URL when it answers, else a private redis-server
 * with AOF under .codegod/redis (so an interrupted build's state survives for the next run
 * in the same directory).
 */
async function localRedis(ctx: CliContext, config: Config): Promise<{ config: Config; server?: RedisServer }> {
  try {
    (await connectOrFail(redisOptions(config))).disconnect();
    return { config };
  } catch (err) {
    if (!(err instanceof RedisUnreachableError) || !findOnPath('redis-server', ctx.io.env)) throw err;
  }
  const dir = resolve(ctx.io.cwd, LOCAL_REDIS_DIR);
  mkdirSync(dir, { recursive: true });
  const server = new RedisServer({ appendonly: true, dir });
  try {
    await server.start();
  } catch (err) {
    await server.kill();
    throw new CodegodError('REDIS_UNREACHABLE', `no Redis at ${displayUrl(config.REDIS_URL)} and a private redis-server would not start (${errorMessage(err)})`, {
      exitCode: 3,
    });
  }
  ctx.err(`codegod: no Redis at ${displayUrl(config.REDIS_URL)}; started a private redis-server at ${server.address} (data in ${LOCAL_REDIS_DIR})`);
  const { REDIS_PASSWORD: _unused, ...rest } = config;
  return { config: { ...rest, REDIS_URL: server.url }, server };
}

/**
 * The dashboard's address for a person: with a token made for this run, its sign-in link
 * (the token is traded for a session cookie and leaves the address bar at once); with the
 * user's own token, the address and where the token comes from.
 */
function dashboardLink(url: string, madeToken: string | undefined): string {
  if (madeToken === undefined) return `${url} (sign in with CODEGOD_API_TOKEN)`;
  return `${url}/?token=${encodeURIComponent(madeToken)}`;
}

/**
 * `codegod build --local`: the orchestrator and one worker per role run in this process
 * (with a private Redis when none answers), the build is followed like any other, and
 * everything stops when it ends.
 */
export async function localBuild(ctx: CliContext, goal: string, opts: BuildOptions, base: Config = ctx.config): Promise<number> {
  let config: Config = base;
  if (opts.workspace !== undefined) {
    const root = resolve(ctx.io.cwd, opts.workspace);
    mkdirSync(root, { recursive: true });
    config = { ...config, CODEGOD_WORKSPACE_ROOT: root };
  }
  // The dashboard takes any free port unless one is asked for: a deployment's dashboard, or
  // another local build, may hold the default one.
  if (!ctx.io.env.CODEGOD_HTTP_PORT?.trim()) config = { ...config, CODEGOD_HTTP_PORT: 0 };
  // The dashboard gets a token of its own unless one is given: without one, any local
  // process and any web page the browser opens could read every build's prompts and output.
  const madeToken = config.CODEGOD_API_TOKEN === undefined;
  if (madeToken) config = { ...config, CODEGOD_API_TOKEN: randomBytes(24).toString('base64url') };
  // As in the worker process: once read, secrets leave the environment agents' commands inherit.
  scrubProcessEnv();
  const redis = await localRedis(ctx, config);
  config = redis.config;
  // Every build's state is in the private Redis's files: agents' commands must not read them.
  if (redis.server) config = { ...config, CODEGOD_SANDBOX_HIDE: [...config.CODEGOD_SANDBOX_HIDE, resolve(ctx.io.cwd, LOCAL_REDIS_DIR)] };
  ctx.err(`codegod: local build: orchestrator and ${ROLES.join(', ')} workers run in this process; workspaces under ${resolve(ctx.io.cwd, config.CODEGOD_WORKSPACE_ROOT)}`);
  const kept = redis.server
    ? `its state is kept in ${LOCAL_REDIS_DIR} and it resumes with the next codegod build --local here`
    : `its state is kept in Redis at ${displayUrl(config.REDIS_URL)} and it resumes once workers and an orchestrator run against it`;
  const hints: FollowHints = {
    interrupted: (id) => `codegod: interrupted; build ${id} stops with this process: ${kept}`,
    timedOut: (id, state, ms) => `codegod: build ${id} is still ${state} after ${formatDuration(ms)}; it stops with this process: ${kept}`,
  };
  const running: Running[] = [];
  let session;
  let code: number | undefined;
  try {
    const orchestrator = await (await ctx.programs.orchestrator()).startLocalOrchestrator(config, ctx.logger);
    running.push(orchestrator);
    running.push(await (await ctx.programs.workers()).startLocalWorkers(config, ctx.logger));
    if (orchestrator.httpUrl) ctx.err(`codegod: dashboard at ${dashboardLink(orchestrator.httpUrl, madeToken ? config.CODEGOD_API_TOKEN : undefined)}`);
    session = await openSession(config, ctx.logger);
    code = await submitAndFollow(ctx, session, goal, { ...opts, detach: false }, hints);
    return code;
  } finally {
    if (code === EXIT.INTERRUPTED || code === EXIT.TIMEOUT) {
      ctx.err('codegod: stopping the local workers (each finishes the task it holds); press Ctrl-C again to stop at once');
    }
    const offInterrupt = ctx.io.onInterrupt(() => ctx.io.exit(130));
    try {
      await session?.close();
      // Workers first (they finish the tasks they hold; BullMQ waits for them), then the orchestrator.
      for (const part of running.reverse()) await part.stop();
      await redis.server?.stop();
    } finally {
      offInterrupt();
    }
  }
}
