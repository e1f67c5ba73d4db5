import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { listAgents, type AgentStatus } from '../../shared/telemetry/agent-status.js';
import { BuildIdSchema, BuildRecordSchema, parseRecord, type BuildRecord, type TaskState } from '../../shared/domain/build.js';
import type { Config } from '../../shared/config.js';
import type { TaskView } from '../../shared/engine/dag-store.js';
import { CodegodError, errorMessage, type ErrorCode } from '../../shared/domain/errors.js';
import type { Logger } from '../../shared/logger.js';
import { PLAN_LIMITS, TASK_ID_PATTERN } from '../../shared/domain/plan.js';
import type { LoopState, LoopStateStore } from '../../shared/memory/loop-state.js';
import { BuildReportSchema, type BuildReport } from '../../shared/engine/report.js';
import type { Scheduler } from '../../shared/engine/scheduler.js';
import type { EventStreams } from './sse.js';

/**
 * The REST API under /api: JSON in and out, every input parsed with zod, every error as
 * `{ error: { code, message } }` with the status its code calls for. Routes:
 *
 * | route                               | what                                              |
 * |-------------------------------------|---------------------------------------------------|
 * | POST /api/builds                    | submit a goal → 202 { buildId }                   |
 * | GET  /api/builds?limit=             | recent builds with state and progress             |
 * | GET  /api/builds/:id                | build record, tasks, DAG layers, report           |
 * | GET  /api/builds/:id/events         | the build's event stream (SSE, see sse.ts)        |
 * | GET  /api/builds/:id/tasks/:taskId  | one task with its result and ORPAV trace          |
 * | POST /api/builds/:id/cancel         | cancel a planning or running build                |
 * | POST /api/builds/:id/retry          | retry one failed task, or every failed task       |
 * | GET  /api/agents                    | every agent with heartbeat age                    |
 */

export interface ApiDeps {
  config: Config;
  redis: Redis;
  scheduler: Scheduler;
  traces: LoopStateStore;
  streams: EventStreams;
  logger: Logger;
}

const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  GOAL_INVALID: 400,
  REQUEST_INVALID: 400,
  USAGE: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  BUILD_NOT_FOUND: 404,
  TASK_NOT_FOUND: 404,
  NOT_FOUND: 404,
  BUILD_STATE: 409,
  GROW_REJECTED: 409,
  REDIS_UNREACHABLE: 503,
  UNAVAILABLE: 503,
};

export function httpStatus(code: ErrorCode): number {
  return STATUS_OF[code] ?? 500;
}

export interface ApiErrorBody {
  error: { code: ErrorCode | 'INTERNAL'; message: string };
}

/** The error shape every JSON endpoint answers with. Unexpected errors keep their details in the log only. */
export function sendError(res: Response, err: unknown, logger: Logger): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  let status = 500;
  let body: ApiErrorBody;
  if (err instanceof CodegodError) {
    status = httpStatus(err.code);
    body = { error: { code: err.code, message: err.message } };
  } else if (isBodyParserError(err)) {
    status = err.status;
    body = { error: { code: 'REQUEST_INVALID', message: bodyParserMessage(err) } };
  } else {
    logger.error({ err }, 'unexpected error in the HTTP API');
    body = { error: { code: 'INTERNAL', message: 'internal error; the orchestrator log has the details' } };
  }
  res.status(status).json(body);
}

function isBodyParserError(err: unknown): err is { status: number; type: string } {
  if (typeof err !== 'object' || err === null) return false;
  const { status, type } = err as { status?: unknown; type?: unknown };
  return typeof status === 'number' && status >= 400 && status < 500 && typeof type === 'string';
}

function bodyParserMessage(err: { type: string }): string {
  if (err.type === 'entity.parse.failed') return 'the request body is not valid JSON';
  if (err.type === 'entity.too.large') return 'the request body is too large';
  return `the request body could not be read (${err.type})`;
}

