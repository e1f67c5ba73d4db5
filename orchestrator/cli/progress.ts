import type { Redis } from 'ioredis';
import { z } from 'zod';
import { TASK_STATES, TERMINAL_BUILD_STATES, type BuildRecord, type TaskState } from '../../shared/domain/build.js';
import type { Config } from '../../shared/config.js';
import { DagStore } from '../../shared/engine/dag-store.js';
import { CodegodError, errorMessage, RedisUnreachableError } from '../../shared/domain/errors.js';
import { EventCursor, type BuildEvent } from '../../shared/engine/events.js';
import type { Keys } from '../../shared/redis/keys.js';
import { createRedis, displayUrl } from '../../shared/redis/connection.js';
import { BuildReportSchema, type BuildReport } from '../../shared/engine/report.js';
import { paint, PLAIN, type Palette } from './colour.js';
import type { CliOutput } from './context.js';
import { clip, formatCount, formatDuration, plural } from './format.js';
import { redisOptions } from '../../shared/options.js';

/** Counts of a build's tasks by state, with its token use, at one moment. */
export interface ProgressSnapshot {
  total: number;
  counts: Record<TaskState, number>;
  tokens: number;
  elapsedMs: number;
}

export function emptyCounts(): Record<TaskState, number> {
  return Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
}

/** `done 3/7 · running 2 · queued 1 · waiting 1 · failed 0 · 12,345 tokens · 1m 02s` */
export function formatSnapshot(s: ProgressSnapshot): string {
  const c = s.counts;
  const parts = [`done ${c.succeeded}/${s.total}`, `running ${c.running}`, `queued ${c.queued}`, `waiting ${c.pending}`, `failed ${c.failed}`];
  if (c.skipped) parts.push(`skipped ${c.skipped}`);
  if (c.cancelled) parts.push(`cancelled ${c.cancelled}`);
  parts.push(`${formatCount(s.tokens)} tokens`, formatDuration(s.elapsedMs));
  return parts.join(' · ');
}

const TASK_TERMINAL_EVENTS: ReadonlySet<BuildEvent['type']> = new Set(['task.succeeded', 'task.failed', 'task.skipped', 'task.cancelled']);

interface TaskLine {
  role: string;
  startedAt?: number;
}

/** ESC[2K clears the line the cursor is on; \r returns to its start. */
const CLEAR_LINE = '\r\u001b[2K';

/**
 * Live progress of one build: a line per change (task queued, started, finished…) with the
 * time since the build began, and a summary of counts and tokens. On a terminal the summary
 * is one status line redrawn in place under the scrolling change lines; anywhere else
 * (a pipe, a file, CI logs) every line is plain text printed once, and a summary line follows
 * each batch of events in which a task ended.
 */
export class ProgressView {
  private readonly tasks = new Map<string, TaskLine>();
  private createdAt = Date.now();
  private idWidth = 8;
  private statusShown = false;
  private lastCounts = '';

  constructor(
    private readonly out: CliOutput,
    private readonly tty: boolean,
    private readonly colour: Palette = PLAIN,
  ) {}

  begin(build: Pick<BuildRecord, 'createdAt'>): void {
    this.createdAt = build.createdAt;
  }

  /** The roles of tasks this view has not seen queued, for events that do not carry one. */
  unknownTasks(events: readonly BuildEvent[]): string[] {
    const ids = new Set<string>();
    for (const e of events) if (e.task && !e.role && !this.tasks.has(e.task)) ids.add(e.task);
    return [...ids];
  }

  learnRoles(roles: ReadonlyMap<string, string>): void {
    for (const [id, role] of roles) if (!this.tasks.has(id)) this.tasks.set(id, { role });
  }

  /** Prints the lines of a batch of events; true when a task ended in it (a moment for a summary line). */
  apply(events: readonly BuildEvent[]): boolean {
    let milestone = false;
    for (const e of events) {
      const line = this.describe(e);
      if (line !== undefined) this.line(line);
      if (TASK_TERMINAL_EVENTS.has(e.type) || e.type === 'build.created') milestone = true;
    }
    return milestone;
  }

