import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Keys } from '../redis/keys.js';

/** What a running task is doing: the ORPAV phase it is in. */
export const AGENT_PHASES = ['observing', 'reasoning', 'planning', 'acting', 'validating'] as const;
export const AgentPhaseSchema = z.enum(AGENT_PHASES);
export type AgentPhase = z.infer<typeof AgentPhaseSchema>;

/**
 * An agent's live state. With a task: the phase of its oldest running task (the orchestrator
 * is `planning` while it plans a goal). Without: `idle`; `backoff` while a failed attempt
 * waits for its retry; `error` when its last task failed for good (until it takes the next);
 * `stopping` while a shutdown lets running tasks finish; `offline` once stopped.
 */
export const AGENT_STATES = ['idle', ...AGENT_PHASES, 'backoff', 'error', 'stopping', 'offline'] as const;
export const AgentStateSchema = z.enum(AGENT_STATES);
export type AgentState = z.infer<typeof AgentStateSchema>;

const CurrentTaskSchema = z.object({ buildId: z.string(), taskId: z.string(), since: z.number(), phase: AgentPhaseSchema.optional() });

/** One agent's entry in `codegod:agents:status` (agent id → JSON), refreshed on every heartbeat and phase change. */
export const AgentStatusSchema = z.object({
  agentId: z.string(),
  role: z.string(),
  // `busy` is what versions before the phases wrote for any running task; their entries stay
  // readable (and expirable) after an upgrade.
  state: z.preprocess((v) => (v === 'busy' ? 'acting' : v), AgentStateSchema),
  /** Oldest first; `phase` is what the task is doing. */
  currentTasks: z.array(CurrentTaskSchema),
  heartbeat: z.number(),
  startedAt: z.number(),
  tasksCompleted: z.number().int(),
  tasksFailed: z.number().int(),
  concurrency: z.number().int(),
  pid: z.number().int(),
  host: z.string(),
});
export type AgentStatus = z.infer<typeof AgentStatusSchema>;

/** What readers show besides the stored fields: the task the state is about, and the uptime as of the last heartbeat. */
export function agentSummary(a: AgentStatus): { currentTask: AgentStatus['currentTasks'][number] | null; uptimeMs: number } {
  return { currentTask: a.currentTasks[0] ?? null, uptimeMs: Math.max(0, a.heartbeat - a.startedAt) };
}

/** All agents with a parseable status; malformed entries are reported, not thrown. */
export async function listAgents(redis: Redis, keys: Keys): Promise<{ agents: AgentStatus[]; malformed: string[] }> {
  const raw = await redis.hgetall(keys.agentsStatus);
  const agents: AgentStatus[] = [];
  const malformed: string[] = [];
  for (const [id, json] of Object.entries(raw)) {
    try {
      const parsed = AgentStatusSchema.safeParse(JSON.parse(json));
      if (parsed.success) agents.push(parsed.data);
      else malformed.push(id);
    } catch {
      malformed.push(id);
    }
  }
  return { agents: agents.sort((a, b) => a.agentId.localeCompare(b.agentId)), malformed };
}
