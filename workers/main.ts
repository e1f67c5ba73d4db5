import { hostname } from 'node:os';
import { loadConfig, type Config } from '../shared/config.js';
import { ConfigError, errorMessage } from '../shared/domain/errors.js';
import { RoleSchema, ROLES, type Role } from '../shared/domain/roles.js';
import { orchestratorHooks } from '../shared/engine/completion-hooks.js';
import { openRoleWorker, type OpenedRoleWorker, type OpenRoleWorkerInput } from '../shared/engine/open-role-worker.js';
import { ROLE_WORKER_STOP_MS } from '../shared/engine/role-worker.js';
import type { TaskExecutor } from '../shared/engine/task-executor.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { MemoryStore } from '../shared/memory/store.js';
import { compileOptions, type CodegodOptions } from '../shared/options.js';
import { onShutdown, runMain } from '../shared/process.js';
import type { Running, WorkerProgram } from '../shared/programs.js';
import { isolationFor } from '../shared/sandbox/executor/isolation.js';
import { scrubProcessEnv } from '../shared/sandbox/sandbox.js';
import { ScriptedExecutor } from './executors/scripted.js';

/** The agent stack (LLM client, sandbox, roles) is loaded only by workers that use it. */
export async function createExecutor(config: Config, options: CodegodOptions, logger: Logger): Promise<TaskExecutor> {
  if (config.CODEGOD_EXECUTOR === 'scripted') return new ScriptedExecutor();
  await reportIsolation(options, logger);
  const { openAgentExecutor } = await import('./executors/agent.js');
  return openAgentExecutor(options, logger);
}

/** The worker's first line names the isolation agent commands get (detected once, here). */
async function reportIsolation(options: CodegodOptions, logger: Logger): Promise<void> {
  const isolation = await isolationFor(options.sandbox.isolation);
  if (isolation.tier === 'host') logger.warn({ isolation: isolation.tier }, isolation.warning);
  else if (isolation.tier === 'unavailable') logger.error({ isolation: isolation.tier }, `isolation ${isolation.description}; agent tasks will fail until fixed`);
  else logger.info({ isolation: isolation.tier }, `isolation ${isolation.description}`);
}

/** Follow-ups and re-plans: the orchestrator's policies, applied where agents' tasks end. */
function agentHooks(config: Config, logger: Logger): OpenRoleWorkerInput['hooks'] {
  if (config.CODEGOD_EXECUTOR !== 'agent') return undefined;
  return (scheduler, redis) => orchestratorHooks(scheduler, new MemoryStore(redis, scheduler.keys, logger), logger);
}

/** Starts the worker of one role and stops it gracefully on SIGTERM/SIGINT. */
export async function runWorker(config: Config, roleArg?: string): Promise<void> {
  const parsed = RoleSchema.safeParse(roleArg ?? config.AGENT_ROLE);
  if (!parsed.success) throw new ConfigError([`AGENT_ROLE: must be one of ${ROLES.join(', ')} (got '${roleArg ?? config.AGENT_ROLE ?? ''}')`]);
  const role: Role = parsed.data;
  const options = compileOptions(config);
  const logger = createLogger(config.LOG_LEVEL, { service: 'worker' });
  const executor = await createExecutor(config, options, logger);
  const hooks = agentHooks(config, logger);
  const opened = openRoleWorker({ options, role, executor, logger, ...(hooks ? { hooks } : {}) });
  onShutdown(async (signal) => {
    logger.info({ signal, graceMs: options.roleWorker.stopGraceMs }, 'shutting down');
    await opened.close();
  }, options.roleWorker.stopGraceMs + ROLE_WORKER_STOP_MS.handBack + 4 * ROLE_WORKER_STOP_MS.step + 5_000);
  await opened.start();
}

/**
 * One worker per role in this process (`codegod build --local`). One executor (one LLM
 * client, so one in-flight limit) serves every role; the workers get a view without
 * `close`, which runs once, after all of them have stopped.
 */
export async function startLocalWorkers(config: Config, logger: Logger): Promise<Running> {
  const options = compileOptions(config);
  const executor = await createExecutor(config, options, logger);
  const shared: TaskExecutor = { execute: (taskCtx) => executor.execute(taskCtx) };
  const hooks = agentHooks(config, logger);
  const workers: OpenedRoleWorker[] = [];
  const stop = async () => {
    await Promise.all(workers.map((w) => w.close().catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'worker did not stop cleanly'))));
    await executor.close?.();
  };
  try {
    for (const role of ROLES) {
      const worker = openRoleWorker({ options, role, executor: shared, logger, agentId: `${role}-local-${hostname()}-${process.pid}`, ...(hooks ? { hooks } : {}) });
      workers.push(worker);
      await worker.start();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop };
}

export const workerProgram: WorkerProgram = { runWorker, startLocalWorkers };

if (import.meta.url === `file://${process.argv[1]}`) {
  runMain(async () => {
    const config = loadConfig();
    // Secrets given as variables leave this process's environment once read, so nothing it
    // spawns can inherit them (the _FILE form also keeps them out of /proc/<pid>/environ).
    scrubProcessEnv();
    await runWorker(config, process.argv[2]);
  });
}
