import { z } from 'zod';
import { CodegodError, DataCorruptError } from '../domain/errors.js';
import { AGENT_ID_PATTERN, AgentMemorySchema, CheckpointSchema, MEMORY_LIMITS, describeIssues } from './schema.js';
import type { MemoryStore } from './store.js';

/**
 * Every agent's memory and checkpoints as one JSON document (`codegod memory export`), and
 * loading such a document back (`codegod memory import`).
 */
export const MemoryExportSchema = z
  .object({
    version: z.literal(1),
    exportedAt: z.iso.datetime(),
    agents: z.array(
      z.object({
        agentId: z.string().regex(AGENT_ID_PATTERN, 'not an agent id'),
        memory: AgentMemorySchema.nullable(),
        checkpoints: z.array(CheckpointSchema).max(MEMORY_LIMITS.checkpoints),
      }),
    ),
  })
  .superRefine((doc, ctx) => {
    const seen = new Set<string>();
    doc.agents.forEach((agent, i) => {
      if (seen.has(agent.agentId)) {
        ctx.addIssue({ code: 'custom', path: ['agents', i, 'agentId'], message: `agent ${agent.agentId} appears twice` });
      }
      seen.add(agent.agentId);
      if (agent.memory && agent.memory.agentId !== agent.agentId) {
        ctx.addIssue({ code: 'custom', path: ['agents', i, 'memory', 'agentId'], message: `must be ${agent.agentId}` });
      }
      const names = new Set<string>();
      agent.checkpoints.forEach((cp, j) => {
        if (names.has(cp.name)) {
          ctx.addIssue({ code: 'custom', path: ['agents', i, 'checkpoints', j, 'name'], message: `checkpoint ${cp.name} appears twice` });
        }
        names.add(cp.name);
        if (cp.memory.agentId !== agent.agentId) {
          ctx.addIssue({ code: 'custom', path: ['agents', i, 'checkpoints', j, 'memory', 'agentId'], message: `must be ${agent.agentId}` });
        }
      });
    });
  });
export type MemoryExport = z.infer<typeof MemoryExportSchema>;

export interface ImportResult {
  /** Memories written. */
  memories: number;
  /** Memories left alone because the agent already had one (merge mode). */
  memoriesSkipped: number;
  /** Checkpoints written. */
  checkpoints: number;
}

export class MemoryImportError extends CodegodError {
  constructor(readonly problems: string[]) {
    const shown = problems.slice(0, 20).join('; ');
    const more = problems.length > 20 ? `; and ${problems.length - 20} more` : '';
    super('MEMORY_INVALID', `invalid memory export: ${shown}${more}`, { exitCode: 2 });
  }
}

/**
 * Every known agent's memory and checkpoints, as one JSON-serialisable document. Each agent
 * is read consistently; the document as a whole is not a point-in-time snapshot of all
 * agents. Malformed values are logged and left out (a malformed memory exports as null).
 */
export async function exportMemories(store: MemoryStore): Promise<MemoryExport> {
  const agents: MemoryExport['agents'] = [];
  for (const agentId of await store.listAgents()) {
    let memory: MemoryExport['agents'][number]['memory'];
    try {
      memory = await store.get(agentId);
    } catch (err) {
      if (!(err instanceof DataCorruptError)) throw err;
      memory = null;
    }
    const checkpoints = await store.listCheckpoints(agentId);
    if (memory === null && checkpoints.length === 0) continue;
    agents.push({ agentId, memory, checkpoints });
  }
  return { version: 1, exportedAt: new Date().toISOString(), agents };
}

/**
 * Loads a document made by `exportMemories`, validated first as a whole (MemoryImportError
 * lists every problem, and nothing is written). With `replace`, each agent in the document
 * gets exactly its memory and checkpoints from it; without, existing memories and checkpoints
 * of the same name are kept and only what is missing is added. Agents absent from the
 * document are left alone either way.
 */
export async function importMemories(store: MemoryStore, doc: unknown, options: { replace: boolean }): Promise<ImportResult> {
  const parsed = MemoryExportSchema.safeParse(doc);
  if (!parsed.success) throw new MemoryImportError(describeIssues(parsed.error));
  const result: ImportResult = { memories: 0, memoriesSkipped: 0, checkpoints: 0 };
  for (const agent of parsed.data.agents) {
    if (agent.memory) {
      if (await store.putMemory(agent.agentId, agent.memory, { keepExisting: !options.replace })) result.memories += 1;
      else result.memoriesSkipped += 1;
    }
    result.checkpoints += await store.putCheckpoints(agent.agentId, agent.checkpoints, { replace: options.replace });
  }
  return result;
}
