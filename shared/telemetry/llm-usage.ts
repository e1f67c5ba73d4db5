import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Keys } from '../redis/keys.js';

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
 * One script so the per-call stream entry and all counters move together: a reader never sees
 * a build's tokens without the matching call, or role totals that disagree with the overall
 * ones. Build- and task-scoped writes happen only while those hashes exist, so a straggling
 * call finishing after its build was removed does not resurrect a stub record.
 *
 * KEYS: metrics hash, then optionally the build's llm stream and build hash, then optionally
 * the task hash. ARGV: role, promptTokens, completionTokens, ms, ok (1/0), stream maxlen,
 * then the stream entry's field/value pairs.
 */
const RECORD_SCRIPT = `
local role = ARGV[1]
local p, c, ms = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local failed = ARGV[5] == '1' and 0 or 1
local m = KEYS[1]
for _, prefix in ipairs({'', role .. ':'}) do
  redis.call('HINCRBY', m, prefix .. 'calls', 1)
  redis.call('HINCRBY', m, prefix .. 'promptTokens', p)
  redis.call('HINCRBY', m, prefix .. 'completionTokens', c)
  redis.call('HINCRBY', m, prefix .. 'ms', ms)
  if failed == 1 then redis.call('HINCRBY', m, prefix .. 'failed', 1) end
end
local function bump(key)
  redis.call('HINCRBY', key, 'llmCalls', 1)
  redis.call('HINCRBY', key, 'promptTokens', p)
  redis.call('HINCRBY', key, 'completionTokens', c)
  redis.call('HINCRBY', key, 'llmMs', ms)
end
if #KEYS >= 3 and redis.call('EXISTS', KEYS[3]) == 1 then
  bump(KEYS[3])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', unpack(ARGV, 7))
  if #KEYS >= 4 and redis.call('EXISTS', KEYS[4]) == 1 then bump(KEYS[4]) end
end
return 1
`;

type RecordCommand = (numKeys: number, ...keysAndArgs: (string | number)[]) => Promise<unknown>;

/**
 * Records into Redis: an entry on `keys.llmCalls(build)`, counters `llmCalls`, `promptTokens`,
 * `completionTokens`, `llmMs` on the task and build hashes, and `calls`, `promptTokens`,
 * `completionTokens`, `ms`, `failed` (total and as `<role>:…`) on `keys.metricsLlm`. A call
 * without a build records only the metrics hash.
 */
export class RedisUsageRecorder implements UsageRecorder {
  private readonly run: RecordCommand;

  /** `maxLen`: approximate cap on entries in each build's LLM call stream. */
  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly maxLen = 100_000,
  ) {
    if (!('codegodRecordLlmCall' in redis)) redis.defineCommand('codegodRecordLlmCall', { lua: RECORD_SCRIPT });
    const command = (redis as unknown as { codegodRecordLlmCall: RecordCommand }).codegodRecordLlmCall;
    this.run = command.bind(redis);
  }

  async record(input: LlmCall): Promise<void> {
    const call = LlmCallSchema.parse(input);
    const keys = [this.keys.metricsLlm];
    if (call.buildId !== undefined) {
      keys.push(this.keys.llmCalls(call.buildId), this.keys.build(call.buildId));
      if (call.taskId !== undefined) keys.push(this.keys.task(call.buildId, call.taskId));
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
    if (call.taskId !== undefined) entry.push('task', call.taskId);
    if (call.agentId !== undefined) entry.push('agent', call.agentId);
    if (call.error !== undefined) entry.push('error', call.error.slice(0, 300));
    await this.run(
      keys.length,
      ...keys,
      call.role,
      call.promptTokens,
      call.completionTokens,
      call.ms,
      call.ok ? '1' : '0',
      this.maxLen,
      ...entry,
    );
  }
}
