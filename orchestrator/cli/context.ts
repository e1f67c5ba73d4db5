import type { Redis } from 'ioredis';
import { agentSummary, listAgents, type AgentStatus } from '../../shared/telemetry/agent-status.js';
import { loadConfig, type Config } from '../../shared/config.js';
import { createKeys, type Keys } from '../../shared/redis/keys.js';
import { createLogger, type LogFormat, type Logger } from '../../shared/logger.js';
import { connectOrFail } from '../../shared/redis/connection.js';
import { Scheduler } from '../../shared/engine/scheduler.js';
import type { Programs } from '../../shared/programs.js';
import { redisOptions, compileOptions } from '../../shared/options.js';
import { terminalSafeJson } from '../../shared/terminal-safe.js';
import { paint, paletteFor, type Palette } from './colour.js';

/** A stream the CLI writes to: process.stdout/stderr, or a buffer in tests. */
export interface CliOutput {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Everything the CLI touches of its process, so that commands run the same in-process (tests)
 * as in the real `codegod` process.
 */
export interface CliIo {
  stdout: CliOutput;
  stderr: CliOutput;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Calls `handler` on Ctrl-C until the returned function is called. */
  onInterrupt(handler: () => void): () => void;
  /** Ends the process at once (a second Ctrl-C during a slow shutdown). */
  exit(code: number): never;
}

export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    onInterrupt(handler) {
      process.on('SIGINT', handler);
      return () => process.removeListener('SIGINT', handler);
    },
    exit: (code) => process.exit(code),
  };
}

/** One invocation of a command: its streams, config and logger, and the programs it may launch. */
export class CliContext {
  private cachedConfig: Config | undefined;
  private cachedLogger: Logger | undefined;
  private cachedColour: Palette | undefined;
  /** `--log-format`: human lines unless JSON is asked for (services log JSON by themselves). */
  logFormat: LogFormat = 'human';

  constructor(
    readonly io: CliIo,
    readonly programs: Programs,
  ) {}

  /**
   * Writes lines to stdout. Lines carry text from outside (LLM replies, command output,
   * goals), so every line is painted: its control characters made visible, the palette's
   * colours applied.
   */
  out(...lines: string[]): void {
    for (const line of lines) this.io.stdout.write(`${paint(line)}\n`);
  }

  /** Writes lines to stderr (diagnostics, hints, warnings), painted as `out`'s. */
  err(...lines: string[]): void {
    for (const line of lines) this.io.stderr.write(`${paint(line)}\n`);
  }

  /** Pretty-printed JSON on stdout: one document per command, with no control character a terminal acts on. */
  json(value: unknown): void {
    this.io.stdout.write(`${terminalSafeJson(JSON.stringify(value, null, 2))}\n`);
  }

  /**
   * The configuration. The CLI's own logs stay at `warn` unless LOG_LEVEL is set: its output is
   * for people, and info-level JSON on stderr would drown it.
   */
  get config(): Config {
    this.cachedConfig ??= loadConfig({ ...this.io.env, LOG_LEVEL: this.io.env.LOG_LEVEL?.trim() || 'warn' });
    return this.cachedConfig;
  }

  /**
   * Logs of the CLI and of what it runs in-process (`build --local`, `demo`): one
   * `codegod: warning: …` line each on stderr, or pino's JSON with `--log-format json`.
   */
  get logger(): Logger {
    this.cachedLogger ??= createLogger(this.config.LOG_LEVEL, { service: 'cli' }, {
      format: this.logFormat,
      write: (line) => this.io.stderr.write(this.logFormat === 'json' ? terminalSafeJson(line) : paint(line)),
    });
    return this.cachedLogger;
  }

  /** Colour for stdout: only on a terminal, and never with NO_COLOR. */
  get colour(): Palette {
    this.cachedColour ??= paletteFor(this.io.stdout, this.io.env);
    return this.cachedColour;
  }
}

/** A fail-fast Redis connection with the scheduler on top; `close` releases both. */
export interface Session {
  config: Config;
  redis: Redis;
  keys: Keys;
  scheduler: Scheduler;
  logger: Logger;
  close(): Promise<void>;
}

/** Connects (RedisUnreachableError, exit 3, within CODEGOD_CONNECT_TIMEOUT_MS when Redis is down). */
export async function openSession(config: Config, logger: Logger): Promise<Session> {
  const redis = await connectOrFail(redisOptions(config));
  const keys = createKeys(config.CODEGOD_PREFIX);
  const scheduler = new Scheduler(redis, keys, compileOptions(config).scheduler, logger);
  return {
    config,
    redis,
    keys,
    scheduler,
    logger,
    async close() {
      await scheduler.close().catch(() => undefined);
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

export async function withSession<T>(ctx: CliContext, fn: (session: Session) => Promise<T>): Promise<T> {
  const session = await openSession(ctx.config, ctx.logger);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/**
 * An agent whose last heartbeat is older than this is flagged stale: three missed heartbeats,
 * and never less than 15 s, so a worker configured with a faster heartbeat than this CLI is
 * not flagged by mistake.
 */
export function staleAfterMs(config: Config): number {
  return Math.max(3 * config.CODEGOD_HEARTBEAT_MS, 15_000);
}

export interface AgentView extends AgentStatus, ReturnType<typeof agentSummary> {
  heartbeatAgeMs: number;
  /** Not stopped, but its heartbeat is overdue: the process is probably dead. */
  stale: boolean;
  /** Running (neither stopping nor offline) with a fresh heartbeat. */
  live: boolean;
}

export async function agentViews(session: Pick<Session, 'redis' | 'keys' | 'config'>, now = Date.now()): Promise<{ agents: AgentView[]; malformed: string[] }> {
  const { agents, malformed } = await listAgents(session.redis, session.keys);
  const staleMs = staleAfterMs(session.config);
  return {
    agents: agents.map((a) => {
      const heartbeatAgeMs = Math.max(0, now - a.heartbeat);
      const running = a.state !== 'stopping' && a.state !== 'offline';
      const stale = a.state !== 'offline' && heartbeatAgeMs > staleMs;
      return { ...a, ...agentSummary(a), heartbeatAgeMs, stale, live: running && !stale };
    }),
    malformed,
  };
}

/** The role the orchestrator registers itself under in the agents' status hash. */
export const MASTER_ROLE = 'master';
