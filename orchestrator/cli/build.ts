import type { BuildRecord } from '../../shared/domain/build.js';
import type { TaskView } from '../../shared/engine/dag-store.js';
import { validateGoal } from '../../shared/domain/goal.js';
import { createReport, type BuildReport } from '../../shared/engine/report.js';
import { usage } from './args.js';
import { agentViews, MASTER_ROLE, withSession, type CliContext, type CliOutput, type Session } from './context.js';
import { EXIT, exitCodeForBuild } from './exit-codes.js';
import { paletteFor, PLAIN, type Palette } from './colour.js';
import { clip, formatCount, formatDuration, plural, table } from './format.js';
import { followBuild, parseReport, ProgressView } from './progress.js';

export interface BuildOptions {
  workspace?: string;
  detach?: boolean;
  json?: boolean;
  /** Milliseconds (the option is given in seconds). */
  timeout?: number;
  maxTasks?: number;
  budgetTokens?: number;
  model?: string;
  local?: boolean;
}

/** `codegod build "goal"`: submit, follow, report; the exit code comes from the build's end. */
export async function buildCommand(ctx: CliContext, goal: string, opts: BuildOptions): Promise<number> {
  if (opts.workspace !== undefined && !opts.local) {
    throw usage('--workspace applies only with --local; workers elsewhere use their own CODEGOD_WORKSPACE_ROOT');
  }
  // Bad input is reported before anything is contacted.
  validateGoal(goal, ctx.config.CODEGOD_MAX_GOAL_CHARS);
  if (opts.local) {
    const { localBuild } = await import('./local.js');
    return localBuild(ctx, goal, opts);
  }
  return withSession(ctx, async (session) => {
    await warnWithoutOrchestrator(ctx, session);
    return submitAndFollow(ctx, session, goal, opts);
  });
}

async function warnWithoutOrchestrator(ctx: CliContext, session: Session): Promise<void> {
  const { agents } = await agentViews(session);
  if (!agents.some((a) => a.role === MASTER_ROLE && a.live)) {
    ctx.err('codegod: warning: no orchestrator is running (no live heartbeat); the build waits until one starts: codegod orchestrator, or use codegod build --local');
  }
}

/** What to say when following stops before the build ends: where the build goes from there. */
export interface FollowHints {
  interrupted(buildId: string): string;
  timedOut(buildId: string, state: string, afterMs: number): string;
}

const remoteHints: FollowHints = {
  interrupted: (id) => `codegod: detached; build ${id} goes on. Follow it: codegod status ${id} --follow · cancel it: codegod cancel ${id}`,
  timedOut: (id, state, ms) =>
    `codegod: build ${id} is still ${state} after ${formatDuration(ms)}; it goes on. Follow it: codegod status ${id} --follow · cancel it: codegod cancel ${id}`,
};

export async function submitAndFollow(ctx: CliContext, session: Session, goal: string, opts: BuildOptions, hints = remoteHints): Promise<number> {
  const buildId = await session.scheduler.submitGoal({
    goal,
    ...(opts.maxTasks !== undefined ? { maxTasks: opts.maxTasks } : {}),
    ...(opts.budgetTokens !== undefined ? { budgetTokens: opts.budgetTokens } : {}),
    ...(opts.model !== undefined ? { model: opts.model } : {}),
  });
  if (opts.detach) {
    if (opts.json) ctx.json({ buildId, state: 'planning' });
    else ctx.out(buildId);
    ctx.err(`follow: codegod status ${buildId} --follow · cancel: codegod cancel ${buildId}`);
    return EXIT.OK;
  }
  const say = (line: string) => (opts.json ? ctx.err(line) : ctx.out(line));
  say(`build ${buildId} submitted`);
  say(`follow: codegod status ${buildId} --follow · cancel: codegod cancel ${buildId} · Ctrl-C here only stops following`);
  return followAndReport(ctx, session, buildId, { json: opts.json === true, ...(opts.timeout ? { timeoutMs: opts.timeout } : {}) }, hints);
}

