import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DURATION_HINT, parseDuration } from './domain/duration.js';
import { ConfigError } from './domain/errors.js';
import { RoleSchema } from './domain/roles.js';

/**
 * All environment configuration of codegod, in one schema. Every process (CLI, orchestrator,
 * worker, bench) calls `loadConfig()` once; a bad variable ends it with one readable line per
 * problem. Secrets may be given as `NAME_FILE` (a path whose contents are the value) so they
 * never sit in a worker's environment, where any child could read them via /proc.
 */
const int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);

/** A duration (`7d`, `12h`, or plain milliseconds) in milliseconds; `off` is null (never). */
const retention = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      if (v.trim().toLowerCase() === 'off') return null;
      const ms = /^\d+$/.test(v.trim()) ? Number(v) : parseDuration(v);
      if (ms === undefined || ms <= 0) {
        ctx.addIssue({ code: 'custom', message: `must be ${DURATION_HINT}, or off` });
        return z.NEVER;
      }
      return ms;
    });

const temperature = z.coerce.number().min(0).max(2).optional();

/**
 * Whether `value` is a URL Redis clients can use: redis:// or rediss://, a host, a port in
 * range, and no path but a database number.
 */
function isRedisUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' && /^(\/\d*)?$/.test(url.pathname);
  } catch {
    return false;
  }
}

