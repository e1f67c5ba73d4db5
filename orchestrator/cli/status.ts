import type { BuildRecord } from '../../shared/domain/build.js';
import type { TaskView } from '../../shared/engine/dag-store.js';
import { DataCorruptError, errorMessage } from '../../shared/domain/errors.js';
import { ALL_QUEUES } from '../../shared/engine/queues.js';
import { usage } from './args.js';
import { followAndReport } from './build.js';
import { agentViews, withSession, type AgentView, type CliContext, type Session } from './context.js';
import { EXIT } from './exit-codes.js';
import { clip, formatAge, formatCount, formatDuration, plural, table } from './format.js';

export interface StatusOptions {
  json?: boolean;
  limit?: number;
  follow?: boolean;
  /** Milliseconds (the option is given in seconds); only with `follow`. */
  timeout?: number;
}

const JOB_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

type BuildRow = { id: string; build?: BuildRecord; problem?: string };

async function recentBuilds(session: Session, limit: number): Promise<BuildRow[]> {
  const ids = await session.scheduler.dag.listBuilds(limit);
  return Promise.all(
    ids.map(async (id): Promise<BuildRow> => {
      try {
        return { id, build: await session.scheduler.dag.getBuild(id) };
      } catch (err) {
        // One hand-edited or half-deleted build must not hide the others.
        return { id, problem: err instanceof DataCorruptError ? err.message : errorMessage(err) };
      }
    }),
  );
}

async function queueDepths(session: Session): Promise<Record<string, Record<string, number>>> {
  const entries = await Promise.all(
    ALL_QUEUES.map(async (name) => {
      const counts = await session.scheduler.queues.get(name).getJobCounts(...JOB_STATES);
      return [name, Object.fromEntries(JOB_STATES.map((s) => [s, counts[s] ?? 0]))] as const;
    }),
  );
  return Object.fromEntries(entries);
}

function doneOf(b: BuildRecord): string {
  return `${b.succeeded}/${b.total}${b.failed ? ` (${b.failed} failed)` : ''}`;
}

/** The task the agent's state is about, with its phase when the state is not that phase, and how many more run. */
function agentTask(a: AgentView): string {
  const [first, ...rest] = a.currentTasks;
  if (!first) return '-';
  const phase = first.phase && first.phase !== a.state ? ` (${first.phase})` : '';
  return `${first.buildId}/${first.taskId}${phase}${rest.length ? ` +${rest.length}` : ''}`;
}

/** `codegod status`: recent builds, queue depths per role, agents. */
async function overview(ctx: CliContext, session: Session, opts: StatusOptions): Promise<number> {
  const now = Date.now();
  const [builds, queues, { agents, malformed }] = await Promise.all([recentBuilds(session, opts.limit ?? 10), queueDepths(session), agentViews(session, now)]);
  if (opts.json) {
    ctx.json({
      builds: builds.map((r) =>
        r.build
          ? {
              id: r.id,
              state: r.build.state,
              goal: r.build.goal,
              createdAt: r.build.createdAt,
              finishedAt: r.build.finishedAt ?? null,
              total: r.build.total,
              succeeded: r.build.succeeded,
              failed: r.build.failed,
              skipped: r.build.skipped,
              cancelled: r.build.cancelled,
              tokens: r.build.promptTokens + r.build.completionTokens,
            }
          : { id: r.id, problem: r.problem },
      ),
      queues,
      agents,
      malformedAgents: malformed,
    });
    return EXIT.OK;
  }
  ctx.out('builds');
  if (builds.length === 0) ctx.out('  none yet: codegod build "your goal"');
  else {
    const rows = builds.map((r) =>
      r.build
        ? [r.id, ctx.colour.state(r.build.state), doneOf(r.build), formatAge(r.build.createdAt, now), clip(r.build.goal, 50)]
        : [r.id, ctx.colour.state('unreadable'), '-', '-', clip(r.problem ?? '', 60)],
    );
    ctx.out(...table(['BUILD', 'STATE', 'DONE', 'AGE', 'GOAL'], rows).map((l) => `  ${l}`));
  }
  ctx.out('', 'queues');
  ctx.out(...table(['QUEUE', ...JOB_STATES.map((s) => s.toUpperCase())], Object.entries(queues).map(([q, c]) => [q, ...JOB_STATES.map((s) => String(c[s]))])).map((l) => `  ${l}`));
  ctx.out('', 'agents');
  if (agents.length === 0) ctx.out('  none: start workers with codegod worker --role <role>, the orchestrator with codegod orchestrator');
  else {
    const rows = agents.map((a) => [
      a.agentId,
      a.role,
      ctx.colour.state(a.stale ? `${a.state} (stale)` : a.state),
      agentTask(a),
      formatDuration(a.uptimeMs),
      formatAge(a.heartbeat, now),
      String(a.tasksCompleted),
    ]);
    ctx.out(...table(['AGENT', 'ROLE', 'STATE', 'TASK', 'UPTIME', 'HEARTBEAT', 'DONE'], rows).map((l) => `  ${l}`));
    const stale = agents.filter((a) => a.stale).length;
    if (stale) ctx.out(`  ${stale} agent(s) stale: no heartbeat for over ${formatDuration(Math.min(...agents.filter((a) => a.stale).map((a) => a.heartbeatAgeMs)))}; their process has probably died`);
  }
  if (malformed.length) ctx.out(`  unreadable agent entries: ${malformed.join(', ')}`);
  return EXIT.OK;
}

