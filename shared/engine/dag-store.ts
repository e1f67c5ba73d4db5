import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  BuildRecordSchema,
  parseRecord,
  TaskRecordSchema,
  TaskStateSchema,
  type BuildRecord,
  type BuildState,
  type TaskRecord,
  type TaskState,
} from '../domain/build.js';
import {
  cancelBuildScript,
  completeTasksScript,
  createBuildScript,
  decodeCompletions,
  failCorruptBuildScript,
  failTaskScript,
  growBuildScript,
  replanTaskScript,
  retryTaskScript,
  startTaskScript,
  type StartRefusal,
} from './dag-scripts.js';
import { CodegodError, DataCorruptError, NotFoundError } from '../domain/errors.js';
import type { Keys } from '../redis/keys.js';
import type { LuaScript } from '../redis/lua-script.js';
import { findCycles, TaskSpecSchema, type Plan, type TaskSpec } from '../domain/plan.js';
import type { ReadyTask } from './queues.js';

export function parseTaskSpec(raw: string): { ok: true; spec: TaskSpec } | { ok: false; problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, problem: 'spec is not JSON' };
  }
  const parsed = TaskSpecSchema.safeParse(json);
  return parsed.success ? { ok: true, spec: parsed.data } : { ok: false, problem: parsed.error.issues[0]?.message ?? 'bad task spec' };
}

