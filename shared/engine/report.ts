import type { Redis } from 'ioredis';
import { z } from 'zod';
import { readAudit } from '../telemetry/audit.js';
import type { DagStore } from './dag-store.js';
import { count, csv, parseRecord } from '../domain/build.js';
import type { Keys } from '../redis/keys.js';

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

/** What the report needs of a task: a small part of its record, read in one pipelined round trip. */
interface ReportTask {
  id: string;
  role: string;
  title: string;
  state: string;
  deps: string[];
  attempts: number;
  startedAt?: number | undefined;
  finishedAt?: number | undefined;
  origin: string;
  tokens: number;
}

const REPORT_FIELDS = ['role', 'spec', 'deps', 'attempts', 'startedAt', 'finishedAt', 'origin', 'promptTokens', 'completionTokens'] as const;
const ReportFieldsSchema = z.object({
  role: z.string(),
  // The title is all the report shows of the spec: it is not validated whole here (the
  // worker does that before running the task), only read.
  spec: z.string().transform((raw, ctx) => {
    try {
      const title = (JSON.parse(raw) as { title?: unknown }).title;
      if (typeof title === 'string') return title;
    } catch {
      // not JSON: the issue below says so
    }
    ctx.addIssue({ code: 'custom', message: 'spec has no title' });
    return z.NEVER;
  }),
  deps: csv,
  attempts: count.default(0),
  startedAt: count.optional(),
  finishedAt: count.optional(),
  origin: z.string().default('plan'),
  promptTokens: count.default(0),
  completionTokens: count.default(0),
});

async function reportTasks(redis: Redis, keys: Keys, dag: DagStore, buildId: string): Promise<ReportTask[]> {
  const states = await dag.getTaskStates(buildId);
  const ids = [...states.keys()];
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hmget(keys.task(buildId, id), ...REPORT_FIELDS);
  const rows = (await pipe.exec()) ?? [];
  return ids.map((id, i) => {
    const values = (rows[i]?.[1] ?? []) as Array<string | null>;
    const raw: Record<string, string> = {};
    REPORT_FIELDS.forEach((f, j) => {
      if (values[j] !== null && values[j] !== undefined) raw[f] = values[j];
    });
    const r = parseRecord(ReportFieldsSchema, raw, keys.task(buildId, id));
    return {
      id,
      role: r.role,
      title: r.spec,
      state: states.get(id)!,
      deps: r.deps,
      attempts: r.attempts,
      startedAt: r.startedAt,
      finishedAt: r.finishedAt,
      origin: r.origin,
      tokens: r.promptTokens + r.completionTokens,
    };
  });
}

type Timed = Pick<ReportTask, 'id' | 'deps' | 'startedAt' | 'finishedAt'>;

function duration(t: Timed): number | null {
  return t.startedAt !== undefined && t.finishedAt !== undefined ? Math.max(0, t.finishedAt - t.startedAt) : null;
}

/** Longest dependency chain by task duration (tasks that did not run count zero). */
export function criticalPath(tasks: readonly Timed[]): number {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const memo = new Map<string, number>();
  const visit = (id: string, depth: number): number => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    const t = byId.get(id);
    if (!t || depth > tasks.length) return 0;
    let longest = 0;
    for (const d of t.deps) longest = Math.max(longest, visit(d, depth + 1));
    const value = (duration(t) ?? 0) + longest;
    memo.set(id, value);
    return value;
  };
  let longest = 0;
  for (const t of tasks) longest = Math.max(longest, visit(t.id, 0));
  return longest;
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
  const [build, tasks] = await Promise.all([dag.getBuild(buildId), reportTasks(redis, keys, dag, buildId)]);
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
      title: t.title,
      state: t.state,
      attempts: t.attempts,
      durationMs: duration(t),
      tokens: t.tokens,
      origin: t.origin,
    })),
    files: await writtenFiles(redis, keys, buildId),
    llm: { calls: build.llmCalls, promptTokens: build.promptTokens, completionTokens: build.completionTokens },
  };
}
