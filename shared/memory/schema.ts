import { z } from 'zod';
import { CodegodError } from '../domain/errors.js';
import { PLAN_LIMITS, TASK_ID_PATTERN } from '../domain/plan.js';
import { ROLES } from '../domain/roles.js';
import { KNOWLEDGE_BUILD_ID_PATTERN, KNOWLEDGE_KEY_PATTERN } from './team-knowledge.js';

/**
 * Per-agent memory with the seed's semantics: role, current task, completed tasks, core
 * knowledge, observations, reasoning history, blocked_on. A wipe clears the working state and
 * keeps role and core knowledge; checkpoints are named snapshots that can be restored.
 *
 * Every list grows without bound in a long-running agent unless trimmed, and the whole memory
 * is one Redis string rewritten on every change, so growth is bounded here: the limits below
 * are enforced by the functions that add entries and by the schema that reads memory back.
 */
export const MEMORY_LIMITS = {
  observations: 50,
  reasoningHistory: 50,
  completedTasks: 500,
  knowledgeKeys: 200,
  textMaxChars: 2_000,
  checkpoints: 50,
  /** Length of the excerpts of dropped observations kept in the leading summary entry. */
  droppedExcerptChars: 400,
} as const;

/** Agent ids become part of key names, hence the same charset as AGENT_ID in the config. */
export const AGENT_ID_PATTERN = /^[A-Za-z0-9_.-]{1,80}$/;
/** Admits ISO timestamps, the default checkpoint name. */
export const CHECKPOINT_NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;

export const MEMORY_ROLES = [...ROLES, 'master'] as const;
export const MemoryRoleSchema = z.enum(MEMORY_ROLES);
export type MemoryRole = z.infer<typeof MemoryRoleSchema>;

export const REASONING_PHASES = ['observe', 'reason', 'plan', 'act', 'validate'] as const;
export const ReasoningPhaseSchema = z.enum(REASONING_PHASES);
export type ReasoningPhase = z.infer<typeof ReasoningPhaseSchema>;

const TextSchema = z.string().max(MEMORY_LIMITS.textMaxChars);
const BuildIdSchema = z.string().regex(KNOWLEDGE_BUILD_ID_PATTERN, 'not a build id');
const TaskIdSchema = z.string().max(PLAN_LIMITS.idMaxChars).regex(TASK_ID_PATTERN, 'not a task id');
const IsoTimeSchema = z.iso.datetime();

export const CurrentTaskSchema = z.object({ buildId: BuildIdSchema, taskId: TaskIdSchema, title: TextSchema });
export type CurrentTask = z.infer<typeof CurrentTaskSchema>;

export const ReasoningEntrySchema = z.object({
  buildId: BuildIdSchema,
  taskId: TaskIdSchema,
  phase: ReasoningPhaseSchema,
  summary: TextSchema,
  at: IsoTimeSchema,
});
export type ReasoningEntry = z.infer<typeof ReasoningEntrySchema>;

export const AgentMemorySchema = z.object({
  agentId: z.string().regex(AGENT_ID_PATTERN, 'not an agent id'),
  role: MemoryRoleSchema,
  currentTask: CurrentTaskSchema.nullable(),
  /** `buildId/taskId`, oldest first. */
  completedTasks: z.array(z.string().min(3).max(120)).max(MEMORY_LIMITS.completedTasks),
  /** Core knowledge: survives wipes. */
  knowledge: z
    .record(z.string().regex(KNOWLEDGE_KEY_PATTERN, 'not a knowledge key'), TextSchema)
    .refine((k) => Object.keys(k).length <= MEMORY_LIMITS.knowledgeKeys, {
      message: `at most ${MEMORY_LIMITS.knowledgeKeys} knowledge keys`,
    }),
  /** Oldest first; a leading entry may summarise observations dropped to stay bounded. */
  observations: z.array(TextSchema).max(MEMORY_LIMITS.observations),
  reasoningHistory: z.array(ReasoningEntrySchema).max(MEMORY_LIMITS.reasoningHistory),
  blockedOn: TextSchema.nullable(),
  updatedAt: IsoTimeSchema,
  wipes: z.number().int().min(0),
  /** Number of writes so far; a write succeeds only against the version it was based on. */
  version: z.number().int().min(0),
});
export type AgentMemory = z.infer<typeof AgentMemorySchema>;

export const CheckpointSchema = z.object({
  name: z.string().regex(CHECKPOINT_NAME_PATTERN, 'not a checkpoint name'),
  at: IsoTimeSchema,
  memory: AgentMemorySchema,
});
export type Checkpoint = z.infer<typeof CheckpointSchema>;

export class MemoryConflictError extends CodegodError {
  constructor(agentId: string, detail: string) {
    super('MEMORY_CONFLICT', `memory of agent ${agentId} changed concurrently: ${detail}`);
  }
}

/** A memory (or a write to one) that breaks the schema or the limits. */
export function invalid(message: string): CodegodError {
  return new CodegodError('MEMORY_INVALID', message, { exitCode: 2 });
}

export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.map(String).join('.') : 'document'}: ${i.message}`);
}

export function checkAgentId(agentId: string): void {
  if (!AGENT_ID_PATTERN.test(agentId)) throw invalid(`'${agentId.slice(0, 80)}' is not a valid agent id`);
}
