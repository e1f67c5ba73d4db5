import type { Redis } from 'ioredis';
import { z } from 'zod';

/**
 * A point-in-time copy of every key under a prefix, as DUMP payloads (Redis's own
 * serialisation, with its checksum), and the way back with RESTORE. Key by key rather than an
 * RDB file, so it works wherever a client can connect (a container, a managed Redis).
 *
 * Consistency: writes are paused (`CLIENT PAUSE … WRITE`, Redis ≥ 6.2) while the keys are
 * read, so the copy is one instant of the whole prefix; reads go on, and writers (workers,
 * the orchestrator) wait at most PAUSE_MS. A server that refuses the pause (some managed
 * services) still gets a copy, marked `paused: false`: entries written meanwhile may be half in.
 */
export const SnapshotEntrySchema = z.object({
  key: z.string().min(1),
  /** Milliseconds to live, 0 for none. */
  ttl: z.number().int().min(0),
  /** The DUMP payload, base64. */
  dump: z.string().min(1),
});
export type SnapshotEntry = z.infer<typeof SnapshotEntrySchema>;

/** Longest writes are held while a snapshot is read. */
export const PAUSE_MS = 30_000;
const BATCH = 500;

export interface Snapshot {
  entries: SnapshotEntry[];
  paused: boolean;
  /** The copy took longer than the pause: writers may have run before it ended. */
  pauseExpired: boolean;
}

async function scanPrefix(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}:*`, 'COUNT', 1_000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return [...new Set(out)].sort();
}

/**
 * Reads every key under `prefix:` except `exclude`, with writes paused; `read` runs inside the
 * same pause (more reads that must match the copy).
 */
export async function takeSnapshot<T>(redis: Redis, prefix: string, exclude: ReadonlySet<string>, read: () => Promise<T>): Promise<Snapshot & { extra: T }> {
  const paused = await redis.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE').then(
    () => true,
    () => false,
  );
  const started = Date.now();
  try {
    const keys = (await scanPrefix(redis, prefix)).filter((k) => !exclude.has(k));
    const entries: SnapshotEntry[] = [];
    for (let i = 0; i < keys.length; i += BATCH) {
      const batch = keys.slice(i, i + BATCH);
      const pipe = redis.pipeline();
      for (const key of batch) pipe.dumpBuffer(key).pttl(key);
      const rows = (await pipe.exec()) ?? [];
      batch.forEach((key, j) => {
        const dump = rows[2 * j]?.[1] as Buffer | null;
        const pttl = Number(rows[2 * j + 1]?.[1]);
        // Gone since the scan (expired): nothing to keep.
        if (dump) entries.push({ key, ttl: pttl > 0 ? pttl : 0, dump: dump.toString('base64') });
      });
    }
    const extra = await read();
    return { entries, paused, pauseExpired: paused && Date.now() - started >= PAUSE_MS, extra };
  } finally {
    if (paused) await redis.call('CLIENT', 'UNPAUSE').catch(() => undefined);
  }
}

/** Keys under `prefix:`, for checks before a restore. */
export function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  return scanPrefix(redis, prefix);
}

/**
 * Writes entries back with RESTORE … REPLACE, `groups` in order, each group's entries in
 * transactions of at most BATCH keys (a group restored in one transaction, when `atomic`,
 * appears at once). On any failure the keys restored so far are deleted again and the
 * error is thrown: a failed restore leaves no half of itself behind.
 */
export async function restoreSnapshot(redis: Redis, groups: ReadonlyArray<{ entries: readonly SnapshotEntry[]; atomic?: boolean }>): Promise<number> {
  const written: string[] = [];
  try {
    for (const group of groups) {
      const size = group.atomic ? Math.max(1, group.entries.length) : BATCH;
      for (let i = 0; i < group.entries.length; i += size) {
        const batch = group.entries.slice(i, i + size);
        const multi = redis.multi();
        for (const e of batch) multi.restore(e.key, e.ttl, Buffer.from(e.dump, 'base64'), 'REPLACE');
        const results = (await multi.exec()) ?? [];
        written.push(...batch.map((e) => e.key));
        const failed = results.find(([err]) => err);
        if (failed) throw failed[0];
      }
    }
    return written.length;
  } catch (err) {
    for (let i = 0; i < written.length; i += BATCH) await redis.del(...written.slice(i, i + BATCH)).catch(() => 0);
    throw err;
  }
}