  /**
   * Shows the summary: redrawn in place on a terminal; in plain mode printed as a line when
   * `milestone` is set and it differs from the last one printed.
   */
  summary(snapshot: ProgressSnapshot, milestone: boolean): void {
    const text = formatSnapshot(snapshot);
    if (this.tty) {
      // A pseudo-terminal may report 0 columns; assume a common width then.
      const columns = this.out.columns && this.out.columns > 0 ? this.out.columns : 100;
      const width = Math.max(20, columns - 1);
      this.out.write(`${CLEAR_LINE}${paint(clip(`progress  ${text}`, width))}`);
      this.statusShown = true;
      return;
    }
    const counts = `${snapshot.total} ${JSON.stringify(snapshot.counts)}`;
    if (!milestone || counts === this.lastCounts) return;
    this.lastCounts = counts;
    this.out.write(paint(`${this.prefix(Date.now())}${'progress'.padEnd(10)}${text}\n`));
  }

  /** Removes the status line of a terminal, leaving the scrolled lines. */
  end(): void {
    if (this.statusShown) this.out.write(CLEAR_LINE);
    this.statusShown = false;
  }

  private line(text: string): void {
    // Event text comes from outside (task errors, LLM summaries): painted, so only codegod's own escapes reach the terminal.
    this.out.write(`${this.statusShown ? CLEAR_LINE : ''}${paint(text)}\n`);
    this.statusShown = false;
  }

  private prefix(at: number): string {
    return `${formatDuration(Math.max(0, at - this.createdAt)).padStart(8)}  `;
  }

  private taskLine(e: BuildEvent, text: string): string {
    const id = e.task ?? '?';
    this.idWidth = Math.min(24, Math.max(this.idWidth, id.length));
    const role = e.role ?? this.tasks.get(id)?.role ?? '?';
    return `${this.prefix(e.at)}${role.padEnd(10)}${id.padEnd(this.idWidth)}  ${text}`;
  }

  private buildLine(e: BuildEvent, text: string): string {
    return `${this.prefix(e.at)}${'build'.padEnd(10)}${text}`;
  }

  private describe(e: BuildEvent): string | undefined {
    const reason = e.reason ? `: ${clip(e.reason, 200)}` : '';
    if (e.task) {
      const known = this.tasks.get(e.task);
      if (e.role) this.tasks.set(e.task, { ...known, role: e.role });
      const took = () => {
        const started = this.tasks.get(e.task!)?.startedAt;
        return started === undefined ? '' : ` in ${formatDuration(e.at - started)}`;
      };
      switch (e.type) {
        case 'task.queued':
          return this.taskLine(e, 'queued');
        case 'task.started': {
          this.tasks.set(e.task, { role: e.role ?? known?.role ?? '?', startedAt: e.at });
          const on = e.worker ? ` on ${e.worker}` : '';
          return this.taskLine(e, `running (attempt ${e.attempt ?? 1}${on})`);
        }
        case 'task.succeeded': {
          if (e.startedAt === undefined) return this.taskLine(e, `${this.colour.good('succeeded')}${took()}`);
          const on = e.worker ? ` on ${e.worker}` : '';
          return this.taskLine(e, `${this.colour.good('succeeded')} in ${formatDuration(e.at - e.startedAt)} (attempt ${e.attempt ?? 1}${on})`);
        }
        case 'task.failed':
          return this.taskLine(e, `${this.colour.bad('failed')}${took()}${reason}`);
        case 'task.skipped':
          return this.taskLine(e, `${this.colour.warn('skipped')}${reason}`);
        case 'task.cancelled':
          return this.taskLine(e, this.colour.warn('cancelled'));
        case 'task.retried':
          return this.taskLine(e, e.state ? `retried (${e.state})` : 'retried');
        case 'task.progress':
          return this.taskLine(e, clip(e.reason ?? e.data ?? 'progress', 200));
        default:
          return undefined;
      }
    }
    const data = e.data ? clip(e.data, 120) : '';
    switch (e.type) {
      case 'build.submitted':
        return this.buildLine(e, 'submitted');
      case 'build.planning':
        return this.buildLine(e, `planning${reason || (data ? `: ${data}` : '')}`);
      case 'build.planned':
        return this.buildLine(e, `planned${describePlan(e.data) ?? (data ? `: ${data}` : reason)}`);
      case 'build.created':
        return this.buildLine(e, `running ${data ? plural(Number(data), 'task') : 'its tasks'}`);
      case 'build.grown':
        return this.buildLine(e, `grew by ${data ? plural(Number(data), 'task') : 'new tasks'}${reason}`);
      case 'build.reopened':
        return this.buildLine(e, 'reopened (tasks retried)');
      case 'build.finished':
        return this.buildLine(e, `${this.colour.state(e.state ?? 'finished')}${reason}`);
      case 'build.cancelled':
        return this.buildLine(e, `${this.colour.warn('cancelled')}${reason}`);
      default:
        return undefined;
    }
  }
}

