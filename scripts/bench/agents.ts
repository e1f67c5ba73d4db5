/**
 * `npm run bench:agents` — the ORPAV agent loop against a scripted OpenAI-compatible server
 * that simulates a GPU's latency (time to first token, per-token time, batching penalty).
 *
 *   - LLM calls and tokens per task; prompt tokens per task and per phase, and the share of
 *     each prompt that is a prefix shared with the previous call of the same task (what vLLM's
 *     prefix cache can reuse; target ≥ 0.6) — for the K independent tasks, and for the todo-app
 *     scenario (a DAG with handoffs, a failed iteration, a follow-up and a re-run)
 *   - requests in flight against tasks waiting on the LLM (is vLLM's batching used?)
 *   - loop overhead per iteration, LLM and command time excluded: with K tasks at once, and
 *     with one task at a time (the loop's own cost, without other tasks sharing the process)
 *   - RSS of an idle worker process (compiled JS when `dist/` is built, and through tsx)
 *
 * K independent backend tasks run on N in-process workers of concurrency C, each with its
 * own AgentExecutor (one LLM client, so one LLM_MAX_INFLIGHT limit, per worker, as in a
 * deployment of N worker processes). Every task writes a Python file, runs it, and is
 * validated by a file check and a command check.
 *
 * Options: --tasks K (default 32), --workers N (4), --concurrency C (8), --llm-inflight L (16),
 * --serial S (8 tasks run one at a time), --ttft MS (150), --per-token MS (8), --penalty P
 * (0.03), --no-context (skip the todo-app run), --executor-only (only the isolated executor's
 * cost: a command through it against the same command on the host, and a task's start-up), --json (last line is one JSON object). Uses REDIS_URL when set, else starts a
 * private redis-server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { Scheduler } from '../../shared/engine/scheduler.js';
import { listAgents } from '../../shared/telemetry/agent-status.js';
import { readAudit } from '../../shared/telemetry/audit.js';
import { loadConfig, type Config } from '../../shared/config.js';
import { createKeys, type Keys } from '../../shared/redis/keys.js';
import type { LlmClient, StructuredRequest } from '../../shared/llm/client.js';
import { createLogger } from '../../shared/logger.js';
import { parsePlan, type Plan } from '../../shared/domain/plan.js';
import { createRedis, displayUrl } from '../../shared/redis/connection.js';
import { RedisServer } from '../../shared/redis/redis-server.js';
import { LoopStateStore } from '../../shared/memory/loop-state.js';
import { openAgentExecutor } from '../../workers/executors/agent.js';
import { openRoleWorker, type OpenedRoleWorker } from '../../shared/engine/open-role-worker.js';
import { startScriptedLlmServer, type RequestLogEntry, type ScriptedLlmServer } from '../llm-server/server.js';
import { loadScenarioFile, type ScenarioInput } from '../llm-server/scenario.js';
import { orchestratorHooks } from '../../shared/engine/completion-hooks.js';
import { ROLES } from '../../shared/domain/roles.js';
import { MemoryStore } from '../../shared/memory/store.js';
import { prefixReport, type PrefixReport, type PromptCall } from './prompt-prefix.js';
import { redisOptions, compileOptions } from '../../shared/options.js';
import { measureExecutor, type ExecutorCost } from './executor-cost.js';

function usageError(message: string): never {
  process.stderr.write(`bench:agents: ${message}\n`);
  process.exit(2);
}

const opts = (() => {
  try {
    return parseArgs({
      options: {
        tasks: { type: 'string', default: '32' },
        workers: { type: 'string', default: '4' },
        concurrency: { type: 'string', default: '8' },
        'llm-inflight': { type: 'string', default: '16' },
        serial: { type: 'string', default: '8' },
        ttft: { type: 'string', default: '150' },
        'per-token': { type: 'string', default: '8' },
        penalty: { type: 'string', default: '0.03' },
        json: { type: 'boolean', default: false },
        'no-context': { type: 'boolean', default: false },
        'executor-only': { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    return usageError((err as Error).message);
  }
})();

const OptionsSchema = z.object({
  tasks: z.coerce.number().int().min(1).max(10_000),
  workers: z.coerce.number().int().min(1).max(64),
  concurrency: z.coerce.number().int().min(1).max(1_000),
  llmInflight: z.coerce.number().int().min(1).max(1_000),
  serial: z.coerce.number().int().min(1).max(100),
  ttftMs: z.coerce.number().min(0),
  perTokenMs: z.coerce.number().min(0),
  penalty: z.coerce.number().min(0),
});
const parsedOptions = OptionsSchema.safeParse({
  tasks: opts.tasks,
  workers: opts.workers,
  concurrency: opts.concurrency,
  llmInflight: opts['llm-inflight'],
  serial: opts.serial,
  ttftMs: opts.ttft,
  perTokenMs: opts['per-token'],
  penalty: opts.penalty,
});
const O = parsedOptions.success ? parsedOptions.data : usageError(z.prettifyError(parsedOptions.error));
/** Requests one worker may have in flight: capped by its task slots and by its client's limit. */
const PER_WORKER_LIMIT = Math.min(O.concurrency, O.llmInflight);
/** Requests the workers may have in flight together: min(N×C, LLM_MAX_INFLIGHT×N). */
const LIMIT = O.workers * PER_WORKER_LIMIT;

