import { loadConfig, type Config } from '../shared/config.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { onShutdown, runMain } from '../shared/process.js';
import type { OrchestratorProgram, Running } from '../shared/programs.js';
import { openOrchestrator } from './open-orchestrator.js';
import { ORCHESTRATOR_STOP_MS } from './service.js';

/** The most a SIGTERM'd orchestrator lives on: compose and Kubernetes give it 15 s. */
const ORCHESTRATOR_STOP_LIMIT_MS = 9_500;

export async function runOrchestrator(config: Config): Promise<void> {
  const logger = createLogger(config.LOG_LEVEL, { service: 'orchestrator' });
  const orchestrator = openOrchestrator(config, logger);
  onShutdown(async (signal) => {
    logger.info({ signal, withinMs: ORCHESTRATOR_STOP_MS.drain + ORCHESTRATOR_STOP_MS.handBack + ORCHESTRATOR_STOP_MS.cleanup }, 'shutting down');
    await orchestrator.close();
  }, ORCHESTRATOR_STOP_LIMIT_MS);
  await orchestrator.start();
}

/** The orchestrator inside another process (`codegod build --local`). */
export async function startLocalOrchestrator(config: Config, logger: Logger): Promise<Running & { readonly httpUrl: string | undefined }> {
  const orchestrator = openOrchestrator(config, logger);
  try {
    await orchestrator.start();
  } catch (err) {
    await orchestrator.close().catch(() => undefined);
    throw err;
  }
  return {
    get httpUrl() {
      return orchestrator.httpUrl;
    },
    stop: () => orchestrator.close(),
  };
}

export const orchestratorProgram: OrchestratorProgram = { runOrchestrator, startLocalOrchestrator };

if (import.meta.url === `file://${process.argv[1]}`) runMain(() => runOrchestrator(loadConfig()));