export const ConfigSchema = z.object({
  REDIS_URL: z
    .string()
    .refine(isRedisUrl, 'must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379 or redis://:password@redis:6379')
    .default('redis://127.0.0.1:6379'),
  REDIS_PASSWORD: z.string().min(1).optional(),
  /** Key prefix of every codegod key. For Redis Cluster use a hash tag, e.g. `{codegod}`. */
  CODEGOD_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}-]{1,40}$/, 'letters, digits, _ - { } only (max 40)')
    .default('codegod'),
  LOG_LEVEL: z
    .string()
    .transform((v) => v.toLowerCase())
    .pipe(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .default('info'),
  AGENT_ROLE: RoleSchema.optional(),
  /** Identifies this process in codegod:agents:status; defaults to host + pid. */
  AGENT_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,80}$/).optional(),
  WORKER_CONCURRENCY: int(4, 1, 1000),
  /** BullMQ lock: renewed every half of it while a task runs, so tasks may take hours. */
  CODEGOD_LOCK_DURATION_MS: int(60_000, 1_000),
  /** How often workers look for jobs whose worker died; a killed worker's task re-runs after ~lock + this. */
  CODEGOD_STALLED_INTERVAL_MS: int(30_000, 500),
  CODEGOD_MAX_STALLED_COUNT: int(2, 0, 100),
  /** Wall-clock limit of one task attempt; the executor is aborted through its AbortSignal. */
  CODEGOD_TASK_TIMEOUT_MS: int(30 * 60_000, 100),
  /**
   * How long a stopping worker lets its running tasks finish before handing them back to
   * their queue (another worker resumes them from their checkpoint). Keep it under the
   * container's stop grace period (35 min in compose) by a minute.
   */
  CODEGOD_STOP_GRACE_MS: int(30 * 60_000, 0),
  /** Attempts per task (executor errors are retried with exponential backoff). */
  CODEGOD_TASK_ATTEMPTS: int(2, 1, 20),
  CODEGOD_TASK_BACKOFF_MS: int(2_000, 0),
  CODEGOD_RECONCILE_INTERVAL_MS: int(10_000, 100),
  CODEGOD_HEARTBEAT_MS: int(5_000, 100),
  CODEGOD_MAX_TASKS_PER_BUILD: int(200, 1, 100_000),
  CODEGOD_MAX_GOAL_CHARS: int(4_000, 10, 100_000),
  /** Plans the LLM may give for one goal (the first and re-asks after validation errors). */
  CODEGOD_PLAN_ATTEMPTS: int(3, 1, 10),
  /** How deep follow-ups may nest (a follow-up of a follow-up is depth 2). */
  CODEGOD_MAX_FOLLOWUP_DEPTH: int(2, 0, 10),
  /** Times the orchestrator re-plans a task that failed for good before the build fails. */
  CODEGOD_REPLANS_PER_TASK: int(1, 0, 5),
  /** Dashboard and API (bound to 127.0.0.1 unless told otherwise). */
  CODEGOD_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  CODEGOD_HTTP_PORT: z.coerce.number().int().min(0).max(65_535).default(8080),
  /**
   * Without a token the dashboard answers only requests whose Host is a loopback name or
   * address (DNS rebinding); these names (comma-separated) are allowed too.
   */
  CODEGOD_HTTP_ALLOWED_HOSTS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '')),
  /** Required for every mutating API call and, when set, for every page (give it as CODEGOD_API_TOKEN_FILE in deployments). */
  CODEGOD_API_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Approximate cap on entries kept in each build's event stream. */
  CODEGOD_EVENTS_MAXLEN: int(100_000, 100),
  /**
   * Ended builds older than this (since they ended) are removed by the orchestrator — Redis
   * keys, streams and BullMQ jobs; workspaces stay (`codegod prune --workspaces` removes
   * those). `off` keeps everything (Redis then grows until `codegod prune`).
   */
  CODEGOD_RETENTION: retention('7d'),
  /** How often the orchestrator applies CODEGOD_RETENTION and drops dead agents. */
  CODEGOD_RETENTION_INTERVAL_MS: int(10 * 60_000, 100),
  /** An agent whose heartbeat is older than this (dead, or stopped) leaves agents:status. */
  CODEGOD_AGENT_EXPIRY_MS: int(10 * 60_000, 1_000),
  /** Completed BullMQ jobs kept per queue (task state lives in codegod's own keys). */
  CODEGOD_KEEP_COMPLETED_JOBS: int(1_000, 0),
  CODEGOD_KEEP_FAILED_JOBS: int(5_000, 0),
  /** Which TaskExecutor workers run: `scripted` follows directives in the task description (tests, benches). */
  CODEGOD_EXECUTOR: z.enum(['scripted', 'agent']).default('agent'),
  CODEGOD_WORKSPACE_ROOT: z.string().min(1).default('./workspaces'),
  /** Milliseconds a short-lived caller (CLI) waits for Redis before giving up. */
  CODEGOD_CONNECT_TIMEOUT_MS: int(3_000, 100),
  /** When set, workers touch this file on every heartbeat; container health checks read its age. */
  CODEGOD_HEALTH_FILE: z.string().min(1).optional(),
  /** Test-only fault injection: `name` or `name:count`; the process exits abruptly at that point. */
  CODEGOD_CRASH_AT: z.string().regex(/^[a-z-]+(:\d+)?$/).optional(),

  // LLM (OpenAI-compatible endpoint: vLLM in production, Ollama or the scripted server elsewhere)
  VLLM_API_URL: z.string().url().default('http://vllm-server:8000/v1'),
  LLM_API_KEY: z.string().min(1).optional(),
  /** Model name; when unset, the first model the endpoint's /v1/models lists. */
  LLM_MODEL: z.string().min(1).optional(),
  LLM_MODEL_BACKEND: z.string().min(1).optional(),
  LLM_MODEL_FRONTEND: z.string().min(1).optional(),
  LLM_MODEL_DEVOPS: z.string().min(1).optional(),
  LLM_MODEL_TESTING: z.string().min(1).optional(),
  /** Per-role endpoints (a second, smaller model for some roles); default VLLM_API_URL. */
  VLLM_API_URL_BACKEND: z.string().url().optional(),
  VLLM_API_URL_FRONTEND: z.string().url().optional(),
  VLLM_API_URL_DEVOPS: z.string().url().optional(),
  VLLM_API_URL_TESTING: z.string().url().optional(),
  /** Sampling temperature sent with every request; unset leaves the server's default. */
  LLM_TEMPERATURE: temperature,
  LLM_TEMPERATURE_BACKEND: temperature,
  LLM_TEMPERATURE_FRONTEND: temperature,
  LLM_TEMPERATURE_DEVOPS: temperature,
  LLM_TEMPERATURE_TESTING: temperature,
  LLM_TIMEOUT_MS: int(120_000, 100),
  LLM_MAX_RETRIES: int(3, 0, 20),
  /** Requests in flight per process; vLLM batches them, so keep it at least the worker concurrency. */
  LLM_MAX_INFLIGHT: int(16, 1, 1000),
  /** Re-asks after invalid JSON, schema violations or a truncated reply. */
  LLM_REPAIR_ATTEMPTS: int(2, 0, 10),
  /**
   * How replies are asked for: `json_schema` (the grammar carries the schema; a schema the
   * server refuses falls back to json_object on its own) or `json_object` for every call.
   */
  LLM_STRUCTURED_OUTPUT: z.enum(['json_schema', 'json_object']).default('json_schema'),
  /** ORPAV iterations per task before the loop counts as stuck. */
  CODEGOD_MAX_ITERATIONS: int(4, 1, 50),
  /**
   * Estimated tokens one agent prompt may hold (system, task, handoff, memory, phase input);
   * what does not fit is cut with a marker. The default leaves room for the plan phase's
   * 4096-token reply in an 8k context; raise it for larger contexts.
   */
  CODEGOD_PROMPT_BUDGET_TOKENS: int(4_096, 1_024, 1_000_000),
  CODEGOD_COMMAND_TIMEOUT_MS: int(120_000, 100),
  CODEGOD_OUTPUT_CAP_BYTES: int(64 * 1024, 1024),
  /** Docker endpoint for devops image/container actions; unset means those actions are refused. */
  CODEGOD_DOCKER_HOST: z.string().min(1).optional(),

  // The isolated executor of agent commands and file actions (docs/SANDBOX.md)
  /**
   * `auto` and `namespaces`: every command and file action of a task runs in its own Linux
   * namespaces (bubblewrap), and workers refuse agent work where the kernel cannot give them;
   * `host`: no isolation beyond the command policy and path checks (warned on every start).
   */
  CODEGOD_SANDBOX: z.enum(['auto', 'namespaces', 'host']).default('auto'),
  /** `on`: egress through pasta, without the host's loopback or gateway; `off`: loopback only. */
  CODEGOD_SANDBOX_NETWORK: z.enum(['on', 'off']).default('on'),
  /**
   * A host or address: commands' connections leave only through the interface that reaches
   * it (pasta --outbound-if4) when codegod runs as non-root. Unset: the default route's.
   */
  CODEGOD_SANDBOX_OUTBOUND: z.string().min(1).optional(),
  /** Processes (and threads) all commands of one task may have at once. */
  CODEGOD_SANDBOX_PIDS: int(512, 16, 1_000_000),
  /** Heap (RLIMIT_DATA) of each process a command starts, in MiB. */
  CODEGOD_SANDBOX_MEMORY_MB: int(2_048, 64, 1_048_576),
  /** CPU seconds (RLIMIT_CPU) of each process a command starts. */
  CODEGOD_SANDBOX_CPU_SECONDS: int(600, 1, 1_000_000),
  /** The bubblewrap and pasta programs (a name looked up on PATH, or a path). */
  CODEGOD_SANDBOX_BWRAP: z.string().min(1).default('bwrap'),
  CODEGOD_SANDBOX_PASTA: z.string().min(1).default('pasta'),
  /** More paths commands must not see, comma-separated (secret files and the `*_FILE` paths are hidden already). */
  CODEGOD_SANDBOX_HIDE: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((p) => p.trim()).filter((p) => p !== '')),
  /** Where codegod's secrets were read from, kept so the executor can hide them from commands. */
  REDIS_PASSWORD_FILE: z.string().min(1).optional(),
  LLM_API_KEY_FILE: z.string().min(1).optional(),
  CODEGOD_API_TOKEN_FILE: z.string().min(1).optional(),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Variables that may be given as NAME_FILE; the file's contents (trimmed) become NAME. */
const FILE_SECRETS = ['REDIS_PASSWORD', 'LLM_API_KEY', 'CODEGOD_API_TOKEN'] as const;

function resolveSecretFiles(env: NodeJS.ProcessEnv, problems: string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (const name of FILE_SECRETS) {
    const path = env[`${name}_FILE`];
    if (!path) continue;
    try {
      out[name] = readFileSync(path, 'utf8').trim();
    } catch (err) {
      problems.push(`${name}_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return out;
}

/** Blank variables count as unset, so `FOO=` in an env file means "use the default". */
function dropBlank(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v.trim() !== '') out[k] = v.trim();
  return out;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const resolved = dropBlank(resolveSecretFiles(env, problems));
  const parsed = ConfigSchema.safeParse(resolved);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = issue.path.join('.');
      // A URL's credentials stay out of the message.
      const got = resolved[name]?.replace(/\/\/[^/@]*@/, '//***@');
      problems.push(`${name}: ${issue.message}${got === undefined ? '' : ` (got '${got.slice(0, 60)}')`}`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return parsed.data;
}
