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

/** Entries one blocking read returns at most. */
const READ_BATCH = 500;

/**
 * A reading position in a build's event stream that moves forward one blocking read at a
 * time. Needs a connection of its own (XREAD BLOCK holds it). `full` says the batch was as
 * large as a read returns, so more entries are probably waiting already.
 */
export class EventCursor {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    keys: Keys,
    buildId: string,
    /** The last entry read; '0' starts from the beginning. */
    public last = '0',
  ) {
    this.key = keys.events(buildId);
  }

  async next(waitMs: number): Promise<{ events: BuildEvent[]; full: boolean }> {
    const res = (await this.redis.xread('COUNT', READ_BATCH, 'BLOCK', Math.max(1, waitMs), 'STREAMS', this.key, this.last)) as
      | Array<[string, StreamEntry[]]>
      | null;
    const entries = res?.[0]?.[1] ?? [];
    if (entries.length) this.last = entries[entries.length - 1]![0];
    return { events: entries.map(toEvent).filter((e): e is BuildEvent => e !== undefined), full: entries.length >= READ_BATCH };
  }
}

/**
 * Follows a build's events from `afterId`, blocking for new ones. Needs a connection of its
 * own. Ends when `signal` aborts or a `build.finished` or `build.cancelled` event has been
 * yielded and `untilFinished` is set.
 */
export async function* followEvents(
  redis: Redis,
  keys: Keys,
  buildId: string,
  opts: { afterId?: string; signal?: AbortSignal; untilFinished?: boolean; blockMs?: number } = {},
): AsyncGenerator<BuildEvent> {
  const cursor = new EventCursor(redis, keys, buildId, opts.afterId);
  while (!opts.signal?.aborted) {
    for (const event of (await cursor.next(opts.blockMs ?? 1_000)).events) {
      yield event;
      if (opts.untilFinished && (event.type === 'build.finished' || event.type === 'build.cancelled')) return;
    }
  }
}