/**
 * `: 5 tasks — summary — a, b → c → d` from a `build.planned` event carrying the plan as JSON:
 * the tasks by dependency layer, so the plan is visible as it is made (`codegod status <build>`
 * shows it whole). Undefined for anything else.
 */
export function describePlan(data: string | undefined): string | undefined {
  if (!data) return undefined;
  try {
    const plan = z
      .object({ summary: z.string().optional(), tasks: z.array(z.object({ id: z.string(), dependsOn: z.array(z.string()).default([]) })) })
      .safeParse(JSON.parse(data));
    if (!plan.success) return undefined;
    const summary = plan.data.summary ? ` — ${clip(plan.data.summary, 120)}` : '';
    const deps = new Map(plan.data.tasks.map((t) => [t.id, t.dependsOn]));
    const depth = new Map<string, number>();
    const layerOf = (id: string, seen: Set<string> = new Set()): number => {
      const known = depth.get(id);
      if (known !== undefined) return known;
      if (seen.has(id)) return 0;
      seen.add(id);
      const d = Math.max(-1, ...(deps.get(id) ?? []).filter((x) => deps.has(x)).map((x) => layerOf(x, seen))) + 1;
      depth.set(id, d);
      return d;
    };
    const layers: string[][] = [];
    for (const t of plan.data.tasks) (layers[layerOf(t.id)] ??= []).push(t.id);
    const dag = layers.map((l) => l.join(', ')).join(' → ');
    return `: ${plural(plan.data.tasks.length, 'task')}${summary} — ${clip(dag, 300)}`;
  } catch {
    return undefined;
  }
}

export type FollowOutcome =
  /** The build ended; `report` is the orchestrator's report when one arrived in time. */
  | { kind: 'ended'; build: BuildRecord; report: BuildReport | undefined }
  /** Following stopped (timeout or Ctrl-C) while the build goes on. */
  | { kind: 'stopped'; build: BuildRecord };

export interface FollowOptions {
  config: Config;
  keys: Keys;
  /** Connection for ordinary reads; the follower opens its own for XREAD BLOCK. */
  redis: Redis;
  buildId: string;
  view: ProgressView;
  /** Stops following (the build goes on). */
  signal?: AbortSignal;
  /** How long to wait for the `build.report` event once the build has ended. */
  reportWaitMs?: number;
  /** Longest a blocking read waits; also the status line's refresh period. */
  blockMs?: number;
}

