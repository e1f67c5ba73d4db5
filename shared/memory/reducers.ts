import { KNOWLEDGE_KEY_PATTERN } from './team-knowledge.js';
import { invalid, MEMORY_LIMITS, type AgentMemory, type CurrentTask, type MemoryRole, type ReasoningEntry, type ReasoningPhase } from './schema.js';

/**
 * Pure transitions of an agent's memory (the seed's operations: start, complete, observe,
 * reason, block, learn, wipe). None of them stamps `updatedAt` or `version`: the store does
 * that when it writes, so these stay deterministic and may run more than once in a retried
 * compare-and-set.
 */

/**
 * `value` cut to at most `max` characters, ending with a note saying how much was cut, so a
 * reader (or the LLM) knows the text is incomplete.
 */
export function clipText(value: string, max: number = MEMORY_LIMITS.textMaxChars): string {
  if (value.length <= max) return value;
  const note = (n: number) => ` … [${n} more characters clipped]`;
  let keep = Math.max(0, max - note(value.length).length);
  // Never split a surrogate pair: half of one is not valid text.
  const last = value.charCodeAt(keep - 1);
  if (keep > 0 && last >= 0xd800 && last <= 0xdbff) keep -= 1;
  return value.slice(0, keep) + note(value.length - keep);
}

export function emptyMemory(agentId: string, role: MemoryRole, now: Date = new Date()): AgentMemory {
  return {
    agentId,
    role,
    currentTask: null,
    completedTasks: [],
    knowledge: {},
    observations: [],
    reasoningHistory: [],
    blockedOn: null,
    updatedAt: now.toISOString(),
    wipes: 0,
    version: 0,
  };
}

/** Clears current task, completed tasks, observations, reasoning history and blockedOn; keeps role and core knowledge. */
export function wipeMemory(m: AgentMemory): AgentMemory {
  return {
    ...m,
    currentTask: null,
    completedTasks: [],
    observations: [],
    reasoningHistory: [],
    blockedOn: null,
    wipes: m.wipes + 1,
  };
}

export function startTask(m: AgentMemory, task: CurrentTask): AgentMemory {
  return {
    ...m,
    currentTask: { buildId: task.buildId, taskId: task.taskId, title: clipText(task.title) },
    blockedOn: null,
  };
}

export function setBlockedOn(m: AgentMemory, reason: string | null): AgentMemory {
  return { ...m, blockedOn: reason === null ? null : clipText(reason) };
}

/**
 * Records `buildId/taskId` as completed (once; completing it again moves it to the end) and,
 * when it was the current task, clears the current task and what it was blocked on. The oldest
 * entries beyond MEMORY_LIMITS.completedTasks are dropped.
 */
export function completeTask(m: AgentMemory, task: { buildId: string; taskId: string }): AgentMemory {
  const ref = `${task.buildId}/${task.taskId}`;
  const completed = [...m.completedTasks.filter((r) => r !== ref), ref].slice(-MEMORY_LIMITS.completedTasks);
  const wasCurrent = m.currentTask?.buildId === task.buildId && m.currentTask.taskId === task.taskId;
  return {
    ...m,
    completedTasks: completed,
    ...(wasCurrent ? { currentTask: null, blockedOn: null } : {}),
  };
}

// The summary takes one of the slots, so a trim always drops at least two observations.
const DROPPED_SUMMARY = /^\((\d+) earlier observations dropped: ([\s\S]*)\)$/;

function droppedSummary(count: number, excerpts: string): string {
  const max = MEMORY_LIMITS.droppedExcerptChars;
  const kept = excerpts.length > max ? `…${excerpts.slice(-(max - 1))}` : excerpts;
  return `(${count} earlier observations dropped: ${kept})`;
}

function firstWords(text: string): string {
  const words = text.trim().split(/\s+/).slice(0, 6).join(' ');
  return words.length > 60 ? `${words.slice(0, 59)}…` : words;
}

/**
 * Appends an observation (clipped to MEMORY_LIMITS.textMaxChars). Beyond
 * MEMORY_LIMITS.observations entries, the oldest are folded into one leading summary entry that
 * counts them and keeps their first words, so the agent knows something was there.
 */
export function addObservation(m: AgentMemory, observation: string): AgentMemory {
  const limit = MEMORY_LIMITS.observations;
  const all = [...m.observations, clipText(observation)];
  if (all.length <= limit) return { ...m, observations: all };
  const previous = DROPPED_SUMMARY.exec(all[0] ?? '');
  const rest = previous ? all.slice(1) : all;
  const dropped = rest.slice(0, rest.length - (limit - 1));
  const kept = rest.slice(rest.length - (limit - 1));
  const count = Number(previous?.[1] ?? 0) + dropped.length;
  const excerpts = [...(previous?.[2] ? [previous[2]] : []), ...dropped.map(firstWords)].join(' | ');
  return { ...m, observations: [droppedSummary(count, excerpts), ...kept] };
}

/** Appends one reasoning step; the oldest beyond MEMORY_LIMITS.reasoningHistory are dropped. */
export function addReasoning(
  m: AgentMemory,
  entry: { buildId: string; taskId: string; phase: ReasoningPhase; summary: string },
  at: Date = new Date(),
): AgentMemory {
  const step: ReasoningEntry = {
    buildId: entry.buildId,
    taskId: entry.taskId,
    phase: entry.phase,
    summary: clipText(entry.summary),
    at: at.toISOString(),
  };
  return { ...m, reasoningHistory: [...m.reasoningHistory, step].slice(-MEMORY_LIMITS.reasoningHistory) };
}

/**
 * Sets one entry of core knowledge (kept across wipes). Refuses a malformed key, and a new key
 * once MEMORY_LIMITS.knowledgeKeys are held: core knowledge is curated, not a log.
 */
export function setKnowledge(m: AgentMemory, key: string, value: string): AgentMemory {
  if (!KNOWLEDGE_KEY_PATTERN.test(key)) {
    throw invalid(`knowledge key '${key.slice(0, 80)}' must match ${KNOWLEDGE_KEY_PATTERN.source} (e.g. venv_path)`);
  }
  if (!(key in m.knowledge) && Object.keys(m.knowledge).length >= MEMORY_LIMITS.knowledgeKeys) {
    throw invalid(`agent ${m.agentId} already holds ${MEMORY_LIMITS.knowledgeKeys} knowledge keys; cannot add '${key}'`);
  }
  return { ...m, knowledge: { ...m.knowledge, [key]: clipText(value) } };
}