/** Parses `value` with `schema` or throws REQUEST_INVALID listing every problem. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`);
  throw new CodegodError('REQUEST_INVALID', `invalid ${what}: ${problems.join('; ')}`);
}

const TaskIdSchema = z.string().regex(TASK_ID_PATTERN, 'not a task id').max(PLAN_LIMITS.idMaxChars);
const BuildParams = z.object({ id: BuildIdSchema });
const TaskParams = z.object({ id: BuildIdSchema, taskId: TaskIdSchema });
const ListQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) });
const CancelBody = z.object({ reason: z.string().trim().min(1).max(500).optional() }).strict();
const RetryBody = z.object({ taskId: TaskIdSchema.optional() }).strict();

function submitSchema(config: Config) {
  return z
    .object({
      // Emptiness, length and control characters are the goal validator's (GOAL_INVALID).
      goal: z.string(),
      maxTasks: z.number().int().min(1).max(config.CODEGOD_MAX_TASKS_PER_BUILD).optional(),
      budgetTokens: z.number().int().min(0).optional(),
      model: z.string().trim().min(1).max(200).optional(),
    })
    .strict();
}

/** A body may be absent on POSTs that take only optional fields. */
const bodyOf = (req: Request): unknown => req.body ?? {};

export interface BuildSummary {
  id: string;
  goal: string;
  state: BuildRecord['state'];
  createdAt: number;
  finishedAt: number | null;
  total: number;
  /** Tasks in a terminal state (succeeded, failed, skipped, cancelled). */
  done: number;
  succeeded: number;
  failed: number;
  skipped: number;
  cancelled: number;
  failedTask: string | null;
  reason: string | null;
  failureCode: string | null;
  summary: string;
  llmCalls: number;
  tokens: number;
  budgetTokens: number;
  model: string | null;
}

export function summarizeBuild(b: BuildRecord): BuildSummary {
  return {
    id: b.id,
    goal: b.goal,
    state: b.state,
    createdAt: b.createdAt,
    finishedAt: b.finishedAt ?? null,
    total: b.total,
    done: Math.max(0, b.total - b.open),
    succeeded: b.succeeded,
    failed: b.failed,
    skipped: b.skipped,
    cancelled: b.cancelled,
    failedTask: b.failedTask ?? null,
    reason: b.reason || null,
    failureCode: b.failureCode || null,
    summary: b.summary,
    llmCalls: b.llmCalls,
    tokens: b.promptTokens + b.completionTokens,
    budgetTokens: b.budgetTokens,
    model: b.model ?? null,
  };
}

export interface TaskSummary {
  id: string;
  role: string;
  title: string;
  description: string;
  acceptanceCriteria: string[];
  state: TaskState;
  /** One line saying where the task stands, for people. */
  status: string;
  deps: string[];
  dependents: string[];
  /** `plan`, or `followup:<task>` for work another task asked for. */
  origin: string;
  followup: boolean;
  attempts: number;
  generation: number;
  replans: number;
  queuedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number | null;
  tokensUsed: number;
  worker: string | null;
  error: string | null;
  lastError: string | null;
}

export function durationOf(t: Pick<TaskView, 'startedAt' | 'finishedAt'>): number | null {
  return t.startedAt !== undefined && t.finishedAt !== undefined ? Math.max(0, t.finishedAt - t.startedAt) : null;
}

const seconds = (ms: number) => `${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)} s`;

/** Where a task stands, in one line (`states`: every task's state, for what a pending task waits on). */
export function taskStatus(t: TaskView, states: ReadonlyMap<string, TaskState>): string {
  const attempts = `${t.attempts} attempt${t.attempts === 1 ? '' : 's'}`;
  switch (t.state) {
    case 'pending': {
      const waiting = t.deps.filter((d) => states.get(d) !== 'succeeded');
      return waiting.length ? `waiting on ${waiting.join(', ')}` : 'waiting to be queued';
    }
    case 'queued':
      return `queued for a ${t.role} agent`;
    case 'running':
      return `running on ${t.worker ?? 'an agent'} (attempt ${Math.max(1, t.attempts)})`;
    case 'succeeded': {
      const ms = durationOf(t);
      return `succeeded${ms === null ? '' : ` in ${seconds(ms)}`} after ${attempts}`;
    }
    case 'failed':
      return `failed after ${attempts}: ${t.error ?? 'no reason recorded'}`;
    case 'skipped':
      return 'skipped: a dependency failed';
    case 'cancelled':
      return 'cancelled with its build';
  }
}

export function summarizeTask(t: TaskView, tokensUsed: number, states: ReadonlyMap<string, TaskState>): TaskSummary {
  return {
    id: t.id,
    role: t.role,
    title: t.spec.title,
    description: t.spec.description,
    acceptanceCriteria: t.spec.acceptanceCriteria,
    state: t.state,
    status: taskStatus(t, states),
    deps: t.deps,
    dependents: t.dependents,
    origin: t.origin,
    followup: t.origin.startsWith('followup:'),
    attempts: t.attempts,
    generation: t.gen,
    replans: t.replans,
    queuedAt: t.queuedAt ?? null,
    startedAt: t.startedAt ?? null,
    finishedAt: t.finishedAt ?? null,
    durationMs: durationOf(t),
    tokensUsed,
    worker: t.worker ?? null,
    error: t.error ?? null,
    lastError: t.lastError ?? null,
  };
}

