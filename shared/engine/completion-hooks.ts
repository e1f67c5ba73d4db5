import type { Logger } from '../logger.js';
import type { MemoryStore } from '../memory/store.js';
import { TaskResultSchema } from '../domain/agent-phases.js';
import type { CompletionHooks } from './role-worker.js';
import { applyFollowups } from './followups.js';
import { replanFailedTask } from './replan.js';
import type { Scheduler } from './scheduler.js';

/**
 * The orchestrator's decisions that must happen at the instant a task ends, before its
 * outcome releases or skips anything: follow-ups grow the DAG before the reporter completes;
 * a final failure is re-planned (once) instead of failing the build.
 */
export function orchestratorHooks(scheduler: Scheduler, memory: MemoryStore, logger: Logger): CompletionHooks {
  return {
    async beforeSuccess({ buildId, taskId, result }) {
      const parsed = TaskResultSchema.safeParse(result);
      if (!parsed.success || parsed.data.followups.length === 0) return;
      const refused = await applyFollowups(scheduler, buildId, taskId, parsed.data.followups);
      if (refused.length) logger.warn({ buildId, taskId, refused }, 'follow-ups refused');
    },
    async insteadOfFailure({ buildId, taskId, gen, reason, agentId }) {
      const replanned = await replanFailedTask(scheduler, memory, { buildId, taskId, gen, reason, agentId });
      if (replanned) logger.warn({ buildId, taskId, reason }, 'task failed; wiped the agent memory and re-planned it');
      return replanned;
    },
  };
}
