import type { Redis } from 'ioredis';
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import { AGENT_STATES, listAgents } from '../../shared/telemetry/agent-status.js';
import { BUILD_STATES } from '../../shared/domain/build.js';
import type { Keys } from '../../shared/redis/keys.js';
import { ALL_QUEUES, type TaskQueues } from '../../shared/engine/queues.js';
import { readTaskDurations, type TaskDurationSeries } from '../../shared/telemetry/task-metrics.js';
import { agentView } from './views.js';

/**
 * The Prometheus view of codegod, on a registry of its own (never prom-client's global one,
 * so nothing another library registers leaks into it). Every number lives in Redis, written
 * by whichever process did the work; a scrape reads it all in one pass and sets the metrics
 * from that snapshot, so every orchestrator replica answers the same.
 *
 * | metric                                   | type      | labels          | source                        |
 * |------------------------------------------|-----------|-----------------|-------------------------------|
 * | codegod_tasks_total                      | counter   | role, outcome   | P:metrics:tasks               |
 * | codegod_task_duration_seconds            | histogram | role, outcome   | P:metrics:durations           |
 * | codegod_llm_requests_total               | counter   | role            | P:metrics:llm                 |
 * | codegod_llm_request_failures_total       | counter   | role            | P:metrics:llm                 |
 * | codegod_llm_request_seconds_total        | counter   | role            | P:metrics:llm                 |
 * | codegod_llm_tokens_total                 | counter   | role, kind      | P:metrics:llm                 |
 * | codegod_queue_jobs                       | gauge     | queue, state    | BullMQ                        |
 * | codegod_builds                           | gauge     | state           | build records                 |
 * | codegod_agents                           | gauge     | role, state     | P:agents:status               |
 *
 * Mean LLM latency per role: `rate(codegod_llm_request_seconds_total[5m]) /
 * rate(codegod_llm_requests_total[5m])`.
 */

const QUEUE_JOB_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'] as const;

/** Role names and counter names in the metrics hashes: `<role>:<name>`. */
const ROLE_FIELD = /^([a-z][a-z0-9_-]{0,31}):([a-zA-Z]{1,32})$/;

const TASK_DURATION_HELP =
  'Duration of task attempts in seconds, by role and outcome (succeeded, failed, retried, cancelled), as reported by the workers.';

/**
 * A histogram whose buckets are already counted (by the workers, in Redis). prom-client's
 * Histogram only counts observations it makes itself, so this one implements the registry's
 * read side (`get`) over the last snapshot instead.
 */
class StoredHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  series: TaskDurationSeries[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  async get() {
    const values = this.series.flatMap((s) => {
      const labels = { role: s.role, outcome: s.outcome };
      return [
        ...s.buckets.map((b) => ({
          metricName: `${this.name}_bucket`,
          labels: { ...labels, le: b.le === Number.POSITIVE_INFINITY ? '+Inf' : String(b.le) },
          value: b.count,
        })),
        { metricName: `${this.name}_sum`, labels, value: s.sumSeconds },
        { metricName: `${this.name}_count`, labels, value: s.count },
      ];
    });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class OrchestratorMetrics {
  readonly registry = new Registry();
  private readonly tasks: Counter<'role' | 'outcome'>;
  private readonly durations = new StoredHistogram('codegod_task_duration_seconds', TASK_DURATION_HELP);
  private readonly llmRequests: Counter<'role'>;
  private readonly llmFailures: Counter<'role'>;
  private readonly llmSeconds: Counter<'role'>;
  private readonly llmTokens: Counter<'role' | 'kind'>;
  private readonly queueJobs: Gauge<'queue' | 'state'>;
  private readonly builds: Gauge<'state'>;
  private readonly agents: Gauge<'role' | 'state'>;
  private inFlight: Promise<string> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly queues: TaskQueues,
    private readonly heartbeatMs: number,
  ) {
    const registers = [this.registry];
    this.tasks = new Counter({
      name: 'codegod_tasks_total',
      help: 'Task attempts by role and outcome (started, succeeded, failed, retried), as counted by the workers.',
      labelNames: ['role', 'outcome'],
      registers,
    });
    // The registry calls get(); the cast is only to prom-client's union of its own classes.
    this.registry.registerMetric(this.durations as unknown as Metric);
    this.llmRequests = new Counter({ name: 'codegod_llm_requests_total', help: 'HTTP requests to the LLM endpoint, by role (planner for the orchestrator).', labelNames: ['role'], registers });
    this.llmFailures = new Counter({
      name: 'codegod_llm_request_failures_total',
      help: 'LLM requests whose reply failed validation or never came, by role.',
      labelNames: ['role'],
      registers,
    });
    this.llmSeconds = new Counter({
      name: 'codegod_llm_request_seconds_total',
      help: 'Seconds spent waiting for LLM replies, by role; divide its rate by the rate of codegod_llm_requests_total for the mean latency.',
      labelNames: ['role'],
      registers,
    });
    this.llmTokens = new Counter({ name: 'codegod_llm_tokens_total', help: 'LLM tokens by role and kind (prompt, completion).', labelNames: ['role', 'kind'], registers });
    this.queueJobs = new Gauge({ name: 'codegod_queue_jobs', help: 'BullMQ jobs per queue and state.', labelNames: ['queue', 'state'], registers });
    this.builds = new Gauge({ name: 'codegod_builds', help: 'Builds by state.', labelNames: ['state'], registers });
    this.agents = new Gauge({
      name: 'codegod_agents',
      help: 'Agents by role and live state (idle, the phase of the current task, backoff, error, stopping, offline; stale: no heartbeat for three periods).',
      labelNames: ['role', 'state'],
      registers,
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The exposition text. Concurrent scrapes share one read: the counters are reset and
   * refilled from Redis on each read, and two interleaved refills would mix snapshots.
   */
  render(): Promise<string> {
    this.inFlight ??= this.collect().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async collect(): Promise<string> {
    const [taskFields, llmFields, durations, queueCounts, buildStates, agents] = await Promise.all([
      this.redis.hgetall(this.keys.metricsTasks),
      this.redis.hgetall(this.keys.metricsLlm),
      readTaskDurations(this.redis, this.keys),
      Promise.all(ALL_QUEUES.map(async (name) => [name, await this.queues.get(name).getJobCounts(...QUEUE_JOB_STATES)] as const)),
      this.buildStates(),
      listAgents(this.redis, this.keys),
    ]);

    this.tasks.reset();
    for (const { role, name, value } of roleFields(taskFields)) this.tasks.inc({ role, outcome: name }, value);

    this.durations.series = durations;

    for (const c of [this.llmRequests, this.llmFailures, this.llmSeconds, this.llmTokens]) c.reset();
    for (const { role, name, value } of roleFields(llmFields)) {
      if (name === 'calls') this.llmRequests.inc({ role }, value);
      else if (name === 'failed') this.llmFailures.inc({ role }, value);
      else if (name === 'ms') this.llmSeconds.inc({ role }, value / 1_000);
      else if (name === 'promptTokens') this.llmTokens.inc({ role, kind: 'prompt' }, value);
      else if (name === 'completionTokens') this.llmTokens.inc({ role, kind: 'completion' }, value);
    }

    this.queueJobs.reset();
    for (const [queue, counts] of queueCounts) {
      for (const state of QUEUE_JOB_STATES) this.queueJobs.set({ queue, state }, counts[state] ?? 0);
    }

    this.builds.reset();
    for (const state of BUILD_STATES) this.builds.set({ state }, buildStates.get(state) ?? 0);

    this.agents.reset();
    const now = Date.now();
    // Every state of every role present, zeros included, so a panel per state has a series.
    for (const role of new Set(agents.agents.map((a) => a.role))) {
      for (const state of [...AGENT_STATES, 'stale']) this.agents.set({ role, state }, 0);
    }
    for (const a of agents.agents) {
      const view = agentView(a, now, this.heartbeatMs);
      this.agents.inc({ role: a.role, state: view.stale ? 'stale' : a.state });
    }

    return this.registry.metrics();
  }

  /** Builds per state, over every build id in the index (pipelined, a thousand at a time). */
  private async buildStates(): Promise<Map<string, number>> {
    const ids = await this.redis.zrange(this.keys.builds, 0, -1);
    const out = new Map<string, number>();
    for (let i = 0; i < ids.length; i += 1_000) {
      const pipe = this.redis.pipeline();
      for (const id of ids.slice(i, i + 1_000)) pipe.hget(this.keys.build(id), 'state');
      for (const [, state] of (await pipe.exec()) ?? []) {
        // An id without a record (a crash between index and record) is no build.
        if (typeof state === 'string') out.set(state, (out.get(state) ?? 0) + 1);
      }
    }
    return out;
  }
}

/** `<role>:<name>` fields with a non-negative numeric value; the totals without a role are left out. */
function roleFields(raw: Record<string, string>): Array<{ role: string; name: string; value: number }> {
  const out: Array<{ role: string; name: string; value: number }> = [];
  for (const [field, v] of Object.entries(raw)) {
    const m = ROLE_FIELD.exec(field);
    const value = Number(v);
    if (m && Number.isFinite(value) && value >= 0) out.push({ role: m[1]!, name: m[2]!, value });
  }
  return out;
}
