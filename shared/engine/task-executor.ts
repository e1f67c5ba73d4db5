import type { Logger } from '../logger.js';
import type { TaskSpec } from '../domain/plan.js';
import type { Role } from '../domain/roles.js';
import type { AgentPhase } from '../telemetry/agent-status.js';

export type { AgentPhase };

/** What a worker hands its executor for one attempt of one task. */
export interface TaskContext {
  buildId: string;
  taskId: string;
  spec: TaskSpec;
  role: Role;
  /** Generation of the task (bumped by a manual retry); checkpoints of older generations are ignored. */
  gen: number;
  /** 1 for the first attempt; higher after a failure or a crash of an earlier worker. */
  attempt: number;
  agentId: string;
  /** Aborted on cancel, timeout or shutdown; executors must stop promptly when it fires. */
  signal: AbortSignal;
  logger: Logger;
  /** Reports the phase the task is in; it shows as the agent's live state (a task that reports none is `acting`). */
  setPhase(phase: AgentPhase): void;
}

/**
 * Runs one task. Resolve with a JSON-serialisable result on success; throw on failure (the
 * task is retried up to CODEGOD_TASK_ATTEMPTS times) or throw `TaskFailedError` with
 * `retryable: false` to fail it for good at once.
 */
export interface TaskExecutor {
  execute(ctx: TaskContext): Promise<unknown>;
  close?(): Promise<void>;
}

export class TaskFailedError extends Error {
  constructor(
    message: string,
    readonly retryable = true,
    readonly detail?: unknown,
  ) {
    super(message);
    this.name = 'TaskFailedError';
  }
}