/** The report carried by a `build.report` event; undefined when it is missing or malformed. */
export function parseReport(data: string | undefined): BuildReport | undefined {
  if (data === undefined) return undefined;
  try {
    const parsed = BuildReportSchema.safeParse(JSON.parse(data));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Follows a build from the start of its event stream until it ends (or `signal` stops the
 * following), printing through `view`. The stream is replayed from its first entry, so a
 * build that is already running — or already over — is shown whole. The build record, not
 * the stream, decides that the build has ended: a `build.finished` may be followed by a
 * retry that reopens it, and entries may have been trimmed.
 */
export async function followBuild(opts: FollowOptions): Promise<FollowOutcome> {
  const { config, keys, redis, buildId, view, signal } = opts;
  const dag = new DagStore(redis, keys, config.CODEGOD_EVENTS_MAXLEN);
  const blockMs = opts.blockMs ?? 1_000;
  let build = await dag.getBuild(buildId);
  view.begin(build);

  const blocking = createRedis(redisOptions(config), 'client');
  blocking.on('error', () => {
    /* surfaced by the command that fails */
  });
  // A blocked XREAD would hold Ctrl-C up to blockMs; dropping its connection ends it at once.
  const onAbort = () => blocking.disconnect();
  signal?.addEventListener('abort', onAbort, { once: true });
  const stopped = () => signal?.aborted === true;

  const cursor = new EventCursor(blocking, keys, buildId);

  const snapshot = async (): Promise<ProgressSnapshot> => {
    const states = await dag.getTaskStates(buildId);
    const counts = emptyCounts();
    for (const s of states.values()) counts[s] += 1;
    return {
      total: Math.max(build.total, states.size),
      counts,
      tokens: build.promptTokens + build.completionTokens,
      elapsedMs: (build.finishedAt ?? Date.now()) - build.createdAt,
    };
  };

  const learnRoles = async (events: BuildEvent[]) => {
    const ids = view.unknownTasks(events);
    if (ids.length === 0) return;
    const pipe = redis.pipeline();
    for (const id of ids) pipe.hget(keys.task(buildId, id), 'role');
    const rows = (await pipe.exec()) ?? [];
    view.learnRoles(new Map(ids.flatMap((id, i) => (typeof rows[i]?.[1] === 'string' ? [[id, rows[i]![1] as string]] : []))));
  };

  try {
    let report: BuildReport | undefined;
    // Whether the last build-ending event read is still in force (no reopen after it).
    let endSeen = false;
    while (!stopped()) {
      const { events, full: more } = await cursor.next(blockMs);
      for (const e of events) {
        if (e.type === 'build.report') report = parseReport(e.data) ?? report;
        else if (e.type === 'build.finished' || e.type === 'build.cancelled') endSeen = true;
        else if (e.type === 'build.reopened') {
          // A retry reopened the build: its earlier report no longer describes how it ends.
          endSeen = false;
          report = undefined;
        }
      }
      await learnRoles(events);
      const milestone = view.apply(events);
      build = await dag.getBuild(buildId);
      // Done once the record says so and the stream is drained up to its end: with no end
      // event in the stream (trimmed away), an empty read counts as drained.
      const drained = !more && (endSeen || events.length === 0);
      if (TERMINAL_BUILD_STATES.has(build.state) && drained) break;
      view.summary(await snapshot(), milestone);
    }
    if (stopped()) {
      view.end();
      return { kind: 'stopped', build };
    }
    const deadline = Date.now() + (opts.reportWaitMs ?? 2_000);
    while (report === undefined && !stopped()) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const { events } = await cursor.next(Math.min(left, blockMs));
      for (const e of events) if (e.type === 'build.report') report = parseReport(e.data) ?? report;
    }
    view.summary(await snapshot(), true);
    view.end();
    return { kind: 'ended', build, report };
  } catch (err) {
    view.end();
    if (stopped()) return { kind: 'stopped', build };
    if (err instanceof CodegodError) throw err;
    throw new RedisUnreachableError(displayUrl(config.REDIS_URL), `lost while following ${buildId}: ${errorMessage(err)}`);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    blocking.disconnect();
  }
}