// The project root, whether this runs from scripts/bench/ (tsx) or dist/scripts/bench/ (compiled).
const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = HERE.includes('/dist/scripts/') ? fileURLToPath(new URL('../../../', import.meta.url)) : fileURLToPath(new URL('../../', import.meta.url));
const say = (line: string) => process.stderr.write(`${line}\n`);
const logger = createLogger('warn');

const REASON = {
  problem_analysis: 'The workspace lacks the script the task asks for.',
  root_causes: ['not written yet'],
  approach: 'Write the script, run it, then check its output.',
  risks: ['none'],
  success_criteria: 'The script exists and prints its marker.',
  conclusion: 'Write the file, then run it.',
};

const scriptOf = (taskId: string) => `${taskId}.py`;
const markerOf = (taskId: string) => `task ${taskId} done`;

/** One plan and one validation per task (the workspace is shared by the build); reasoning fits all. */
function scenarioFor(taskIds: string[]): ScenarioInput {
  return {
    rules: [
      { match: { phase: 'reason' }, reply: REASON },
      ...taskIds.flatMap((id) => [
        {
          match: { phase: 'plan', task: id },
          reply: {
            steps: [
              { action: 'write_file', params: { path: scriptOf(id), content: `print(${JSON.stringify(markerOf(id))})\n` }, expected: 'written' },
              { action: 'run_command', params: { command: 'python3', args: [scriptOf(id)] }, expected: 'prints the marker' },
            ],
            estimated_duration: '5 seconds',
            confidence: 0.9,
          },
        },
        {
          match: { phase: 'validate', task: id },
          reply: {
            checks: [
              { kind: 'file_exists', target: scriptOf(id), args: [], contains: null },
              { kind: 'command', target: 'python3', args: [scriptOf(id)], contains: markerOf(id) },
            ],
            summary: 'checked',
          },
        },
      ]),
    ],
  };
}

function taskPlan(ids: string[]): Plan {
  return parsePlan(
    { tasks: ids.map((id) => ({ id, role: 'backend', title: `script ${id}`, description: `Write ${scriptOf(id)} that prints "${markerOf(id)}" and run it.`, dependsOn: [] })) },
    { maxTasks: ids.length },
  );
}

/** One change of a count, at ms since `epoch` (performance.now() clock). */
interface CountChange {
  t: number;
  n: number;
}

/** Tasks waiting on the LLM after a change, and the requests in flight they call for. */
interface WaitChange {
  t: number;
  waiting: number;
  /** Σ over workers of min(its waiting tasks, PER_WORKER_LIMIT): each client enforces its own limit. */
  target: number;
}

/**
 * Tasks inside an LLM call (waiting for a client slot or for the reply), per worker, with
 * every change timed: together with the server's in-flight series (also every change) the
 * counts are known at every instant, not only when a sampling timer gets to run — which on a
 * busy event loop would be least often exactly when the loop lags.
 */
interface WaitGauge {
  perWorker: number[];
  epoch: number;
  changes: WaitChange[];
  /** Time spent inside `structured()`, summed over calls. */
  insideMs: number;
}

/**
 * Counts the callers inside `structured()`: that is the number of tasks waiting on the LLM,
 * which the server's in-flight count is measured against. The count is taken at the client's
 * entry point so that a request held back by the client (its in-flight limit) counts as
 * waiting, not as a task doing something else.
 */
function gaugeWaiting(client: LlmClient, gauge: WaitGauge, worker: number): void {
  const structured = client.structured.bind(client);
  const change = (delta: number) => {
    gauge.perWorker[worker] = (gauge.perWorker[worker] ?? 0) + delta;
    gauge.changes.push({
      t: performance.now() - gauge.epoch,
      waiting: gauge.perWorker.reduce((a, n) => a + n, 0),
      target: gauge.perWorker.reduce((a, n) => a + Math.min(n, PER_WORKER_LIMIT), 0),
    });
  };
  client.structured = async <S extends z.ZodType>(request: StructuredRequest<S>) => {
    const started = performance.now();
    change(1);
    try {
      return await structured(request);
    } finally {
      gauge.insideMs += performance.now() - started;
      change(-1);
    }
  };
}

