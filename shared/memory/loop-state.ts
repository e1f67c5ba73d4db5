import type { Redis } from 'ioredis';
import { z } from 'zod';
import { errorMessage } from '../domain/errors.js';
import type { Keys } from '../redis/keys.js';
import type { Logger } from '../logger.js';
import { CheckSchema, ReasonSchema } from '../domain/agent-phases.js';

/**
 * The ORPAV checkpoint of one task, saved to Redis after every phase and after every Act
 * step. It is also the task's trace (every phase's output, every action with exit code and
 * clipped output, tokens and durations) that `codegod trace` and the dashboard show.
 */
const usage = z.object({
  promptTokens: z.number().int(),
  completionTokens: z.number().int(),
  calls: z.number().int(),
  /** The prompt's size by codegod's estimate, and the parts cut to fit the prompt budget. */
  prompt: z.object({ estimate: z.number().int(), cut: z.array(z.string()) }).optional(),
});

export const StepRecordSchema = z.object({
  index: z.number().int(),
  action: z.string(),
  params: z.record(z.string(), z.unknown()),
  expected: z.string(),
  ok: z.boolean(),
  output: z.string(),
  exitCode: z.number().int().nullable().optional(),
  ms: z.number(),
  followups: z.array(z.unknown()).optional(),
  /** What the step did, for the task's handoff: files written, commands that passed, knowledge recorded. */
  files: z.array(z.string()).optional(),
  commands: z.array(z.string()).optional(),
  knowledge: z.record(z.string(), z.string()).optional(),
});
export type StepRecord = z.infer<typeof StepRecordSchema>;

export const CheckRecordSchema = CheckSchema.extend({ ok: z.boolean(), output: z.string() });
export type CheckRecord = z.infer<typeof CheckRecordSchema>;

export const IterationSchema = z.object({
  n: z.number().int(),
  observe: z.object({ facts: z.record(z.string(), z.unknown()), findings: z.array(z.string()), ms: z.number() }).optional(),
  reason: z.object({ output: ReasonSchema, ms: z.number(), usage }).optional(),
  plan: z
    .object({
      steps: z.array(z.object({ action: z.string(), params: z.record(z.string(), z.unknown()), expected: z.string() })),
      estimated_duration: z.string(),
      confidence: z.number(),
      ms: z.number(),
      usage,
    })
    .optional(),
  act: z.object({ steps: z.array(StepRecordSchema), done: z.boolean(), ms: z.number() }).optional(),
  validate: z.object({ checks: z.array(CheckRecordSchema), valid: z.boolean(), output: z.string(), ms: z.number(), usage }).optional(),
  /** Why this iteration failed: fed to the next one. */
  failure: z.string().optional(),
});
export type Iteration = z.infer<typeof IterationSchema>;

export const LoopStateSchema = z.object({
  version: z.literal(1),
  gen: z.number().int(),
  iterations: z.array(IterationSchema),
  /** Signatures of failed iterations since the last wipe, for stuck detection. */
  failedPlans: z.array(z.string()),
  failedErrors: z.array(z.string()),
  wiped: z.boolean(),
  /** Iteration number at which the working memory was wiped (fresh reasoning from there). */
  wipedAt: z.number().int().optional(),
  status: z.enum(['running', 'succeeded', 'failed']),
  outcome: z.string().optional(),
  startedAt: z.number(),
  updatedAt: z.number(),
});
export type LoopState = z.infer<typeof LoopStateSchema>;

export function freshLoopState(gen: number): LoopState {
  const now = Date.now();
  return { version: 1, gen, iterations: [], failedPlans: [], failedErrors: [], wiped: false, status: 'running', startedAt: now, updatedAt: now };
}

export class LoopStateStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly logger: Logger,
  ) {}

  /**
   * The saved state of a task's current generation, or a fresh one. A malformed checkpoint
   * (hand-edited) is logged and replaced: the task starts over rather than failing.
   */
  async load(buildId: string, taskId: string, gen: number): Promise<LoopState> {
    const raw = await this.redis.hget(this.keys.loopState(buildId, taskId), 'state');
    if (!raw) return freshLoopState(gen);
    try {
      const parsed = LoopStateSchema.safeParse(JSON.parse(raw));
      if (parsed.success) return parsed.data.gen === gen ? parsed.data : freshLoopState(gen);
      this.logger.warn({ buildId, taskId, problem: parsed.error.issues[0]?.message }, 'malformed loop checkpoint; starting the task over');
    } catch (err) {
      this.logger.warn({ buildId, taskId, err: errorMessage(err) }, 'unreadable loop checkpoint; starting the task over');
    }
    return freshLoopState(gen);
  }

  async save(buildId: string, taskId: string, state: LoopState): Promise<void> {
    state.updatedAt = Date.now();
    await this.redis.hset(this.keys.loopState(buildId, taskId), 'state', JSON.stringify(state));
  }

  /** The trace as stored, for readers (CLI, dashboard); undefined when the task never ran. */
  async read(buildId: string, taskId: string): Promise<LoopState | undefined> {
    const raw = await this.redis.hget(this.keys.loopState(buildId, taskId), 'state');
    if (!raw) return undefined;
    const parsed = LoopStateSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  }
}
