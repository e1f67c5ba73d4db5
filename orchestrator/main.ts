import { loadConfig, type Config } from '../shared/config.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { onShutdown, runMain } from '../shared/process.js';
import type { OrchestratorProgram } from '../shared/programs.js';
import { ORCHESTRATOR_STOP_MS, OrchestratorService } from './service.js';

/** The most a SIGTERM'd orchestrator lives on: compose and Kubernetes give it 15 s. */
const ORCHESTRATOR_STOP_LIMIT_MS = 9_500;

export async function runOrchestrator(config: Config): Promise<void> {
  const logger = createLogger(config.LOG_LEVEL, { service: 'orchestrator' });
  const service = new OrchestratorService(config, logger);
  onShutdown(async (signal) => {
    logger.info({ signal, withinMs: ORCHESTRATOR_STOP_MS.drain + ORCHESTRATOR_STOP_MS.handBack + ORCHESTRATOR_STOP_MS.cleanup }, 'shutting down');
    await service.stop();
  }, ORCHESTRATOR_STOP_LIMIT_MS);
  await service.start();
}

/** The orchestrator inside another process (`codegod build --local`). */
export async function startLocalOrchestrator(config: Config, logger: Logger): Promise<OrchestratorService> {
  const service = new OrchestratorService(config, logger);
  try {
    await service.start();
  } catch (err) {
    await service.stop().catch(() => undefined);
    throw err;
  }
  return service;
}

export const orchestratorProgram: OrchestratorProgram = { runOrchestrator, startLocalOrchestrator };

if (import.meta.url === `file://${process.argv[1]}`) runMain(() => runOrchestrator(loadConfig()));