async function runBuild(scheduler: Scheduler, redis: Redis, ids: string[]): Promise<string> {
  const buildId = await scheduler.createBuild({ goal: 'bench agents', plan: taskPlan(ids), maxTasks: ids.length });
  for (;;) {
    const [state, reason] = await redis.hmget(scheduler.keys.build(buildId), 'state', 'reason');
    if (state === 'succeeded') return buildId;
    if (state !== 'running') throw new Error(`bench build ${buildId} ended ${state ?? 'missing'}: ${reason ?? ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const LlmCounterSchema = z.object({
  calls: z.coerce.number().int().default(0),
  promptTokens: z.coerce.number().int().default(0),
  completionTokens: z.coerce.number().int().default(0),
});
type LlmCounters = z.infer<typeof LlmCounterSchema>;

async function llmCounters(redis: Redis, keys: Keys): Promise<LlmCounters> {
  return LlmCounterSchema.parse(await redis.hgetall(keys.metricsLlm));
}

const LlmCallEntrySchema = z.object({ task: z.string().min(1), ms: z.coerce.number().int().min(0) });

/** Milliseconds each task's LLM requests took, as the client recorded them (the build's LLM call stream). */
async function llmMsByTask(redis: Redis, keys: Keys, buildId: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let from = '-';
  for (;;) {
    const rows = await redis.xrange(keys.llmCalls(buildId), from, '+', 'COUNT', 1_000);
    for (const [, fields] of rows) {
      const raw: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) raw[fields[i]!] = fields[i + 1]!;
      const entry = LlmCallEntrySchema.parse(raw);
      out.set(entry.task, (out.get(entry.task) ?? 0) + entry.ms);
    }
    if (rows.length < 1_000) return out;
    from = `(${rows[rows.length - 1]![0]}`;
  }
}

/** Milliseconds each task spent in commands (Observe probes, Act steps, Validate checks), from the audit stream. */
async function commandMsByTask(redis: Redis, keys: Keys, buildId: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let from: string | undefined;
  for (;;) {
    const records = await readAudit(redis, keys, buildId, from, 1_000);
    for (const { entry } of records) {
      if (entry.type === 'command' && entry.taskId !== undefined) out.set(entry.taskId, (out.get(entry.taskId) ?? 0) + entry.durationMs);
    }
    if (records.length < 1_000) return out;
    from = records[records.length - 1]!.id;
  }
}

/** Where one task's loop time went. */
interface TaskCost {
  wallMs: number;
  llmMs: number;
  commandMs: number;
  iterations: number;
  /** Per iteration, LLM and command time excluded. */
  overheadMs: number;
}

/**
 * Loop overhead per iteration, per task:
 *
 *   (trace.updatedAt − trace.startedAt − Σ LLM request ms − Σ command ms) / iterations
 *
 * The trace's span runs from the loop loading its checkpoint to its last save, so it holds
 * every phase and everything between phases (checkpoint writes, memory updates). LLM request
 * ms are what the client recorded per HTTP request (from taking an in-flight slot until the
 * SDK hands back the reply), so the client's own work around a request — schema conversion,
 * zod validation, the usage record, the budget check — stays in the overhead, as it should.
 * Command ms come from the audit stream and cover every command the loop ran, the Observe
 * probes and Validate checks as well as Act's steps, each from just before its spawn to its
 * exit. Waiting for a client slot is not subtracted: with LLM_MAX_INFLIGHT below the worker
 * concurrency it would show up here.
 */
async function taskCosts(redis: Redis, keys: Keys, buildId: string, ids: string[]): Promise<TaskCost[]> {
  const states = new LoopStateStore(redis, keys, logger);
  const [llm, commands] = await Promise.all([llmMsByTask(redis, keys, buildId), commandMsByTask(redis, keys, buildId)]);
  const costs: TaskCost[] = [];
  for (const id of ids) {
    const trace = await states.read(buildId, id);
    if (!trace || trace.status !== 'succeeded') throw new Error(`task ${id} has no successful trace`);
    const wallMs = trace.updatedAt - trace.startedAt;
    const llmMs = llm.get(id) ?? 0;
    const commandMs = commands.get(id) ?? 0;
    const iterations = trace.iterations.length;
    costs.push({ wallMs, llmMs, commandMs, iterations, overheadMs: (wallMs - llmMs - commandMs) / iterations });
  }
  return costs;
}

interface Overhead {
  meanMs: number;
  p95Ms: number;
  wallMs: number;
  llmMs: number;
  commandMs: number;
  iterations: number;
}

function summarize(costs: TaskCost[]): Overhead {
  const n = costs.length;
  const mean = (f: (c: TaskCost) => number) => costs.reduce((a, c) => a + f(c), 0) / n;
  const sorted = costs.map((c) => c.overheadMs).sort((a, b) => a - b);
  return {
    meanMs: mean((c) => c.overheadMs),
    p95Ms: sorted[Math.min(n - 1, Math.ceil(0.95 * n) - 1)]!,
    wallMs: mean((c) => c.wallMs),
    llmMs: mean((c) => c.llmMs),
    commandMs: mean((c) => c.commandMs),
    iterations: mean((c) => c.iterations),
  };
}

interface InflightReport {
  /**
   * Time-weighted mean of in-flight / target while any task waits on the LLM. The target is
   * min(waiting, LIMIT) when waiting tasks are spread evenly over the workers (always so
   * when LLM_MAX_INFLIGHT ≥ concurrency); see WaitChange.
   */
  ratio: number;
  /** Time during which at least one task waited on the LLM. */
  busyMs: number;
  meanInFlight: number;
  meanWaiting: number;
}

/**
 * Walks both step functions (server in flight, tasks waiting) from `0` to `endMs` and
 * integrates over the stretches where a task waits on the LLM. Both start at zero: the
 * warm-up build has ended and the server was reset before the measured build.
 */
function inflightReport(inFlight: readonly CountChange[], waiting: readonly WaitChange[], endMs: number): InflightReport {
  const events: Array<{ t: number; inFlight: number } | WaitChange> = [...inFlight.map((c) => ({ t: c.t, inFlight: c.n })), ...waiting]
    .filter((e) => e.t <= endMs)
    .sort((a, b) => a.t - b.t);
  const now = { inFlight: 0, waiting: 0, target: 0 };
  let last = 0;
  let busy = 0;
  let ratio = 0;
  let flight = 0;
  let wait = 0;
  const advance = (t: number) => {
    const dt = t - last;
    if (dt > 0 && now.waiting > 0) {
      busy += dt;
      ratio += (dt * now.inFlight) / now.target;
      flight += dt * now.inFlight;
      wait += dt * now.waiting;
    }
    last = Math.max(last, t);
  };
  for (const e of events) {
    advance(e.t);
    if ('inFlight' in e) now.inFlight = e.inFlight;
    else Object.assign(now, { waiting: e.waiting, target: e.target });
  }
  advance(endMs);
  if (busy === 0) throw new Error('no task waited on the LLM during the measured build');
  return { ratio: ratio / busy, busyMs: busy, meanInFlight: flight / busy, meanWaiting: wait / busy };
}

/**
 * What an LLM call costs a task beyond the server's own time for the request: the time
 * inside `structured()` minus the server's request durations (arrival to answer sent), per
 * request. It is the client's share: building the request, waiting for a slot, parsing and
 * validating the reply, recording usage — and, in a busy process, waiting for the event loop.
 */
function clientMsPerCall(llm: ScriptedLlmServer, fromRequest: number, insideMs: number): { calls: number; ms: number } {
  const chats = llm.requests.slice(fromRequest).filter((r) => r.path === '/v1/chat/completions');
  const serverMs = chats.reduce((a, r) => a + (r.ms ?? 0), 0);
  return { calls: chats.length, ms: chats.length === 0 ? 0 : (insideMs - serverMs) / chats.length };
}

const VmRssSchema = z.coerce.number().int().positive();

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = VmRssSchema.parse(/^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1]);
  return kb / 1024;
}

/**
 * RSS of a real worker process (agent executor, backend role) once it has registered and sat
 * idle for a second. `runtime` picks compiled JS from `dist/` or the TypeScript sources via tsx.
 */
async function idleWorkerRss(config: Config, redis: Redis, runtime: 'node' | 'tsx'): Promise<number> {
  const args = runtime === 'node' ? [join(ROOT, 'dist/workers/main.js')] : ['--import', 'tsx', join(ROOT, 'workers/main.ts')];
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? tmpdir(),
    REDIS_URL: config.REDIS_URL,
    CODEGOD_PREFIX: config.CODEGOD_PREFIX,
    AGENT_ROLE: 'backend',
    CODEGOD_EXECUTOR: 'agent',
    VLLM_API_URL: config.VLLM_API_URL,
    CODEGOD_WORKSPACE_ROOT: config.CODEGOD_WORKSPACE_ROOT,
    WORKER_CONCURRENCY: String(config.WORKER_CONCURRENCY),
    LOG_LEVEL: 'warn',
    // As the image runs it (see the Dockerfile's NODE_OPTIONS).
    NODE_OPTIONS: '--max-semi-space-size=2',
    ...(config.REDIS_PASSWORD !== undefined ? { REDIS_PASSWORD: config.REDIS_PASSWORD } : {}),
  };
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  // The worker must not outlive the bench, however the bench ends.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  try {
    const keys = createKeys(config.CODEGOD_PREFIX);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) throw new Error(`${runtime} worker exited before registering: ${stderr.join('').slice(-500)}`);
      const { agents } = await listAgents(redis, keys);
      if (agents.some((a) => a.pid === child.pid && a.state === 'idle')) break;
      if (Date.now() > deadline) throw new Error(`${runtime} worker did not register within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1_000));
    return rssMb(child.pid);
  } finally {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
    process.removeListener('exit', reap);
  }
}