/**
 * The DAG in layers by dependency depth (a task's layer is one more than its deepest
 * dependency's), each layer ordered by the mean position of its tasks' dependencies so edges
 * cross less. The dashboard draws layer i as column i.
 */
export function dagLayers(tasks: ReadonlyArray<{ id: string; deps: readonly string[] }>): string[][] {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  // Iterative, so a 100k-task chain cannot overflow the stack; a cycle (hand-edited data)
  // is cut where it closes.
  for (const root of [...byId.keys()].sort()) {
    const stack: Array<{ id: string; next: number }> = [{ id: root, next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (depth.has(top.id)) {
        stack.pop();
        continue;
      }
      visiting.add(top.id);
      const deps = (byId.get(top.id)?.deps ?? []).filter((d) => byId.has(d));
      const pending = deps.slice(top.next).find((d) => !depth.has(d) && !visiting.has(d));
      if (pending !== undefined) {
        top.next = deps.indexOf(pending) + 1;
        stack.push({ id: pending, next: 0 });
        continue;
      }
      depth.set(top.id, Math.max(-1, ...deps.map((d) => depth.get(d) ?? -1)) + 1);
      visiting.delete(top.id);
      stack.pop();
    }
  }
  const layers: string[][] = [];
  for (const [id, d] of depth) (layers[d] ??= []).push(id);
  const position = new Map<string, number>();
  return layers.map((layer, i) => {
    const key = (id: string) => {
      const ps = (byId.get(id)?.deps ?? []).map((d) => position.get(d)).filter((p): p is number => p !== undefined);
      return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0;
    };
    const ordered = i === 0 ? [...layer].sort() : [...layer].sort((a, b) => key(a) - key(b) || a.localeCompare(b));
    ordered.forEach((id, j) => position.set(id, ordered.length > 1 ? j / (ordered.length - 1) : 0.5));
    return ordered;
  });
}

async function taskTokens(redis: Redis, keyOf: (id: string) => string, ids: readonly string[]): Promise<Map<string, number>> {
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hmget(keyOf(id), 'promptTokens', 'completionTokens');
  const rows = (await pipe.exec()) ?? [];
  return new Map(ids.map((id, i) => [id, ((rows[i]?.[1] ?? []) as Array<string | null>).reduce((sum, v) => sum + (Number(v) || 0), 0)]));
}

function parseJson(raw: string | undefined): unknown {
  if (raw === undefined) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export interface AgentView extends AgentStatus {
  heartbeatAgeMs: number;
  /** No heartbeat for three periods: the process is probably gone. */
  stale: boolean;
}

export function agentView(a: AgentStatus, now: number, heartbeatMs: number): AgentView {
  const heartbeatAgeMs = Math.max(0, now - a.heartbeat);
  return { ...a, heartbeatAgeMs, stale: a.state !== 'offline' && heartbeatAgeMs > 3 * heartbeatMs };
}

/** What the API answers, route by route; the dashboard's scripts (assets/) read these types. */
export interface SubmittedBody {
  buildId: string;
}
export interface BuildListBody {
  builds: BuildSummary[];
}
export interface BuildDetailBody {
  build: BuildSummary;
  tasks: TaskSummary[];
  /** Task ids by dependency depth (see dagLayers). */
  layers: string[][];
  /** The last event the snapshot includes: follow the event stream from there. */
  lastEventId: string | null;
  report: BuildReport | null;
}
export interface TaskDetailBody extends TaskSummary {
  buildId: string;
  /** The stored result, parsed as JSON when it is. */
  result: unknown;
  trace: LoopState | null;
}
export interface CancelledBody {
  buildId: string;
  state: BuildRecord['state'];
}
export interface RetriedBody {
  buildId: string;
  retried: string[];
}
export interface AgentListBody {
  agents: AgentView[];
  /** Agent ids whose status entry could not be read. */
  malformed: string[];
}

export function apiRouter(deps: ApiDeps): Router {
  const { config, redis, scheduler, traces, streams, logger } = deps;
  const { dag, keys } = scheduler;
  const submit = submitSchema(config);
  const router = Router();

  router.post('/builds', async (req, res) => {
    const input = parseInput(submit, req.body, 'build request');
    const buildId = await scheduler.submitGoal(input);
    res.status(202).location(`/api/builds/${buildId}`).json({ buildId } satisfies SubmittedBody);
  });

  router.get('/builds', async (req, res) => {
    const { limit } = parseInput(ListQuery, req.query, 'query');
    const ids = await dag.listBuilds(limit);
    const pipe = redis.pipeline();
    for (const id of ids) pipe.hgetall(keys.build(id));
    const rows = (await pipe.exec()) ?? [];
    const builds: BuildSummary[] = [];
    ids.forEach((id, i) => {
      const raw = (rows[i]?.[1] ?? {}) as Record<string, string>;
      // A crash can leave an id without its record; a corrupt record must not hide the others.
      if (Object.keys(raw).length === 0) return;
      try {
        builds.push(summarizeBuild(parseRecord(BuildRecordSchema, raw, keys.build(id))));
      } catch (err) {
        logger.debug({ buildId: id, err: errorMessage(err) }, 'build left out of the list');
      }
    });
    res.json({ builds } satisfies BuildListBody);
  });

  router.get('/builds/:id', async (req, res) => {
    const { id } = parseInput(BuildParams, req.params, 'build id');
    // The last event id is read first: replaying from it can only repeat what the snapshot shows.
    const lastEntry = (await redis.xrevrange(keys.events(id), '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    const build = await dag.getBuild(id);
    const [tasks, rawReport] = await Promise.all([dag.getTasks(id), redis.hget(keys.build(id), 'report')]);
    const tokens = await taskTokens(redis, (t) => keys.task(id, t), tasks.map((t) => t.id));
    const states = new Map(tasks.map((t) => [t.id, t.state]));
    let report: BuildReport | null = null;
    if (rawReport) {
      const parsed = BuildReportSchema.safeParse(parseJson(rawReport));
      if (parsed.success) report = parsed.data;
    }
    res.json({
      build: summarizeBuild(build),
      tasks: tasks.map((t) => summarizeTask(t, tokens.get(t.id) ?? 0, states)).sort((a, b) => a.id.localeCompare(b.id)),
      layers: dagLayers(tasks),
      lastEventId: lastEntry[0]?.[0] ?? null,
      report,
    } satisfies BuildDetailBody);
  });

  router.get('/builds/:id/events', async (req, res) => {
    const { id } = parseInput(BuildParams, req.params, 'build id');
    await streams.serve(id, req, res);
  });

  router.get('/builds/:id/tasks/:taskId', async (req, res) => {
    const { id, taskId } = parseInput(TaskParams, req.params, 'task path');
    const [task, states] = await Promise.all([dag.getTask(id, taskId), dag.getTaskStates(id)]);
    const tokens = await taskTokens(redis, (t) => keys.task(id, t), [taskId]);
    let trace: LoopState | null = null;
    try {
      trace = (await traces.read(id, taskId)) ?? null;
    } catch (err) {
      logger.warn({ buildId: id, taskId, err: errorMessage(err) }, 'unreadable task trace');
    }
    res.json({
      buildId: id,
      ...summarizeTask(task, tokens.get(taskId) ?? 0, states),
      result: parseJson(task.result),
      trace,
    } satisfies TaskDetailBody);
  });

  router.post('/builds/:id/cancel', async (req, res) => {
    const { id } = parseInput(BuildParams, req.params, 'build id');
    const { reason } = parseInput(CancelBody, bodyOf(req), 'cancel request');
    await dag.getBuild(id);
    await scheduler.cancel(id, reason ?? 'cancelled from the API');
    const build = await dag.getBuild(id);
    res.json({ buildId: id, state: build.state } satisfies CancelledBody);
  });

  router.post('/builds/:id/retry', async (req, res) => {
    const { id } = parseInput(BuildParams, req.params, 'build id');
    const { taskId } = parseInput(RetryBody, bodyOf(req), 'retry request');
    await dag.getBuild(id);
    const retried = await scheduler.retry(id, taskId);
    res.json({ buildId: id, retried } satisfies RetriedBody);
  });

  router.get('/agents', async (_req, res) => {
    const { agents, malformed } = await listAgents(redis, keys);
    const now = Date.now();
    res.json({ agents: agents.map((a) => agentView(a, now, config.CODEGOD_HEARTBEAT_MS)), malformed } satisfies AgentListBody);
  });

  router.use((req) => {
    throw new CodegodError('NOT_FOUND', `no API route ${req.method} ${req.baseUrl}${req.path}`);
  });

  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => sendError(res, err, logger));
  return router;
}
