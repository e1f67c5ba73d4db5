import type { Redis } from 'ioredis';
import { z } from 'zod';
import { readAudit } from '../shared/audit.js';
import type { DagStore, TaskView } from '../shared/dag.js';
import type { Keys } from '../shared/keys.js';

/**
 * The report of an ended build: every task with status, attempts, duration and tokens; the
 * files agents wrote; LLM calls and tokens; wall time against the critical path (the
 * longest chain of task durations), which says how much time went to waiting rather than work.
 */
export const BuildReportSchema = z.object({
  buildId: z.string(),
  goal: z.string(),
  state: z.string(),
  reason: z.string().optional(),
  failedTask: z.string().optional(),
  failureCode: z.string().optional(),
  wallMs: z.number(),
  criticalPathMs: z.number(),
  tasks: z.array(
    z.object({
      id: z.string(),
      role: z.string(),
      title: z.string(),
      state: z.string(),
      attempts: z.number(),
      durationMs: z.number().nullable(),
      tokens: z.number(),
      origin: z.string(),
    }),
  ),
  files: z.array(z.string()),
  llm: z.object({ calls: z.number(), promptTokens: z.number(), completionTokens: z.number() }),
});
export type BuildReport = z.infer<typeof BuildReportSchema>;

function duration(t: TaskView): number | null {
  return t.startedAt !== undefined && t.finishedAt !== undefined ? Math.max(0, t.finishedAt - t.startedAt) : null;
}

/** Longest dependency chain by task duration (tasks that did not run count zero). */
export function criticalPath(tasks: readonly TaskView[]): number {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const memo = new Map<string, number>();
  const visit = (id: string, depth: number): number => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    const t = byId.get(id);
    if (!t || depth > tasks.length) return 0;
    const value = (duration(t) ?? 0) + Math.max(0, ...t.deps.map((d) => visit(d, depth + 1)));
    memo.set(id, value);
    return value;
  };
  return Math.max(0, ...tasks.map((t) => visit(t.id, 0)));
}

async function taskTokens(redis: Redis, keys: Keys, buildId: string, ids: string[]): Promise<Map<string, number>> {
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hmget(keys.task(buildId, id), 'promptTokens', 'completionTokens');
  const rows = (await pipe.exec()) ?? [];
  return new Map(ids.map((id, i) => [id, ((rows[i]?.[1] ?? []) as Array<string | null>).reduce((sum, v) => sum + Number(v ?? 0), 0)]));
}

async function writtenFiles(redis: Redis, keys: Keys, buildId: string): Promise<string[]> {
  const files = new Set<string>();
  let from: string | undefined;
  for (;;) {
    const page = await readAudit(redis, keys, buildId, from);
    for (const rec of page) if (rec.entry.type === 'file.write') files.add(rec.entry.path);
    if (page.length === 0 || page.length < 1_000) break;
    from = page[page.length - 1]!.id;
  }
  return [...files].sort();
}

export async function createReport(redis: Redis, keys: Keys, dag: DagStore, buildId: string): Promise<BuildReport> {
  const [build, tasks] = await Promise.all([dag.getBuild(buildId), dag.getTasks(buildId)]);
  const tokens = await taskTokens(redis, keys, buildId, tasks.map((t) => t.id));
  return {
    buildId,
    goal: build.goal,
    state: build.state,
    ...(build.reason ? { reason: build.reason } : {}),
    ...(build.failedTask ? { failedTask: build.failedTask } : {}),
    ...(build.failureCode ? { failureCode: build.failureCode } : {}),
    wallMs: (build.finishedAt ?? Date.now()) - build.createdAt,
    criticalPathMs: criticalPath(tasks),
    tasks: tasks.map((t) => ({
      id: t.id,
      role: t.role,
      title: t.spec.title,
      state: t.state,
      attempts: t.attempts,
      durationMs: duration(t),
      tokens: tokens.get(t.id) ?? 0,
      origin: t.origin,
    })),
    files: await writtenFiles(redis, keys, buildId),
    llm: { calls: build.llmCalls, promptTokens: build.promptTokens, completionTokens: build.completionTokens },
  };
}
