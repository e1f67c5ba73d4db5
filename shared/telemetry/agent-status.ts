import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Keys } from '../redis/keys.js';

/** One agent's entry in `codegod:agents:status` (agent id → JSON), refreshed on every heartbeat. */
export const AgentStatusSchema = z.object({
  agentId: z.string(),
  role: z.string(),
  state: z.enum(['idle', 'busy', 'stopping', 'offline']),
  currentTasks: z.array(z.object({ buildId: z.string(), taskId: z.string(), since: z.number() })),
  heartbeat: z.number(),
  startedAt: z.number(),
  tasksCompleted: z.number().int(),
  tasksFailed: z.number().int(),
  concurrency: z.number().int(),
  pid: z.number().int(),
  host: z.string(),
});
export type AgentStatus = z.infer<typeof AgentStatusSchema>;

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