export function isTerminal(stream: CliOutput, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/**
 * Follows a build to its end and prints its report. Returns the exit code: from the final
 * state, 124 when `timeoutMs` ran out, 130 after Ctrl-C; the build itself goes on in both.
 */
export async function followAndReport(
  ctx: CliContext,
  session: Session,
  buildId: string,
  opts: { json: boolean; timeoutMs?: number },
  hints: FollowHints = remoteHints,
): Promise<number> {
  const stop = new AbortController();
  let why: 'timeout' | 'interrupt' | undefined;
  const timer = opts.timeoutMs
    ? setTimeout(() => {
        why ??= 'timeout';
        stop.abort();
      }, opts.timeoutMs)
    : undefined;
  const offInterrupt = ctx.io.onInterrupt(() => {
    why ??= 'interrupt';
    stop.abort();
  });
  // With --json, stdout holds only the final document; progress goes to stderr.
  const stream = opts.json ? ctx.io.stderr : ctx.io.stdout;
  const view = new ProgressView(stream, isTerminal(stream, ctx.io.env), paletteFor(stream, ctx.io.env));
  let outcome;
  try {
    outcome = await followBuild({
      config: session.config,
      keys: session.keys,
      redis: session.redis,
      buildId,
      view,
      signal: stop.signal,
    });
  } finally {
    if (timer) clearTimeout(timer);
    offInterrupt();
  }
  if (outcome.kind === 'stopped') {
    if (why === 'timeout') {
      ctx.err(hints.timedOut(buildId, outcome.build.state, opts.timeoutMs ?? 0));
      return EXIT.TIMEOUT;
    }
    ctx.err(hints.interrupted(buildId));
    return EXIT.INTERRUPTED;
  }
  const { build } = outcome;
  const [tasks, report] = await Promise.all([session.scheduler.dag.getTasks(buildId), finalReport(session, buildId, outcome.report)]);
  if (opts.json) ctx.json(outcomeJson(build, tasks, report));
  else ctx.out(...renderOutcome(build, tasks, report, ctx.colour));
  const failure = failureLine(build, tasks);
  if (failure) ctx.err(failure);
  return exitCodeForBuild(build) ?? EXIT.BUILD_FAILED;
}

/** The task to blame for a failed build: the recorded first failure if it is still failed, else any failed task. */
export function failedTaskOf(build: BuildRecord, tasks: readonly TaskView[]): TaskView | undefined {
  const failed = tasks.filter((t) => t.state === 'failed');
  return failed.find((t) => t.id === build.failedTask) ?? failed[0];
}

/** One line on stderr saying why a build did not succeed, with where to look next. */
export function failureLine(build: BuildRecord, tasks: readonly TaskView[]): string | undefined {
  const id = build.id;
  if (build.state === 'cancelled') return `codegod: build ${id} was cancelled${build.reason ? `: ${clip(build.reason, 300)}` : ''}`;
  if (build.state !== 'failed') return undefined;
  const task = failedTaskOf(build, tasks);
  if (task && (build.failureCode === undefined || build.failureCode === 'TASK_FAILED')) {
    return `codegod: build ${id} failed: task ${task.id} (${task.role}) failed: ${clip(task.error ?? 'no reason recorded', 300)}; see codegod trace ${id} ${task.id}`;
  }
  const code = build.failureCode ? ` (${build.failureCode})` : '';
  return `codegod: build ${id} failed${code}: ${clip(build.reason ?? 'no reason recorded', 400)}`;
}

/**
 * The report of an ended build: the orchestrator's (from its event, else as stored on the
 * build), or, when none was written, one made from Redis now.
 */
export async function finalReport(session: Session, buildId: string, fromEvent: BuildReport | undefined): Promise<BuildReport> {
  if (fromEvent) return fromEvent;
  const stored = parseReport((await session.redis.hget(session.keys.build(buildId), 'report')) ?? undefined);
  return stored ?? createReport(session.redis, session.keys, session.scheduler.dag, buildId);
}

/** The `--json` document of an ended build: the report, its exit code, and the failure to look at. */
export function outcomeJson(build: BuildRecord, tasks: readonly TaskView[], report: BuildReport) {
  const failed = build.state === 'failed' ? failedTaskOf(build, tasks) : undefined;
  return {
    ...report,
    exitCode: exitCodeForBuild(build) ?? null,
    failure: failed ? { task: failed.id, role: failed.role, error: failed.error ?? null, trace: `codegod trace ${build.id} ${failed.id}` } : null,
  };
}

const REPORT_MAX_TASKS = 100;
const REPORT_MAX_FILES = 30;

/** The human report of an ended build. */
export function renderOutcome(build: BuildRecord, tasks: readonly TaskView[], report: BuildReport, colour: Palette = PLAIN): string[] {
  const tokens = report.llm.promptTokens + report.llm.completionTokens;
  const lines = [
    '',
    `build ${build.id} ${colour.state(build.state)} in ${formatDuration(report.wallMs)} (critical path ${formatDuration(report.criticalPathMs)})`,
    `  goal     ${clip(report.goal, 200)}`,
    `  tasks    ${build.succeeded} succeeded · ${build.failed} failed · ${build.skipped} skipped · ${build.cancelled} cancelled (${build.total} in all)`,
    `  llm      ${plural(report.llm.calls, 'call')} · ${formatCount(tokens)} tokens (${formatCount(report.llm.promptTokens)} prompt · ${formatCount(report.llm.completionTokens)} completion)`,
    `  files    ${report.files.length} written`,
    ...report.files.slice(0, REPORT_MAX_FILES).map((f) => `           ${f}`),
    ...(report.files.length > REPORT_MAX_FILES ? [`           … ${report.files.length - REPORT_MAX_FILES} more`] : []),
  ];
  if (build.state === 'failed') {
    const task = failedTaskOf(build, tasks);
    if (task) {
      lines.push(`  failed   ${task.id} (${task.role}): ${clip(task.error ?? 'no reason recorded', 300)}`);
      lines.push(`  trace    codegod trace ${build.id} ${task.id}`);
    } else lines.push(`  failed   ${build.failureCode ? `${build.failureCode}: ` : ''}${clip(build.reason ?? 'no reason recorded', 300)}`);
  } else if (build.state === 'cancelled' && build.reason) lines.push(`  reason   ${clip(build.reason, 300)}`);
  if (report.tasks.length) {
    const rows = report.tasks
      .slice(0, REPORT_MAX_TASKS)
      .map((t) => [t.id, t.role, colour.state(t.state), String(t.attempts), t.durationMs === null ? '-' : formatDuration(t.durationMs), formatCount(t.tokens), clip(t.title, 60)]);
    lines.push('', ...table(['TASK', 'ROLE', 'STATE', 'ATTEMPTS', 'TIME', 'TOKENS', 'TITLE'], rows).map((l) => `  ${l}`));
    if (report.tasks.length > REPORT_MAX_TASKS) lines.push(`  … ${report.tasks.length - REPORT_MAX_TASKS} more: codegod status ${build.id}`);
  }
  return lines;
}
