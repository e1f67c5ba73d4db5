import { z } from 'zod';
import { DataCorruptError } from './errors.js';
import { RoleSchema } from './roles.js';
import { TaskSpecSchema } from './plan.js';

/**
 * The shapes of a build and its tasks as stored in Redis hashes (see shared/redis/keys.ts), parsed
 * with zod on every read: a hand-edited key fails the read with DataCorruptError naming the
 * key, never with a crash deeper down.
 */
/** planning: submitted, waiting for the orchestrator's plan · running: its DAG is executing. */
export const BUILD_STATES = ['planning', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export const TERMINAL_BUILD_STATES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);
export const BuildStateSchema = z.enum(BUILD_STATES);
export type BuildState = z.infer<typeof BuildStateSchema>;

/** pending: waits on dependencies · queued: has a job · running: a worker holds it. */
export const TASK_STATES = ['pending', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'] as const;
export const TaskStateSchema = z.enum(TASK_STATES);
export type TaskState = z.infer<typeof TaskStateSchema>;

export const BUILD_ID_PATTERN = /^b-[a-z0-9]{4,16}-[a-z0-9]{4,12}$/;
export const BuildIdSchema = z.string().regex(BUILD_ID_PATTERN, 'not a build id');

/** Field codecs shared by every reader of these hashes. */
export const count = z.coerce.number().int().min(0);
const optionalMs = z.coerce.number().int().min(0).optional();
export const csv = z
  .string()
  .default('')
  .transform((s) => (s ? s.split(',') : []));

export const BuildRecordSchema = z.object({
  id: BuildIdSchema,
  goal: z.string(),
  state: BuildStateSchema,
  createdAt: z.coerce.number().int(),
  finishedAt: optionalMs,
  total: count,
  open: count,
  succeeded: count.default(0),
  failed: count.default(0),
  skipped: count.default(0),
  cancelled: count.default(0),
  maxTasks: count,
  failedTask: z.string().optional(),
  reason: z.string().optional(),
  /** Why a build ended failed, for exit codes: TASK_FAILED, PLAN_INVALID, LLM_UNREACHABLE, LLM_MODEL_UNKNOWN, LLM_BUDGET… */
  failureCode: z.string().optional(),
  summary: z.string().default(''),
  graphVersion: count.default(0),
  /** Stop the build cleanly once its LLM calls used this many tokens (0: no limit). */
  budgetTokens: count.default(0),
  /** Model override for this build's LLM calls. */
  model: z.string().optional(),
  promptTokens: count.default(0),
  completionTokens: count.default(0),
  llmCalls: count.default(0),
  /** Planner re-asks after invalid plans. */
  planAttempts: count.default(0),
});
export type BuildRecord = z.infer<typeof BuildRecordSchema>;

const specJson = z.string().transform((s, ctx) => {
  try {
    const parsed = TaskSpecSchema.safeParse(JSON.parse(s));
    if (parsed.success) return parsed.data;
    ctx.addIssue({ code: 'custom', message: parsed.error.issues[0]?.message ?? 'bad task spec' });
  } catch {
    ctx.addIssue({ code: 'custom', message: 'spec is not JSON' });
  }
  return z.NEVER;
});

export const TaskRecordSchema = z.object({
  spec: specJson,
  role: RoleSchema,
  deps: csv,
  dependents: csv,
  /** Dependencies not yet succeeded; absent on a task created with none. */
  remaining: z.coerce.number().int().default(0),
  gen: count,
  attempts: count.default(0),
  depth: count.default(0),
  origin: z.string().default('plan'),
  queuedAt: optionalMs,
  startedAt: optionalMs,
  finishedAt: optionalMs,
  worker: z.string().optional(),
  error: z.string().optional(),
  result: z.string().optional(),
  replans: count.default(0),
  /** The failure that made the orchestrator re-plan this task. */
  lastError: z.string().optional(),
});
export type TaskRecord = z.infer<typeof TaskRecordSchema>;

export function parseRecord<S extends z.ZodType>(schema: S, raw: Record<string, string>, key: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new DataCorruptError(key, `${issue?.path.join('.') || 'record'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}
