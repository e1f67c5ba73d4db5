import { loadConfig, type Config } from '../shared/config.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { onShutdown, runMain } from '../shared/process.js';
import type { OrchestratorProgram } from '../shared/programs.js';
import { OrchestratorService } from './service.js';

export async function runOrchestrator(config: Config): Promise<void> {
  const logger = createLogger(config.LOG_LEVEL, { service: 'orchestrator' });
  const service = new OrchestratorService(config, logger);
  onShutdown(async (signal) => {
    logger.info({ signal }, 'shutting down');
    await service.stop();
  });
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
