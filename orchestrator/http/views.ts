import { agentSummary, type AgentStatus } from '../../shared/telemetry/agent-status.js';
import type { BuildRecord, TaskState } from '../../shared/domain/build.js';
import type { TaskView } from '../../shared/engine/dag-store.js';
import type { LoopState } from '../../shared/memory/loop-state.js';
import type { BuildReport } from '../../shared/engine/report.js';

/**
 * What the API shows of builds, tasks and agents: the view models it builds from the records
 * in Redis (summaries, one-line statuses, the DAG in layers), and the bodies of its answers,
 * route by route. The routes (api.ts), the metrics (metrics.ts) and the dashboard's scripts
 * (assets/, through JSDoc types) all read them from here.
 */

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

function durationOf(t: Pick<TaskView, 'startedAt' | 'finishedAt'>): number | null {
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

export interface AgentView extends AgentStatus, ReturnType<typeof agentSummary> {
  heartbeatAgeMs: number;
  /** No heartbeat for three periods: the process is probably gone. */
  stale: boolean;
}

export function agentView(a: AgentStatus, now: number, heartbeatMs: number): AgentView {
  const heartbeatAgeMs = Math.max(0, now - a.heartbeat);
  return { ...a, ...agentSummary(a), heartbeatAgeMs, stale: a.state !== 'offline' && heartbeatAgeMs > 3 * heartbeatMs };
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