function taskDuration(t: TaskView, now: number): number | undefined {
  if (t.startedAt === undefined) return undefined;
  return (t.finishedAt ?? now) - t.startedAt;
}

/**
 * Dependencies first, level by level (ties by id), so the DAG reads top-down. Kahn's
 * algorithm: iterative, so a chain of thousands of tasks cannot overflow the stack.
 */
export function ordered(tasks: readonly TaskView[]): TaskView[] {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const waiting = new Map(tasks.map((t) => [t.id, t.deps.filter((d) => byId.has(d)).length]));
  const dependents = new Map<string, string[]>();
  for (const t of tasks) {
    for (const d of t.deps) {
      if (!byId.has(d)) continue;
      const list = dependents.get(d);
      if (list) list.push(t.id);
      else dependents.set(d, [t.id]);
    }
  }
  const out: TaskView[] = [];
  let level = tasks.filter((t) => waiting.get(t.id) === 0).map((t) => t.id);
  while (level.length) {
    level.sort();
    const next: string[] = [];
    for (const id of level) {
      out.push(byId.get(id)!);
      for (const d of dependents.get(id) ?? []) {
        const left = waiting.get(d)! - 1;
        waiting.set(d, left);
        if (left === 0) next.push(d);
      }
    }
    level = next;
  }
  // A cycle cannot be stored, but a hand-edited DAG could hold one: show those tasks last.
  const placed = new Set(out.map((t) => t.id));
  return [...out, ...tasks.filter((t) => !placed.has(t.id)).sort((a, b) => a.id.localeCompare(b.id))];
}

/** `codegod status <build>`: the build's record and its DAG. */
async function buildStatus(ctx: CliContext, session: Session, buildId: string, opts: StatusOptions): Promise<number> {
  const build = await session.scheduler.dag.getBuild(buildId);
  const tasks = ordered(await session.scheduler.dag.getTasks(buildId));
  const tokens = await session.scheduler.dag.taskTokens(buildId, tasks.map((t) => t.id));
  const now = Date.now();
  if (opts.json) {
    ctx.json({
      build,
      tasks: tasks.map((t) => ({
        id: t.id,
        role: t.role,
        state: t.state,
        title: t.spec.title,
        deps: t.deps,
        attempts: t.attempts,
        gen: t.gen,
        origin: t.origin,
        worker: t.worker ?? null,
        durationMs: taskDuration(t, now) ?? null,
        tokens: tokens.get(t.id) ?? 0,
        error: t.error ?? null,
      })),
    });
    return EXIT.OK;
  }
  const ended = build.finishedAt !== undefined ? ` in ${formatDuration(build.finishedAt - build.createdAt)}` : ` for ${formatDuration(now - build.createdAt)}`;
  ctx.out(`build ${build.id}  ${ctx.colour.state(build.state)}${ended}`);
  ctx.out(`  goal     ${clip(build.goal, 200)}`);
  ctx.out(`  created  ${new Date(build.createdAt).toISOString()} (${formatAge(build.createdAt, now)})`);
  ctx.out(`  tasks    ${doneOf(build)} done · ${build.open} open · ${build.skipped} skipped · ${build.cancelled} cancelled`);
  ctx.out(`  llm      ${plural(build.llmCalls, 'call')} · ${formatCount(build.promptTokens + build.completionTokens)} tokens${build.budgetTokens ? ` of a ${formatCount(build.budgetTokens)} budget` : ''}`);
  if (build.model) ctx.out(`  model    ${build.model}`);
  if (build.reason) ctx.out(`  reason   ${clip(build.reason, 300)}${build.failureCode ? ` (${build.failureCode})` : ''}`);
  if (build.state === 'planning') ctx.out('  (waiting for the orchestrator to plan it)');
  if (tasks.length) {
    ctx.out('');
    const rows = tasks.map((t) => {
      const d = taskDuration(t, now);
      return [t.id, t.role, ctx.colour.state(t.state), t.deps.join(',') || '-', String(t.attempts), d === undefined ? '-' : formatDuration(d), formatCount(tokens.get(t.id) ?? 0), clip(t.error ?? t.spec.title, 60)];
    });
    ctx.out(...table(['TASK', 'ROLE', 'STATE', 'DEPS', 'ATTEMPTS', 'TIME', 'TOKENS', 'NOTE'], rows).map((l) => `  ${l}`));
  }
  const failed = tasks.find((t) => t.state === 'failed');
  if (failed) ctx.out('', `see why ${failed.id} failed: codegod trace ${build.id} ${failed.id}`);
  return EXIT.OK;
}

export async function statusCommand(ctx: CliContext, buildId: string | undefined, opts: StatusOptions): Promise<number> {
  if (opts.follow && buildId === undefined) throw usage('--follow needs a build: codegod status <build> --follow');
  if (opts.timeout !== undefined && !opts.follow) throw usage('--timeout applies only with --follow');
  return withSession(ctx, async (session) => {
    if (buildId === undefined) return overview(ctx, session, opts);
    if (opts.follow) return followAndReport(ctx, session, buildId, { json: opts.json === true, ...(opts.timeout ? { timeoutMs: opts.timeout } : {}) });
    return buildStatus(ctx, session, buildId, opts);
  });
}
