import type { Config } from './config.js';
import type { Logger } from './logger.js';

/**
 * The programs the `codegod` command launches, as the CLI sees them. The CLI never imports
 * the worker or orchestrator programs: bin/codegod.js hands it loaders for both, so each
 * program is loaded only by the commands that run it, and the layers stay one-way.
 */
export interface Running {
  /** Graceful: work in hand is finished (or handed back), then connections close. */
  stop(): Promise<void>;
}

export interface WorkerProgram {
  /** `codegod worker`: the worker of one role, until SIGTERM/SIGINT. */
  runWorker(config: Config, role?: string): Promise<void>;
  /** `codegod build --local`: one worker per role in this process, sharing one executor. */
  startLocalWorkers(config: Config, logger: Logger): Promise<Running>;
}

export interface OrchestratorProgram {
  /** `codegod orchestrator`: plans goals and keeps builds moving, until SIGTERM/SIGINT. */
  runOrchestrator(config: Config): Promise<void>;
  /** `codegod build --local`: the orchestrator in this process; `httpUrl` is its dashboard. */
  startLocalOrchestrator(config: Config, logger: Logger): Promise<Running & { readonly httpUrl: string | undefined }>;
}

export interface Programs {
  workers(): Promise<WorkerProgram>;
  orchestrator(): Promise<OrchestratorProgram>;
}