export function newBuildId(): string {
  return `b-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export type StartOutcome = { kind: 'run'; spec: TaskSpec; attempt: number } | { kind: 'skip'; reason: StartRefusal | `corrupt: ${string}` };

export interface Completion {
  /** false when the task was already terminal (a duplicate delivery or a cancelled build). */
  applied: boolean;
  ready: ReadyTask[];
  finished?: BuildState;
}

/** A task's success as a worker reports it; `startedAt` when its start was never recorded. */
export interface CompletionEntry {
  taskId: string;
  gen: number;
  workerId: string;
  startedAt?: number;
  result: unknown;
}

/** `skip`: an unrecorded start the task may not make (as startTask would answer). */
export type TaskCompletion = { kind: 'done'; applied: boolean } | { kind: 'skip'; reason: StartRefusal };

export interface BatchCompletion {
  outcomes: TaskCompletion[];
  ready: ReadyTask[];
  finished?: BuildState;
}

export interface TaskView extends TaskRecord {
  id: string;
  state: TaskState;
}

/** One task's delivery as stored (see DagStore.readResults). */
export interface StoredResult {
  taskId: string;
  /** The task's key, for error messages. */
  key: string;
  role: string | null;
  spec: string | null;
  /** The result's JSON; null when there is none or it was too large to read. */
  result: string | null;
  resultBytes: number;
}

export interface GrowRequest {
  tasks: Array<{ spec: TaskSpec; depth: number; origin: string }>;
  /** Existing pending tasks that must also wait on some of the new tasks. */
  blocks?: Array<{ taskId: string; waitFor: string[] }>;
}

/**
 * A build's DAG state in Redis: typed wrappers over the Lua transitions of dag-scripts.ts
 * plus validated reads. Both the orchestrator and the workers use it.
 */
export class DagStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly eventsMaxLen: number,
  ) {}

  /** Runs a DAG script with the keys and first arguments they all share (lua/includes/dagContext.lua). */
  private run<Reply>(script: LuaScript<Reply>, buildId: string, args: ReadonlyArray<string | number>): Promise<Reply> {
    const k = this.keys;
    return script.run(
      this.redis,
      [k.build(buildId), k.buildStates(buildId), k.events(buildId)],
      [k.taskPrefix(buildId), Date.now(), this.eventsMaxLen, ...args],
    );
  }

  /** Stores a validated plan as a new running build and returns its roots (already marked queued). */
  async createBuild(input: { buildId: string; goal: string; plan: Plan; maxTasks: number }): Promise<ReadyTask[]> {
    const { buildId, plan } = input;
    const dependents = new Map<string, string[]>(plan.tasks.map((t) => [t.id, []]));
    for (const t of plan.tasks) for (const d of t.dependsOn) dependents.get(d)?.push(t.id);
    const tasks = plan.tasks.map((t) => ({
      id: t.id,
      role: t.role,
      spec: JSON.stringify(t),
      deps: t.dependsOn.join(','),
      dependents: dependents.get(t.id)!.join(','),
      ndeps: t.dependsOn.length,
    }));
    // The indexes are written first: a crash before the script leaves an id the reconciler
    // drops (no build hash), never a build nobody scans.
    await this.redis.multi().zadd(this.keys.builds, Date.now(), buildId).sadd(this.keys.activeBuilds, buildId).exec();
    const res = await this.run(createBuildScript, buildId, [buildId, input.goal, input.maxTasks, plan.summary, JSON.stringify(tasks)]);
    if (res === 'exists') throw new CodegodError('BUILD_STATE', `build ${buildId} already exists`);
    return tasks.filter((t) => t.ndeps === 0).map((t) => ({ taskId: t.id, role: t.role, gen: 0, spec: t.spec }));
  }

  async startTask(buildId: string, taskId: string, gen: number, workerId: string): Promise<StartOutcome> {
    const res = await this.run(startTaskScript, buildId, [taskId, gen, workerId]);
    if (res.kind === 'skip') return res;
    const spec = parseTaskSpec(res.spec);
    if (spec.ok) return { kind: 'run', spec: spec.spec, attempt: res.attempt };
    // A hand-edited spec fails this task with a clear reason instead of breaking the worker.
    const reason = new DataCorruptError(this.keys.task(buildId, taskId), `spec: ${spec.problem}`).message;
    await this.failTask(buildId, taskId, gen, reason);
    return { kind: 'skip', reason: `corrupt: ${reason}` };
  }

  /**
   * Records the success of several tasks of one build in one script (see completeTasksScript):
   * an entry with `startedAt` is a first delivery whose start was not recorded yet. Returns
   * one outcome per entry, the tasks released, and the build's final state if it ended.
   */
  async completeTasks(buildId: string, entries: readonly CompletionEntry[]): Promise<BatchCompletion> {
    const args: Array<string | number> = [];
    for (const e of entries) args.push(e.taskId, e.gen, e.workerId, e.startedAt ?? '', JSON.stringify(e.result ?? null));
    const { finished, statuses, ready } = decodeCompletions(await this.run(completeTasksScript, buildId, args), entries.length);
    const outcomes = statuses.map((status): TaskCompletion => {
      if (status === 'ok' || status === 'noop') return { kind: 'done', applied: status === 'ok' };
      return { kind: 'skip', reason: status };
    });
    return { outcomes, ready, ...(finished ? { finished } : {}) };
  }

  async failTask(buildId: string, taskId: string, gen: number | string, error: string): Promise<Completion> {
    const { applied, finished } = await this.run(failTaskScript, buildId, [taskId, gen, error.slice(0, 2_000)]);
    return { applied, ready: [], ...(finished ? { finished } : {}) };
  }

  /**
   * A submitted build waiting for its plan. The indexes come first for the same reason as
   * in createBuild; the goal job is the caller's (it owns the queue).
   */
  async submitBuild(input: { buildId: string; goal: string; maxTasks: number; budgetTokens: number; model?: string }): Promise<void> {
    const { buildId } = input;
    const now = Date.now();
    await this.redis.multi().zadd(this.keys.builds, now, buildId).sadd(this.keys.activeBuilds, buildId).exec();
    const fields: Record<string, string | number> = {
      id: buildId,
      goal: input.goal,
      state: 'planning',
      createdAt: now,
      total: 0,
      open: 0,
      maxTasks: input.maxTasks,
      budgetTokens: input.budgetTokens,
      ...(input.model ? { model: input.model } : {}),
    };
    await this.redis
      .multi()
      .hset(this.keys.build(buildId), fields)
      .xadd(this.keys.events(buildId), 'MAXLEN', '~', this.eventsMaxLen, '*', 'at', now, 'type', 'build.submitted', 'data', input.goal.slice(0, 500))
      .exec();
  }

  /** Appends an event that is not a state change (planner progress, follow-ups, reports). */
  async note(buildId: string, type: 'build.planning' | 'build.planned' | 'build.report', fields: { reason?: string; data?: string } = {}): Promise<void> {
    const extra = Object.entries(fields).flatMap(([k, v]) => (v === undefined ? [] : [k, v]));
    await this.redis.xadd(this.keys.events(buildId), 'MAXLEN', '~', this.eventsMaxLen, '*', 'at', Date.now(), 'type', type, ...extra);
  }

  /**
   * Ends a planning or running build: open tasks are cancelled, the build takes `final`
   * ('cancelled' for a user's cancel, 'failed' when codegod stops it). Returns the tasks that
   * had a job (queued or running).
   */
  async cancelBuild(
    buildId: string,
    reason: string,
    final: 'cancelled' | 'failed' = 'cancelled',
    failureCode = '',
  ): Promise<Array<Omit<ReadyTask, 'spec'> & { previous: TaskState }>> {
    const res = await this.run(cancelBuildScript, buildId, [reason, final, failureCode]);
    if (res.kind === 'err') throw new CodegodError('BUILD_STATE', `cannot ${final === 'cancelled' ? 'cancel' : 'stop'} ${buildId}: ${res.message}`);
    return res.withJobs;
  }

  async retryTask(buildId: string, taskId: string): Promise<ReadyTask> {
    const res = await this.run(retryTaskScript, buildId, [taskId]);
    if (res.kind === 'err') {
      if (res.message === 'build not found') throw new NotFoundError('build', buildId);
      throw new CodegodError('BUILD_STATE', `cannot retry ${taskId} in ${buildId}: ${res.message}`);
    }
    const [task] = res.ready;
    if (!task) throw new Error(`retryTask released nothing for ${buildId}/${taskId}`);
    return task;
  }

  /** Starts a failing task over under a revised spec; undefined when it may not be re-planned. */
  async replanTask(buildId: string, taskId: string, gen: number, spec: TaskSpec, why: string, maxReplans: number): Promise<ReadyTask | undefined> {
    const res = await this.run(replanTaskScript, buildId, [taskId, gen, JSON.stringify(spec), why.slice(0, 2_000), maxReplans]);
    return res.kind === 'ok' ? res.ready[0] : undefined;
  }

  /**
   * Adds tasks to a running build. The whole resulting graph is checked for cycles against
   * a snapshot; the script applies the change only if no other growth happened since.
   */
  async growBuild(buildId: string, request: GrowRequest): Promise<ReadyTask[]> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const build = await this.getBuild(buildId);
      const deps = new Map<string, string[]>();
      const ids = await this.redis.hkeys(this.keys.buildStates(buildId));
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hget(this.keys.task(buildId, id), 'deps');
      const rows = (await pipe.exec()) ?? [];
      ids.forEach((id, i) => {
        const v = rows[i]?.[1];
        deps.set(id, typeof v === 'string' && v ? v.split(',') : []);
      });
      for (const t of request.tasks) deps.set(t.spec.id, [...t.spec.dependsOn]);
      for (const b of request.blocks ?? []) deps.set(b.taskId, [...(deps.get(b.taskId) ?? []), ...b.waitFor]);
      const cycles = findCycles(deps);
      if (cycles.length > 0) {
        throw new CodegodError('GROW_REJECTED', `growing ${buildId} would create a cycle: ${cycles[0]!.join(' → ')}`);
      }
      const added = request.tasks.map((t) => ({
        id: t.spec.id,
        role: t.spec.role,
        spec: JSON.stringify(t.spec),
        deps: t.spec.dependsOn,
        depth: t.depth,
        origin: t.origin,
      }));
      const blocks = (request.blocks ?? []).map((b) => ({ id: b.taskId, deps: b.waitFor }));
      const res = await this.run(growBuildScript, buildId, [build.graphVersion, JSON.stringify(added), JSON.stringify(blocks)]);
      if (res.kind === 'conflict') continue;
      if (res.kind === 'err') throw new CodegodError('GROW_REJECTED', `cannot grow ${buildId}: ${res.message}`);
      return res.ready;
    }
    throw new CodegodError('GROW_REJECTED', `cannot grow ${buildId}: the graph kept changing, try again`);
  }

  async getBuild(buildId: string): Promise<BuildRecord> {
    const key = this.keys.build(buildId);
    const raw = await this.redis.hgetall(key);
    if (Object.keys(raw).length === 0) throw new NotFoundError('build', buildId);
    return parseRecord(BuildRecordSchema, raw, key);
  }

  /** LLM tokens (prompt + completion) each task has used so far, in one round trip. */
  async taskTokens(buildId: string, taskIds: readonly string[]): Promise<Map<string, number>> {
    const pipe = this.redis.pipeline();
    for (const id of taskIds) pipe.hmget(this.keys.task(buildId, id), 'promptTokens', 'completionTokens');
    const rows = (await pipe.exec()) ?? [];
    return new Map(taskIds.map((id, i) => [id, ((rows[i]?.[1] ?? []) as Array<string | null>).reduce((sum, v) => sum + (Number(v) || 0), 0)]));
  }

  async getTaskStates(buildId: string): Promise<Map<string, TaskState>> {
    const key = this.keys.buildStates(buildId);
    const raw = await this.redis.hgetall(key);
    const out = new Map<string, TaskState>();
    for (const [id, st] of Object.entries(raw)) {
      const parsed = TaskStateSchema.safeParse(st);
      if (!parsed.success) throw new DataCorruptError(key, `task ${id} has unknown state '${st}'`);
      out.set(id, parsed.data);
    }
    return out;
  }

  async getTask(buildId: string, taskId: string): Promise<TaskView> {
    const [state, raw] = await Promise.all([
      this.redis.hget(this.keys.buildStates(buildId), taskId),
      this.redis.hgetall(this.keys.task(buildId, taskId)),
    ]);
    if (state === null || Object.keys(raw).length === 0) throw new NotFoundError('task', `${buildId}/${taskId}`);
    const key = this.keys.task(buildId, taskId);
    const parsedState = TaskStateSchema.safeParse(state);
    if (!parsedState.success) throw new DataCorruptError(this.keys.buildStates(buildId), `task ${taskId} has unknown state '${state}'`);
    return { id: taskId, state: parsedState.data, ...parseRecord(TaskRecordSchema, raw, key) };
  }

  /** Every task of a build with its record, in one pipelined round trip. */
  async getTasks(buildId: string): Promise<TaskView[]> {
    const states = await this.getTaskStates(buildId);
    const ids = [...states.keys()];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(this.keys.task(buildId, id));
    const rows = (await pipe.exec()) ?? [];
    return ids.map((id, i) => {
      const raw = (rows[i]?.[1] ?? {}) as Record<string, string>;
      return { id, state: states.get(id)!, ...parseRecord(TaskRecordSchema, raw, this.keys.task(buildId, id)) };
    });
  }

  /**
   * What some tasks of a build delivered: role, spec and result as stored, in two pipelined
   * round trips. A result over `maxBytes` is not read (its size is given instead), so one
   * oversized result cannot stall or flood its reader.
   */
  async readResults(buildId: string, taskIds: readonly string[], maxBytes: number): Promise<StoredResult[]> {
    const sizes = this.redis.pipeline();
    for (const id of taskIds) sizes.hstrlen(this.keys.task(buildId, id), 'result').hmget(this.keys.task(buildId, id), 'role', 'spec');
    const rows = (await sizes.exec()) ?? [];
    const out: StoredResult[] = taskIds.map((taskId, i) => {
      const [role, spec] = (rows[2 * i + 1]?.[1] ?? [null, null]) as Array<string | null>;
      return { taskId, key: this.keys.task(buildId, taskId), role: role ?? null, spec: spec ?? null, result: null, resultBytes: Number(rows[2 * i]?.[1] ?? 0) };
    });
    const wanted = out.filter((r) => r.resultBytes > 0 && r.resultBytes <= maxBytes);
    if (wanted.length > 0) {
      const reads = this.redis.pipeline();
      for (const r of wanted) reads.hget(r.key, 'result');
      ((await reads.exec()) ?? []).forEach(([, value], i) => {
        wanted[i]!.result = typeof value === 'string' ? value : null;
      });
    }
    return out;
  }

  /** Newest first. */
  async listBuilds(limit = 50): Promise<string[]> {
    return this.redis.zrevrange(this.keys.builds, 0, limit - 1);
  }

  async activeBuilds(): Promise<string[]> {
    return this.redis.smembers(this.keys.activeBuilds);
  }

  /**
   * Ends a build whose own record cannot be read, failed with `reason` (failCorruptBuild-3.lua),
   * and drops it from the active index.
   */
  async failCorruptBuild(buildId: string, reason: string): Promise<void> {
    await this.run(failCorruptBuildScript, buildId, [reason]);
    await this.markInactive(buildId);
  }

  async markInactive(buildId: string): Promise<void> {
    await this.redis.srem(this.keys.activeBuilds, buildId);
  }
}
