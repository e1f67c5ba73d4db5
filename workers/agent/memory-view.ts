import type { AgentMemory } from '../../shared/memory/schema.js';
import type { KnowledgeEntry } from '../../shared/memory/team-knowledge.js';
import { ownedKeysOf } from '../../shared/memory/team-knowledge.js';
import type { Role } from '../../shared/domain/roles.js';

/**
 * What of an agent's memory its prompts carry: its core knowledge always; of its working
 * memory only what concerns the task at hand (observations and reasoning of earlier attempts,
 * what it was blocked on), so one task's notes do not crowd another's prompt. After a wipe
 * there is no working memory left to show, which is what gives fresh reasoning. The build's
 * team knowledge is shown with the role that owns each key.
 */

/** Observations of a task carry this prefix, so a later attempt can find its own. */
export function taskTag(buildId: string, taskId: string): string {
  return `[${buildId}/${taskId}] `;
}

/** The lines of the memory block (one fact each, most important first), for fitting into a budget. */
export function memoryLines(memory: AgentMemory | null, team: readonly KnowledgeEntry[], task: { buildId: string; taskId: string; role: Role }): string[] {
  const lines: string[] = [];
  const core = Object.entries(memory?.knowledge ?? {});
  lines.push(core.length ? 'Your core knowledge (kept across tasks and wipes):' : 'Your core knowledge: none yet.');
  for (const [k, v] of core) lines.push(`- ${k}: ${v}`);

  lines.push(
    team.length
      ? `Team knowledge of this build (every agent reads it; you may write only the keys your role owns: ${ownedKeysOf(task.role)}):`
      : `Team knowledge of this build: none yet (you may write the keys your role owns: ${ownedKeysOf(task.role)}).`,
  );
  for (const e of team) lines.push(`- ${e.key} = ${e.value}${e.owner ? ` (owned by ${e.owner})` : ''}`);

  const tag = taskTag(task.buildId, task.taskId);
  const current = memory?.currentTask?.buildId === task.buildId && memory.currentTask.taskId === task.taskId;
  const blocked = current && memory?.blockedOn ? [`- you were blocked on: ${memory.blockedOn}`] : [];
  const reasoning = (memory?.reasoningHistory ?? [])
    .filter((r) => r.buildId === task.buildId && r.taskId === task.taskId)
    .map((r) => `- ${r.phase}: ${r.summary}`);
  const observed = (memory?.observations ?? []).filter((o) => o.startsWith(tag)).map((o) => `- observed: ${o.slice(tag.length)}`);
  const working = [...blocked, ...reasoning.reverse(), ...observed.reverse()];
  lines.push(working.length ? 'Your memory of this task from earlier attempts (most recent first):' : 'Your memory of this task: nothing from earlier attempts.');
  lines.push(...working);
  return lines;
}
