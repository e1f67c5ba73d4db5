import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Keys } from '../redis/keys.js';

/**
 * Every state change of a build is one entry in its Redis Stream (written inside the same
 * Lua scripts that change the state, so the stream never disagrees with the state). Readers
 * replay from any id, which is how the CLI and the dashboard survive a reconnect.
 */
export const BUILD_EVENT_TYPES = [
  'build.submitted',
  'build.planning',
  'build.planned',
  'build.report',
  'build.created',
  'build.finished',
  'build.cancelled',
  'build.reopened',
  'build.grown',
  'task.queued',
  'task.started',
  'task.succeeded',
  'task.failed',
  'task.skipped',
  'task.cancelled',
  'task.retried',
  'task.progress',
] as const;

export const BuildEventSchema = z.object({
  id: z.string(),
  type: z.enum(BUILD_EVENT_TYPES),
  at: z.coerce.number().int(),
  task: z.string().optional(),
  state: z.string().optional(),
  role: z.string().optional(),
  attempt: z.coerce.number().int().optional(),
  /** On a `task.succeeded` that also records the task's start (it started and finished within one turn of its worker). */
  startedAt: z.coerce.number().int().optional(),
  worker: z.string().optional(),
  reason: z.string().optional(),
  data: z.string().optional(),
});
export type BuildEvent = z.infer<typeof BuildEventSchema>;

/** An entry as XRANGE/XREAD return it. */
export type StreamEntry = [id: string, fields: string[]];

/** Parses one stream entry; an unknown or hand-edited one is undefined rather than an error. */
export function toEvent([id, fields]: StreamEntry): BuildEvent | undefined {
  const obj: Record<string, string> = { id };
  for (let i = 0; i + 1 < fields.length; i += 2) obj[fields[i]!] = fields[i + 1]!;
  const parsed = BuildEventSchema.safeParse(obj);
  return parsed.success ? parsed.data : undefined;
}

/** Events after `afterId` (exclusive; '0' replays from the start), oldest first. */
export async function readEvents(redis: Redis, keys: Keys, buildId: string, afterId = '0', count = 1000): Promise<BuildEvent[]> {
  const start = afterId === '0' || afterId === '-' ? '-' : `(${afterId}`;
  const entries = (await redis.xrange(keys.events(buildId), start, '+', 'COUNT', count)) as StreamEntry[];
  return entries.map(toEvent).filter((e): e is BuildEvent => e !== undefined);
}

/**
 * Follows a build's events from `afterId`, blocking for new ones. Needs a connection of its
 * own (XREAD BLOCK holds it). Ends when `signal` aborts or a `build.finished` or
 * `build.cancelled` event has been yielded and `untilFinished` is set.
 */
export async function* followEvents(
  redis: Redis,
  keys: Keys,
  buildId: string,
  opts: { afterId?: string; signal?: AbortSignal; untilFinished?: boolean; blockMs?: number } = {},
): AsyncGenerator<BuildEvent> {
  let last = opts.afterId ?? '0';
  const key = keys.events(buildId);
  while (!opts.signal?.aborted) {
    const res = (await redis.xread('COUNT', 500, 'BLOCK', opts.blockMs ?? 1_000, 'STREAMS', key, last)) as
      | Array<[string, StreamEntry[]]>
      | null;
    if (!res) continue;
    for (const entry of res[0]?.[1] ?? []) {
      last = entry[0];
      const event = toEvent(entry);
      if (!event) continue;
      yield event;
      if (opts.untilFinished && (event.type === 'build.finished' || event.type === 'build.cancelled')) return;
    }
  }
}
