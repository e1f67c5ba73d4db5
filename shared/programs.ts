import type { Config } from './config.js';
import type { Logger } from './logger.js';

/**
 * The programs the `codegod` command launches, as the CLI sees them. The CLI never imports
 * the worker or orchestrator programs, nor the scripted LLM: bin/codegod.js hands it loaders
 * for them, so each program is loaded only by the commands that run it, and the layers stay
 * one-way.
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

/** The scripted OpenAI-compatible server (scripts/llm-server), for `codegod demo`. */
export interface ScriptedLlmProgram {
  /** The scenario `codegod demo` builds: a todo app, answered phase by phase. */
  readonly demoScenarioPath: string;
  /** Listens on 127.0.0.1 (`port` 0 or unset: a free port); `url` ends in `/v1`. */
  start(options: { scenarioPath: string; port?: number }): Promise<{ readonly url: string; close(): Promise<void> }>;
}

export interface Programs {
  workers(): Promise<WorkerProgram>;
  orchestrator(): Promise<OrchestratorProgram>;
  scriptedLlm(): Promise<ScriptedLlmProgram>;
}
