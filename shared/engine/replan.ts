import { PLAN_LIMITS } from '../domain/plan.js';
import type { MemoryStore } from '../memory/store.js';
import type { Scheduler } from './scheduler.js';

/**
 * The master's answer to a task that failed for good: once per task (configurable), wipe the
 * working memory of the agent that was stuck and start the task over under a revised
 * description that tells the next agent what went wrong. Its dependents keep waiting; the
 * build only fails if the re-planned task fails too.
 */
export async function replanFailedTask(
  scheduler: Scheduler,
  memory: MemoryStore,
  input: { buildId: string; taskId: string; gen: number; reason: string; agentId: string },
): Promise<boolean> {
  const max = scheduler.options.replansPerTask;
  if (max === 0) return false;
  const task = await scheduler.dag.getTask(input.buildId, input.taskId);
  const note = `\n\nA previous attempt at this task failed: ${input.reason.slice(0, 600)}\nTake a different approach.`;
  const spec = { ...task.spec, description: `${task.spec.description.slice(0, PLAN_LIMITS.descriptionMaxChars - note.length)}${note}` };
  const ready = await scheduler.dag.replanTask(input.buildId, input.taskId, input.gen, spec, input.reason, max);
  if (!ready) return false;
  await memory.wipe(input.agentId).catch(() => null);
  await scheduler.queues.enqueue(input.buildId, [ready]);
  return true;
}
