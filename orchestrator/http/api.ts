import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { listAgents } from '../../shared/telemetry/agent-status.js';
import { BuildIdSchema, BuildRecordSchema, parseRecord } from '../../shared/domain/build.js';
import type { HttpOptions } from '../../shared/options.js';
import { CodegodError, errorMessage } from '../../shared/domain/errors.js';
import type { Logger } from '../../shared/logger.js';
import { PLAN_LIMITS, TASK_ID_PATTERN } from '../../shared/domain/plan.js';
import type { LoopState, LoopStateStore } from '../../shared/memory/loop-state.js';
import { BuildReportSchema, type BuildReport } from '../../shared/engine/report.js';
import type { Scheduler } from '../../shared/engine/scheduler.js';
import { parseInput, sendError } from './errors.js';
import type { EventStreams } from './sse.js';
import {
  agentView,
  dagLayers,
  summarizeBuild,
  summarizeTask,
  type AgentListBody,
  type BuildDetailBody,
  type BuildListBody,
  type BuildSummary,
  type CancelledBody,
  type RetriedBody,
  type SubmittedBody,
  type TaskDetailBody,
} from './views.js';

/**
 * The REST API under /api: JSON in and out, every input parsed with zod, every error as
 * `{ error: { code, message } }` with the status its code calls for (errors.ts); what each
 * route answers is in views.ts. Routes:
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
  options: HttpOptions;
  redis: Redis;
  scheduler: Scheduler;
  traces: LoopStateStore;
  streams: EventStreams;
  logger: Logger;
}

const TaskIdSchema = z.string().regex(TASK_ID_PATTERN, 'not a task id').max(PLAN_LIMITS.idMaxChars);
const BuildParams = z.object({ id: BuildIdSchema });
const TaskParams = z.object({ id: BuildIdSchema, taskId: TaskIdSchema });
const ListQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) });
const CancelBody = z.object({ reason: z.string().trim().min(1).max(500).optional() }).strict();
const RetryBody = z.object({ taskId: TaskIdSchema.optional() }).strict();

function submitSchema(options: HttpOptions) {
  return z
    .object({
      // Emptiness, length and control characters are the goal validator's (GOAL_INVALID).
      goal: z.string(),
      maxTasks: z.number().int().min(1).max(options.maxTasksPerBuild).optional(),
      budgetTokens: z.number().int().min(0).optional(),
      model: z.string().trim().min(1).max(200).optional(),
    })
    .strict();
}

/** A body may be absent on POSTs that take only optional fields. */
const bodyOf = (req: Request): unknown => req.body ?? {};

function parseJson(raw: string | undefined): unknown {
  if (raw === undefined) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export function apiRouter(deps: ApiDeps): Router {
  const { options, redis, scheduler, traces, streams, logger } = deps;
  const { dag, keys } = scheduler;
  const submit = submitSchema(options);
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
    const tokens = await dag.taskTokens(id, tasks.map((t) => t.id));
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
    const tokens = await dag.taskTokens(id, [taskId]);
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
    res.json({ agents: agents.map((a) => agentView(a, now, options.heartbeatMs)), malformed } satisfies AgentListBody);
  });

  router.use((req) => {
    throw new CodegodError('NOT_FOUND', `no API route ${req.method} ${req.baseUrl}${req.path}`);
  });

  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => sendError(res, err, logger));
  return router;
}
