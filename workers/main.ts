import { loadConfig, type Config } from '../shared/config.js';
import { ConfigError } from '../shared/errors.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { onShutdown, runMain } from '../shared/process.js';
import { RoleSchema, ROLES, type Role } from '../shared/roles.js';
import { scrubProcessEnv } from '../shared/sandbox.js';
import type { TaskExecutor } from './executor.js';
import { ScriptedExecutor } from './executors/scripted.js';
import { RoleWorker, type RoleWorkerOptions } from './worker.js';

/** The agent stack (LLM client, sandbox, roles) is loaded only by workers that use it. */
export async function createExecutor(config: Config, logger: Logger): Promise<TaskExecutor> {
  if (config.CODEGOD_EXECUTOR === 'scripted') return new ScriptedExecutor();
  const { AgentExecutor } = await import('./executors/agent.js');
  return new AgentExecutor(config, logger);
}

/** Follow-ups and re-plans: the orchestrator's policies, applied where tasks end. */
export async function agentHooks(logger: Logger): Promise<RoleWorkerOptions['hooks']> {
  const [{ orchestratorHooks }, { MemoryStore }] = await Promise.all([import('../orchestrator/completion-hooks.js'), import('../shared/memory.js')]);
  return (scheduler, redis) => orchestratorHooks(scheduler, new MemoryStore(redis, scheduler.keys, logger), logger);
}

/** Starts the worker of one role and stops it gracefully on SIGTERM/SIGINT. */
export async function runWorker(config: Config, roleArg?: string): Promise<void> {
  const parsed = RoleSchema.safeParse(roleArg ?? config.AGENT_ROLE);
  if (!parsed.success) throw new ConfigError([`AGENT_ROLE: must be one of ${ROLES.join(', ')} (got '${roleArg ?? config.AGENT_ROLE ?? ''}')`]);
  const role: Role = parsed.data;
  const logger = createLogger(config.LOG_LEVEL, { service: 'worker' });
  const executor = await createExecutor(config, logger);
  const worker = new RoleWorker({ config, role, executor, logger, ...(config.CODEGOD_EXECUTOR === 'agent' ? { hooks: await agentHooks(logger) } : {}) });
  onShutdown(async (signal) => {
    logger.info({ signal }, 'shutting down');
    await worker.close();
  });
  await worker.start();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runMain(async () => {
    const config = loadConfig();
    // Secrets given as variables leave this process's environment once read, so nothing it
    // spawns can inherit them (the _FILE form also keeps them out of /proc/<pid>/environ).
    scrubProcessEnv();
    await runWorker(config, process.argv[2]);
  });
}