/** The chat requests of agent phases in a request log, as the prefix report reads them. */
function promptCalls(entries: readonly RequestLogEntry[]): PromptCall[] {
  return entries
    .filter((r) => r.path === '/v1/chat/completions' && r.task !== undefined && r.phase !== undefined && r.messages !== undefined)
    .map((r) => ({
      task: r.task!,
      phase: r.phase!,
      messages: (r.messages as Array<{ role: string; content?: unknown }>).map((m) => ({ role: m.role, content: typeof m.content === 'string' ? m.content : '' })),
    }));
}

const TODO_APP = 'scripts/llm-server/scenarios/todo-app.yaml';

/**
 * The todo-app scenario's build (the planner's DAG, run directly) on one in-process worker per
 * role with the orchestrator's completion hooks, against its own scripted server: prompts with
 * handoffs, a failed iteration, a follow-up and a re-run. Returns its prefix report.
 */
async function todoAppPrompts(redisUrl: string, workspaceRoot: string): Promise<PrefixReport & { makespanMs: number }> {
  const path = join(ROOT, TODO_APP);
  const scenario = await loadScenarioFile(path);
  const planRule = scenario.rules.find((r) => r.match.phase === 'plan-dag');
  if (planRule?.reply?.kind !== 'json') throw new Error(`${TODO_APP} has no plan-dag reply`);
  const plan = parsePlan(planRule.reply.value, { maxTasks: 50 });
  // As for the main run: the test suite holds the todo-app scenario to the grammar.
  const llm = await startScriptedLlmServer({ scenarioPath: path, grammarCheck: false });
  const config = loadConfig({
    ...process.env,
    REDIS_URL: redisUrl,
    CODEGOD_PREFIX: `benchctx${Date.now().toString(36)}`,
    LOG_LEVEL: 'warn',
    CODEGOD_EXECUTOR: 'agent',
    VLLM_API_URL: llm.url,
    CODEGOD_WORKSPACE_ROOT: workspaceRoot,
    CODEGOD_TASK_ATTEMPTS: '1',
  });
  const redis = createRedis(redisOptions(config), 'service');
  const scheduler = new Scheduler(redis, createKeys(config.CODEGOD_PREFIX), compileOptions(config).scheduler, logger);
  const options = compileOptions(config);
  const workers = ROLES.map((role) =>
    openRoleWorker({
      options,
      role,
      executor: openAgentExecutor(options, logger),
      logger,
      agentId: `bench-ctx-${role}`,
      hooks: (s, r) => orchestratorHooks(s, new MemoryStore(r, s.keys, logger), logger),
    }),
  );
  try {
    for (const w of workers) await w.start();
    const t0 = performance.now();
    const buildId = await scheduler.createBuild({ goal: 'Create a Flask + React todo app', plan });
    for (;;) {
      const [state, reason] = await redis.hmget(scheduler.keys.build(buildId), 'state', 'reason');
      if (state === 'succeeded') break;
      if (state !== 'running') throw new Error(`todo-app build ${buildId} ended ${state ?? 'missing'}: ${reason ?? ''}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { ...prefixReport(promptCalls(llm.requests)), makespanMs: Math.round(performance.now() - t0) };
  } finally {
    for (const w of workers) await w.close().catch(() => undefined);
    await scheduler.close().catch(() => undefined);
    redis.disconnect();
    await llm.close();
  }
}

/** The prefix report without per-task rows, rounded, for the JSON line. */
function promptSummary(r: PrefixReport) {
  return {
    calls: r.calls,
    tasks: r.tasks,
    meanPromptTokensPerTask: Math.round(r.meanPromptTokensPerTask),
    reusableShare: round(r.reusableShare, 3),
    reusableShareAllCalls: round(r.reusableShareAllCalls, 3),
    byPhase: Object.fromEntries(
      Object.entries(r.byPhase).map(([phase, p]) => [phase, { calls: p.calls, meanPromptTokens: Math.round(p.meanPromptTokens), reusableShare: p.reusableShare === null ? null : round(p.reusableShare, 3) }]),
    ),
  };
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));
/** The histogram holds each timer's whole interval; this is subtracted to leave the delay. */
const LOOP_DELAY_RESOLUTION_MS = 5;

function executorRows(cost: ExecutorCost): Array<[string, string, string]> {
  return [
    ['command via executor, added p50 / p99', `${cost.addedP50Ms} / ${cost.addedP99Ms} ms (${cost.isolatedP50Ms} / ${cost.isolatedP99Ms} against ${cost.hostP50Ms} / ${cost.hostP99Ms})`, '≤ 15 ms p50'],
    ['  file write / read p50 (executor)', `${cost.fileWriteP50Ms} / ${cost.fileReadP50Ms} ms`, '-'],
    ["  task executor start-up p50 / p99", `${cost.taskStartP50Ms} / ${cost.taskStartP99Ms} ms`, 'once per task'],
  ];
}

async function executorOnly(): Promise<void> {
  const workspaceRoot = mkdtempSync(join(tmpdir(), 'codegod-bench-ws-'));
  try {
    const cost = await measureExecutor(loadConfig({ ...process.env, CODEGOD_WORKSPACE_ROOT: workspaceRoot }), workspaceRoot);
    say(`isolation: ${cost.tier} (${cost.runs} runs each)`);
    for (const r of executorRows(cost)) process.stdout.write(`${r[0].padEnd(40)} | ${r[1].padEnd(60)} | ${r[2]}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(cost)}\n`);
  } finally {
    rmSync(workspaceRoot, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (opts['executor-only']) return executorOnly();
  let redisServer: RedisServer | undefined;
  let llm: ScriptedLlmServer | undefined;
  const workspaceRoot = mkdtempSync(join(tmpdir(), 'codegod-bench-ws-'));
  const workers: OpenedRoleWorker[] = [];
  const connections: Redis[] = [];
  let scheduler: Scheduler | undefined;
  try {
    let url = process.env.REDIS_URL;
    if (!url) {
      redisServer = await new RedisServer().start();
      url = redisServer.url;
    }
    const warmIds = Array.from({ length: O.workers }, (_, i) => `w${i}`);
    const ids = Array.from({ length: O.tasks }, (_, i) => `t${i}`);
    const serialIds = Array.from({ length: O.serial }, (_, i) => `s${i}`);
    llm = await startScriptedLlmServer({
      scenario: scenarioFor([...warmIds, ...ids, ...serialIds]),
      latency: { ttftMs: O.ttftMs, perTokenMs: O.perTokenMs, concurrencyPenalty: O.penalty },
      // Room for every request and in-flight change of the measured build (a few per task).
      logLimit: Math.max(10_000, 20 * O.tasks),
      // The grammar check costs CPU in this process for every reply; the test suite holds
      // these same reply shapes to the grammar, so the bench measures without it.
      grammarCheck: false,
    });
    const config = loadConfig({
      ...process.env,
      REDIS_URL: url,
      CODEGOD_PREFIX: `bench${Date.now().toString(36)}`,
      LOG_LEVEL: 'warn',
      WORKER_CONCURRENCY: String(O.concurrency),
      CODEGOD_EXECUTOR: 'agent',
      VLLM_API_URL: llm.url,
      CODEGOD_WORKSPACE_ROOT: workspaceRoot,
      LLM_MAX_INFLIGHT: String(O.llmInflight),
      // A failed attempt is a broken bench, not something to retry around.
      CODEGOD_TASK_ATTEMPTS: '1',
    });
    const redis = createRedis(redisOptions(config), 'service');
    connections.push(redis);
    const keys = createKeys(config.CODEGOD_PREFIX);
    const options = compileOptions(config);
    scheduler = new Scheduler(redis, keys, options.scheduler, logger);
    const gauge: WaitGauge = { perWorker: Array.from({ length: O.workers }, () => 0), epoch: performance.now(), changes: [], insideMs: 0 };
    for (let i = 0; i < O.workers; i++) {
      const executor = openAgentExecutor(options, logger);
      gaugeWaiting(executor.client, gauge, i);
      workers.push(openRoleWorker({ options, role: 'backend', executor, logger, agentId: `bench-backend-${i}` }));
    }
    for (const w of workers) await w.start();

    say(
      `codegod bench:agents — redis ${displayUrl(url)}, ${O.tasks} tasks on ${O.workers} workers × concurrency ${O.concurrency}, ` +
        `LLM_MAX_INFLIGHT ${O.llmInflight} (limit ${LIMIT}), latency ttft ${O.ttftMs} ms + ${O.perTokenMs} ms/token × (1 + ${O.penalty} × (in flight − 1))`,
    );
    if (O.llmInflight < O.concurrency) say('note: LLM_MAX_INFLIGHT < concurrency, so waits for a client slot are counted as loop overhead');
    // Warm-up: JIT, Lua script cache, connections, each client's model lookup.
    await runBuild(scheduler, redis, warmIds);
    const before = await llmCounters(redis, keys);

    // The server's series counts from its reset; the gauge restarts at the same instant.
    llm.reset();
    gauge.epoch = performance.now();
    gauge.changes = [];
    gauge.insideMs = 0;
    // Workers, tasks and the LLM server share this process's event loop: its delay and this
    // process's CPU time per task tell how much of the overhead below is waiting for the
    // loop (other tasks' work) rather than the task's own.
    const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
    loopDelay.enable();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let buildId: string;
    try {
      buildId = await runBuild(scheduler, redis, ids);
    } finally {
      loopDelay.disable();
    }
    const cpu = process.cpuUsage(cpu0);
    const endMs = performance.now() - gauge.epoch;
    const makespanMs = performance.now() - t0;
    const after = await llmCounters(redis, keys);
    const calls = after.calls - before.calls;
    const promptTokens = after.promptTokens - before.promptTokens;
    const completionTokens = after.completionTokens - before.completionTokens;
    const clientMs = clientMsPerCall(llm, 0, gauge.insideMs);
    if (clientMs.calls !== calls) say(`note: the server answered ${clientMs.calls} chat requests, codegod recorded ${calls}`);
    const inflight = inflightReport(
      llm.inFlightSeries.map((x) => ({ t: x.t, n: x.inFlight })),
      gauge.changes,
      endMs,
    );
    const maxInFlight = llm.maxInFlight;
    const independentPrompts = prefixReport(promptCalls(llm.requests));
    const benchRssMb = process.memoryUsage().rss / 1024 / 1024;
    const overhead = summarize(await taskCosts(redis, keys, buildId, ids));
    // The same loop with nothing else running: what a task costs by itself.
    const serialCosts: TaskCost[] = [];
    const serialFrom = llm.requests.length;
    gauge.insideMs = 0;
    for (const id of serialIds) serialCosts.push(...(await taskCosts(redis, keys, await runBuild(scheduler, redis, [id]), [id])));
    const serial = summarize(serialCosts);
    const serialClientMs = clientMsPerCall(llm, serialFrom, gauge.insideMs);

    for (const w of workers.splice(0)) await w.close();
    const compiled = existsSync(join(ROOT, 'dist/workers/main.js'));
    const rssTsx = await idleWorkerRss(config, redis, 'tsx');
    const rssNode = compiled ? await idleWorkerRss(config, redis, 'node') : undefined;
    if (!compiled) say('note: dist/workers/main.js is missing (run `npm run build`); idle RSS measured through tsx only');
    const todoApp = opts['no-context'] ? undefined : await todoAppPrompts(url, workspaceRoot);

    const result = {
      tasks: O.tasks,
      workers: O.workers,
      concurrency: O.concurrency,
      llmMaxInflight: O.llmInflight,
      inflightLimit: LIMIT,
      makespanMs: Math.round(makespanMs),
      llmCallsPerTask: round(calls / O.tasks),
      tokensPerTask: Math.round((promptTokens + completionTokens) / O.tasks),
      promptTokensPerTask: Math.round(promptTokens / O.tasks),
      completionTokensPerTask: Math.round(completionTokens / O.tasks),
      inflightOverReady: round(inflight.ratio, 3),
      meanInFlight: round(inflight.meanInFlight),
      meanWaitingOnLlm: round(inflight.meanWaiting),
      maxInFlight,
      llmBusyMs: Math.round(inflight.busyMs),
      clientMsPerLlmCall: round(clientMs.ms, 1),
      clientMsPerLlmCallSerial: round(serialClientMs.ms, 1),
      iterationsPerTask: round(overhead.iterations),
      taskLoopWallMs: Math.round(overhead.wallMs),
      taskLlmMs: Math.round(overhead.llmMs),
      taskCommandMs: Math.round(overhead.commandMs),
      // The loop's own cost per iteration: tasks one at a time, so no task waits for another's
      // turn on the event loop. With K tasks in one process each also queues behind the
      // others' work; that is reported apart (loopOverheadConcurrentMs), not as the loop's cost.
      loopOverheadMs: round(serial.meanMs, 1),
      loopOverheadP95Ms: round(serial.p95Ms, 1),
      loopOverheadConcurrentMs: round(overhead.meanMs, 1),
      loopOverheadConcurrentP95Ms: round(overhead.p95Ms, 1),
      eventLoopDelayMeanMs: round(loopDelay.mean / 1e6 - LOOP_DELAY_RESOLUTION_MS, 1),
      eventLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6 - LOOP_DELAY_RESOLUTION_MS, 1),
      benchProcessRssMb: round(benchRssMb, 1),
      benchCpuMsPerTask: round((cpu.user + cpu.system) / 1_000 / O.tasks, 1),
      idleWorkerRssMb: round(rssNode ?? rssTsx, 1),
      idleWorkerRssRuntime: rssNode !== undefined ? 'node' : 'tsx',
      idleWorkerRssNodeMb: rssNode !== undefined ? round(rssNode, 1) : null,
      idleWorkerRssTsxMb: round(rssTsx, 1),
      prompts: {
        independent: promptSummary(independentPrompts),
        ...(todoApp ? { todoApp: { ...promptSummary(todoApp), makespanMs: todoApp.makespanMs, byTask: todoApp.byTask } } : {}),
      },
    };
    const executor = await measureExecutor(config, workspaceRoot);
    Object.assign(result, { executor });
    const phaseTokens = (r: PrefixReport) =>
      Object.entries(r.byPhase)
        .map(([phase, p]) => `${phase} ${Math.round(p.meanPromptTokens)}`)
        .join(', ');
    const phaseShares = (r: PrefixReport) =>
      Object.entries(r.byPhase)
        .filter(([, p]) => p.reusableShare !== null)
        .map(([phase, p]) => `${phase} ${round(p.reusableShare!, 2)}`)
        .join(', ');
    const promptRows = (label: string, r: PrefixReport): Array<[string, string, string]> => [
      [`prompt tokens per task, ${label}`, `${Math.round(r.meanPromptTokensPerTask)} (${r.calls} calls, ${r.tasks} tasks)`, '-'],
      ['  per call, by phase', phaseTokens(r), '-'],
      ['  reusable prefix of the previous call', `${round(r.reusableShare, 3)} (all calls: ${round(r.reusableShareAllCalls, 3)})`, '≥ 0.6'],
      ['  by phase', phaseShares(r), '-'],
    ];
    const rows: Array<[string, string, string]> = [
      ['LLM calls per task', `${result.llmCallsPerTask}`, 'reason + plan + validate = 3'],
      ['tokens per task', `${result.tokensPerTask} (${result.promptTokensPerTask} in, ${result.completionTokensPerTask} out)`, '-'],
      ['in flight / min(waiting, limit)', `${result.inflightOverReady} (mean ${result.meanInFlight} of ${result.meanWaitingOnLlm})`, '≈ 1.0'],
      ['peak in flight', `${maxInFlight} (limit ${LIMIT})`, `min(${O.tasks}, ${LIMIT})`],
      ['client ms per LLM call (K / 1 at once)', `${result.clientMsPerLlmCall} / ${result.clientMsPerLlmCallSerial} ms`, '-'],
      ['loop overhead / iteration (1 at once)', `${result.loopOverheadMs} ms (p95 ${result.loopOverheadP95Ms})`, '< 50 ms'],
      [`  + queueing, ${O.tasks} at once in one process`, `${result.loopOverheadConcurrentMs} ms (p95 ${result.loopOverheadConcurrentP95Ms})`, '-'],
      ['  task: loop / LLM / commands', `${result.taskLoopWallMs} / ${result.taskLlmMs} / ${result.taskCommandMs} ms`, '-'],
      ['  event-loop delay mean / p99', `${result.eventLoopDelayMeanMs} / ${result.eventLoopDelayP99Ms} ms`, '-'],
      ['  bench process: CPU / task, RSS', `${result.benchCpuMsPerTask} ms, ${result.benchProcessRssMb} MB`, '-'],
      ...(rssNode !== undefined ? [['idle worker RSS (node, dist/)', `${result.idleWorkerRssNodeMb} MB`, '< 100 MB'] as [string, string, string]] : []),
      ['idle worker RSS (tsx)', `${result.idleWorkerRssTsxMb} MB`, rssNode !== undefined ? 'tsx adds its compiler' : '< 100 MB (tsx inflates)'],
      ['makespan', `${result.makespanMs} ms`, '-'],
      ...executorRows(executor),
      ...promptRows(`${O.tasks} independent`, independentPrompts),
      ...(todoApp ? promptRows('todo-app DAG', todoApp) : []),
    ];
    const widths = [40, 36, 28];
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
    process.stdout.write(`${line(['measure', 'codegod', 'target'])}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}\n`);
    for (const r of rows) process.stdout.write(`${line(r)}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    for (const w of workers) await w.close().catch(() => undefined);
    await scheduler?.close().catch(() => undefined);
    for (const c of connections) c.disconnect();
    await llm?.close();
    await redisServer?.stop();
    rmSync(workspaceRoot, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    say(`bench:agents failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
