import { loadConfig, type Config } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { onShutdown, runMain } from '../shared/process.js';
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

if (import.meta.url === `file://${process.argv[1]}`) runMain(() => runOrchestrator(loadConfig()));
