import type { BuildRecord } from '../../shared/domain/build.js';

/**
 * Exit codes of the `codegod` command, in one place so scripts can rely on them.
 *
 * | code | meaning                                                                            |
 * |------|------------------------------------------------------------------------------------|
 * | 0    | success (for `build`: the build succeeded)                                         |
 * | 1    | the build failed: a task failed for good (the message names the task, its reason   |
 * |      | and `codegod trace <build> <task>`); for `doctor`: a check failed                  |
 * | 2    | bad input: usage, goal, configuration, an unreadable file, a request the build's   |
 * |      | state does not allow (cancel an ended build), a declined `wipe`                    |
 * | 3    | Redis unreachable, or full (maxmemory reached: `codegod prune`)                    |
 * | 4    | not found: build, task, agent memory or checkpoint                                 |
 * | 5    | LLM unreachable, model unknown, or structured output refused (failure code         |
 * |      | LLM_UNREACHABLE, LLM_MODEL_UNKNOWN, LLM_STRUCTURED_OUTPUT_REFUSED)                 |
 * | 6    | the plan was still invalid after the planner's re-asks (PLAN_INVALID)              |
 * | 7    | the build's token budget is spent (LLM_BUDGET)                                     |
 * | 8    | the build was cancelled                                                            |
 * | 124  | `--timeout` reached while following; the build goes on                             |
 * | 130  | interrupted (Ctrl-C) while following; the build goes on                            |
 */
export const EXIT = {
  OK: 0,
  BUILD_FAILED: 1,
  CHECKS_FAILED: 1,
  USAGE: 2,
  REDIS_UNREACHABLE: 3,
  NOT_FOUND: 4,
  LLM: 5,
  PLAN_INVALID: 6,
  BUDGET: 7,
  CANCELLED: 8,
  TIMEOUT: 124,
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Build failure codes (BuildRecord.failureCode) with an exit code of their own; any other failure is 1. */
const FAILURE_EXIT: Readonly<Record<string, ExitCode>> = {
  TASK_FAILED: EXIT.BUILD_FAILED,
  PLAN_INVALID: EXIT.PLAN_INVALID,
  LLM_UNREACHABLE: EXIT.LLM,
  LLM_MODEL_UNKNOWN: EXIT.LLM,
  LLM_STRUCTURED_OUTPUT_REFUSED: EXIT.LLM,
  LLM_BUDGET: EXIT.BUDGET,
};

/**
 * The exit code of a build in the state it is in. A build that has not ended has none:
 * callers decide (124 after --timeout, 130 after Ctrl-C).
 */
export function exitCodeForBuild(build: Pick<BuildRecord, 'state' | 'failureCode'>): ExitCode | undefined {
  switch (build.state) {
    case 'succeeded':
      return EXIT.OK;
    case 'cancelled':
      return EXIT.CANCELLED;
    case 'failed':
      return FAILURE_EXIT[build.failureCode ?? ''] ?? EXIT.BUILD_FAILED;
    default:
      return undefined;
  }
}
