import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Keys } from '../redis/keys.js';
import { loadLuaScript } from '../redis/lua-loader.js';

/**
 * Token usage and latency of LLM requests. One record per HTTP request to the LLM (a
 * structured call that needed a repair round makes two), so the counters show what the GPU
 * actually did. Retries the SDK makes internally (429, 5xx, connection errors) return no
 * usage and are not counted.
 */

/** Role and phase names: they become Redis hash field prefixes (`<role>:calls`) and HTTP header values. */
export const LlmNameSchema = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'lowercase letters, digits, _ and - (max 32)');

export const LlmCallSchema = z.object({
  role: LlmNameSchema,
  phase: LlmNameSchema,
  model: z.string().min(1),
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  /** The prompt's size by codegod's own token estimate (what prompt budgets are held to). */
  promptEstimate: z.number().int().min(0).optional(),
  ms: z.number().int().min(0),
  /** 1 for the first request of a structured call, 2 for its first repair, … */
  attempt: z.number().int().min(1),
  /** The request returned a reply that passed validation. */
  ok: z.boolean(),
  buildId: z.string().min(1).optional(),
  taskId: z.string().min(1).optional(),
  agentId: z.string().min(1).optional(),
  /** Why the request failed (one line), when it did. */
  error: z.string().optional(),
});
export type LlmCall = z.infer<typeof LlmCallSchema>;

export interface UsageRecorder {
  record(call: LlmCall): Promise<void>;
}

/** For callers without Redis (a connectivity check, unit tests). */
export const nullUsageRecorder: UsageRecorder = {
  record: async () => undefined,
};

/**
 * One script per call so the per-call stream entry and all counters move together: a reader
 * never sees a build's tokens without the matching call, or role totals that disagree with
 * the overall ones. Build- and task-scoped writes happen only while those hashes exist, so a
 * straggling call finishing after its build was removed does not resurrect a stub record.
 * Which script depends on the call's scope: none, a build, or a task of a build.
 */
const recordScript = (file: string) => loadLuaScript(new URL(`./lua/${file}.lua`, import.meta.url), z.literal(1));
const RECORD_CALL = recordScript('recordLlmCall-1');
const RECORD_BUILD_CALL = recordScript('recordBuildLlmCall-3');
const RECORD_TASK_CALL = recordScript('recordTaskLlmCall-4');

/**
 * Records into Redis: an entry on `keys.llmCalls(build)`, counters `llmCalls`, `promptTokens`,
 * `completionTokens`, `llmMs` on the task and build hashes, and `calls`, `promptTokens`,
 * `completionTokens`, `ms`, `failed` (total and as `<role>:…`) on `keys.metricsLlm`. A call
 * without a build records only the metrics hash.
 */
export class RedisUsageRecorder implements UsageRecorder {
  /** `maxLen`: approximate cap on entries in each build's LLM call stream. */
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly maxLen = 100_000,
  ) {}

  async record(input: LlmCall): Promise<void> {
    const call = LlmCallSchema.parse(input);
    const keys = [this.keys.metricsLlm];
    let script = RECORD_CALL;
    if (call.buildId !== undefined) {
      keys.push(this.keys.llmCalls(call.buildId), this.keys.build(call.buildId));
      script = RECORD_BUILD_CALL;
      if (call.taskId !== undefined) {
        keys.push(this.keys.task(call.buildId, call.taskId));
        script = RECORD_TASK_CALL;
      }
    }
    const entry: string[] = [
      'phase', call.phase,
      'role', call.role,
      'model', call.model,
      'promptTokens', String(call.promptTokens),
      'completionTokens', String(call.completionTokens),
      'ms', String(call.ms),
      'attempt', String(call.attempt),
      'ok', call.ok ? '1' : '0',
    ];
    if (call.promptEstimate !== undefined) entry.push('promptEstimate', String(call.promptEstimate));
    if (call.taskId !== undefined) entry.push('task', call.taskId);
    if (call.agentId !== undefined) entry.push('agent', call.agentId);
    if (call.error !== undefined) entry.push('error', call.error.slice(0, 300));
    await script.run(this.redis, keys, [
      call.role,
      call.promptTokens,
      call.completionTokens,
      call.ms,
      call.ok ? '1' : '0',
      this.maxLen,
      ...entry,
    ]);
  }
}
