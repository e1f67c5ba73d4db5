import type { Config } from './config.js';
import { ROLES, type Role } from './domain/roles.js';

/**
 * What each component is given, compiled from the one environment schema (config.ts) in one
 * place, `compileOptions`. Programs compile once and hand each class its options with the
 * connections and collaborators it uses; no class below the programs reads the environment
 * or the whole Config. Every field names its variable and default; a default that is not a
 * variable's is the component's own.
 */

/** A Redis server and codegod's keys in it. */
export interface RedisOptions {
  /** REDIS_URL. @default 'redis://127.0.0.1:6379' */
  url: string;
  /** REDIS_PASSWORD (or REDIS_PASSWORD_FILE). @default none */
  password?: string | undefined;
  /** CODEGOD_PREFIX: the prefix of every key. @default 'codegod' */
  prefix: string;
  /** CODEGOD_CONNECT_TIMEOUT_MS: how long a short-lived caller (CLI) waits for Redis. @default 3000 */
  connectTimeoutMs: number;
}

/** How BullMQ keeps and retries the jobs codegod adds. */
export interface JobOptions {
  /** CODEGOD_TASK_ATTEMPTS: attempts per task; goals get 3 whatever this says. @default 2 */
  taskAttempts: number;
  /** CODEGOD_TASK_BACKOFF_MS: base of the exponential backoff between attempts. @default 2000 */
  backoffMs: number;
  /** CODEGOD_KEEP_COMPLETED_JOBS: completed jobs kept per queue. @default 1000 */
  keepCompleted: number;
  /** CODEGOD_KEEP_FAILED_JOBS: failed jobs kept per queue. @default 5000 */
  keepFailed: number;
}

/** The DAG engine's limits, for whoever submits, grows or re-plans builds. */
export interface SchedulerOptions {
  /** CODEGOD_MAX_GOAL_CHARS. @default 4000 */
  maxGoalChars: number;
  /** CODEGOD_MAX_TASKS_PER_BUILD: a build's task limit unless the submitter gives one. @default 200 */
  maxTasksPerBuild: number;
  /** CODEGOD_EVENTS_MAXLEN: approximate cap on each build's event stream. @default 100000 */
  eventsMaxLen: number;
  /** CODEGOD_MAX_FOLLOWUP_DEPTH: how deep follow-ups may nest. @default 2 */
  maxFollowupDepth: number;
  /** CODEGOD_REPLANS_PER_TASK: re-plans of a task that failed for good. @default 1 */
  replansPerTask: number;
  jobs: JobOptions;
}

/** The worker of one role (shared/engine/role-worker.ts). */
export interface RoleWorkerOptions {
  /** AGENT_ID: this process in agents:status. @default `<role>-<host>-<pid>` */
  agentId?: string | undefined;
  /** WORKER_CONCURRENCY: tasks run at once. @default 4 */
  concurrency: number;
  /** CODEGOD_LOCK_DURATION_MS: BullMQ's job lock, renewed every half of it. @default 60000 */
  lockDurationMs: number;
  /** CODEGOD_STALLED_INTERVAL_MS: how often jobs of dead workers are looked for. @default 30000 */
  stalledIntervalMs: number;
  /** CODEGOD_MAX_STALLED_COUNT. @default 2 */
  maxStalledCount: number;
  /** CODEGOD_TASK_TIMEOUT_MS: wall-clock limit of one task attempt. @default 1800000 (30 min) */
  taskTimeoutMs: number;
  /** CODEGOD_STOP_GRACE_MS: how long a stopping worker lets running tasks finish. @default 1800000 (30 min) */
  stopGraceMs: number;
  /** CODEGOD_TASK_BACKOFF_MS: when a retried task's next attempt is due, for the agent's state. @default 2000 */
  taskBackoffMs: number;
  /** CODEGOD_HEARTBEAT_MS. @default 5000 */
  heartbeatMs: number;
  /** CODEGOD_HEALTH_FILE: touched on every heartbeat. @default none */
  healthFile?: string | undefined;
  /** CODEGOD_CRASH_AT: test-only fault injection. @default none */
  crashAt?: string | undefined;
}

/** The agent executor: the ORPAV loop around each task (workers/executors/agent.ts). */
export interface AgentOptions {
  /** CODEGOD_MAX_ITERATIONS: loop iterations before a task counts as stuck. @default 4 */
  maxIterations: number;
  /** CODEGOD_PROMPT_BUDGET_TOKENS: estimated tokens one prompt may hold. @default 4096 */
  promptBudgetTokens: number;
  /** CODEGOD_CRASH_AT: test-only fault injection. @default none */
  crashAt?: string | undefined;
}

/** Where one caller's requests go and what they ask for. */
export interface LlmTarget {
  /** VLLM_API_URL_<ROLE>, else VLLM_API_URL. @default 'http://vllm-server:8000/v1' */
  url: string;
  /** The variable `url` came from, named in error messages. */
  urlVariable: string;
  /** LLM_MODEL_<ROLE>, else LLM_MODEL. @default the first model the endpoint lists */
  model?: string | undefined;
  /** The variable `model` came from (LLM_MODEL when neither is set), named in error messages. */
  modelVariable: string;
  /** LLM_TEMPERATURE_<ROLE>, else LLM_TEMPERATURE. @default the server's */
  temperature?: number | undefined;
}

/** The LLM client (shared/llm/client.ts). */
export interface LlmClientOptions {
  /** Callers that are not a worker role (the planner, checks). */
  defaults: LlmTarget;
  /** Each worker role, with its own endpoint, model and temperature where set. */
  roles: Record<Role, LlmTarget>;
  /** LLM_API_KEY (or LLM_API_KEY_FILE). @default 'EMPTY' is sent */
  apiKey?: string | undefined;
  /** LLM_TIMEOUT_MS: each try, until the response headers. @default 120000 */
  timeoutMs: number;
  /** LLM_MAX_RETRIES: the SDK's retries of connection errors, timeouts, 429 and 5xx. @default 3 */
  maxRetries: number;
  /** LLM_MAX_INFLIGHT: requests in flight per client. @default 16 */
  maxInflight: number;
  /** LLM_REPAIR_ATTEMPTS: re-asks after an invalid reply. @default 2 */
  repairAttempts: number;
  /** LLM_STRUCTURED_OUTPUT. @default 'json_schema' */
  structuredOutput: 'json_schema' | 'json_object';
}

/** The dashboard and API (orchestrator/http). */
export interface HttpOptions {
  /** CODEGOD_HTTP_HOST. @default '127.0.0.1' */
  host: string;
  /** CODEGOD_HTTP_PORT; 0 picks a free port. @default 8080 */
  port: number;
  /** CODEGOD_HTTP_ALLOWED_HOSTS: without a token, the names besides loopback ones a request may address. @default none */
  allowedHosts: readonly string[];
  /** CODEGOD_API_TOKEN (or CODEGOD_API_TOKEN_FILE): required for mutating calls, and for every page when set. @default none */
  apiToken?: string | undefined;
  /** CODEGOD_MAX_GOAL_CHARS: sizes the request body limit. @default 4000 */
  maxGoalChars: number;
  /** CODEGOD_MAX_TASKS_PER_BUILD: the most a submitted build may ask for. @default 200 */
  maxTasksPerBuild: number;
  /** CODEGOD_HEARTBEAT_MS: tells a live agent from a stale one. @default 5000 */
  heartbeatMs: number;
}

/** The orchestrator service (orchestrator/service.ts) and its planner, wired by orchestrator/open-orchestrator.ts. */
export interface OrchestratorOptions {
  /** CODEGOD_PLAN_ATTEMPTS: plans asked for one goal. @default 3 */
  planAttempts: number;
  /** CODEGOD_LOCK_DURATION_MS: the goals worker's job lock. @default 60000 */
  lockDurationMs: number;
  /** CODEGOD_STALLED_INTERVAL_MS. @default 30000 */
  stalledIntervalMs: number;
  /** CODEGOD_MAX_STALLED_COUNT. @default 2 */
  maxStalledCount: number;
  /** CODEGOD_RECONCILE_INTERVAL_MS. @default 10000 */
  reconcileIntervalMs: number;
  /** CODEGOD_HEARTBEAT_MS. @default 5000 */
  heartbeatMs: number;
  /** CODEGOD_HEALTH_FILE: touched on every heartbeat. @default none */
  healthFile?: string | undefined;
  /** CODEGOD_RETENTION: ended builds older than this are removed; null keeps them. @default 7 days */
  retentionMs: number | null;
  /** CODEGOD_RETENTION_INTERVAL_MS. @default 600000 (10 min) */
  retentionIntervalMs: number;
  /** CODEGOD_AGENT_EXPIRY_MS: an agent silent this long leaves agents:status. @default 600000 (10 min) */
  agentExpiryMs: number;
}

/** The sandbox of a task's workspace (shared/sandbox/). */
/** The isolated executor (shared/sandbox/executor): what the kernel walls agent commands with. */
export interface IsolationOptions {
  /** CODEGOD_SANDBOX: auto uses namespaces and refuses commands where the kernel cannot give them; host runs them unisolated. @default 'auto' */
  mode: 'auto' | 'namespaces' | 'host';
  /** CODEGOD_SANDBOX_NETWORK: on gives egress through pasta without the host's loopback; off leaves only lo. @default 'on' */
  network: 'on' | 'off';
  /** CODEGOD_SANDBOX_OUTBOUND: the host whose interface commands' connections leave through (non-root); unset, the default route's. @default none */
  outbound?: string | undefined;
  /** CODEGOD_SANDBOX_PIDS: processes all commands of one task may have at once. @default 512 */
  pids: number;
  /** CODEGOD_SANDBOX_MEMORY_MB: RLIMIT_DATA of each process, in MiB. @default 2048 */
  memoryMb: number;
  /** CODEGOD_SANDBOX_CPU_SECONDS: RLIMIT_CPU of each process. @default 600 */
  cpuSeconds: number;
  /** CODEGOD_SANDBOX_BWRAP. @default 'bwrap' */
  bwrap: string;
  /** CODEGOD_SANDBOX_PASTA. @default 'pasta' */
  pasta: string;
  /** Paths commands must not see: the deployments' secret directories, every *_FILE secret, CODEGOD_SANDBOX_HIDE. */
  hide: string[];
}

/** Where secrets live in the shipped deployments (compose and Kubernetes secrets). */
const SECRET_DIRS = ['/run/secrets', '/var/run/secrets'];

export interface SandboxOptions {
  /** CODEGOD_WORKSPACE_ROOT: builds' workspaces live below it. @default './workspaces' */
  workspaceRoot: string;
  /** CODEGOD_COMMAND_TIMEOUT_MS. @default 120000 */
  commandTimeoutMs: number;
  /** CODEGOD_OUTPUT_CAP_BYTES: output kept per command. @default 65536 */
  outputCapBytes: number;
  /** CODEGOD_DOCKER_HOST: docker actions are refused when unset. @default none */
  dockerHost?: string | undefined;
  isolation: IsolationOptions;
}

export interface CodegodOptions {
  redis: RedisOptions;
  scheduler: SchedulerOptions;
  roleWorker: RoleWorkerOptions;
  agent: AgentOptions;
  llm: LlmClientOptions;
  http: HttpOptions;
  orchestrator: OrchestratorOptions;
  sandbox: SandboxOptions;
}

function llmTarget(config: Config, role?: Role): LlmTarget {
  const suffix = role === undefined ? undefined : role.toUpperCase();
  const own = <P extends 'VLLM_API_URL' | 'LLM_MODEL' | 'LLM_TEMPERATURE'>(prefix: P) =>
    suffix === undefined ? undefined : (`${prefix}_${suffix}` as `${P}_${Uppercase<Role>}`);
  const urlVar = own('VLLM_API_URL');
  const modelVar = own('LLM_MODEL');
  const temperatureVar = own('LLM_TEMPERATURE');
  const url = urlVar === undefined ? undefined : config[urlVar];
  const model = modelVar === undefined ? undefined : config[modelVar];
  const temperature = temperatureVar === undefined ? undefined : config[temperatureVar];
  return {
    url: url ?? config.VLLM_API_URL,
    urlVariable: url !== undefined ? urlVar! : 'VLLM_API_URL',
    model: model ?? config.LLM_MODEL,
    modelVariable: model !== undefined ? modelVar! : 'LLM_MODEL',
    temperature: temperature ?? config.LLM_TEMPERATURE,
  };
}

/** The Redis part alone, for callers that only connect (the CLI, tests). */
export function redisOptions(config: Config): RedisOptions {
  return {
    url: config.REDIS_URL,
    password: config.REDIS_PASSWORD,
    prefix: config.CODEGOD_PREFIX,
    connectTimeoutMs: config.CODEGOD_CONNECT_TIMEOUT_MS,
  };
}

/** Every component's options, resolved from the environment's Config. */
export function compileOptions(config: Config): CodegodOptions {
  return {
    redis: redisOptions(config),
    scheduler: {
      maxGoalChars: config.CODEGOD_MAX_GOAL_CHARS,
      maxTasksPerBuild: config.CODEGOD_MAX_TASKS_PER_BUILD,
      eventsMaxLen: config.CODEGOD_EVENTS_MAXLEN,
      maxFollowupDepth: config.CODEGOD_MAX_FOLLOWUP_DEPTH,
      replansPerTask: config.CODEGOD_REPLANS_PER_TASK,
      jobs: {
        taskAttempts: config.CODEGOD_TASK_ATTEMPTS,
        backoffMs: config.CODEGOD_TASK_BACKOFF_MS,
        keepCompleted: config.CODEGOD_KEEP_COMPLETED_JOBS,
        keepFailed: config.CODEGOD_KEEP_FAILED_JOBS,
      },
    },
    roleWorker: {
      agentId: config.AGENT_ID,
      concurrency: config.WORKER_CONCURRENCY,
      lockDurationMs: config.CODEGOD_LOCK_DURATION_MS,
      stalledIntervalMs: config.CODEGOD_STALLED_INTERVAL_MS,
      maxStalledCount: config.CODEGOD_MAX_STALLED_COUNT,
      taskTimeoutMs: config.CODEGOD_TASK_TIMEOUT_MS,
      stopGraceMs: config.CODEGOD_STOP_GRACE_MS,
      taskBackoffMs: config.CODEGOD_TASK_BACKOFF_MS,
      heartbeatMs: config.CODEGOD_HEARTBEAT_MS,
      healthFile: config.CODEGOD_HEALTH_FILE,
      crashAt: config.CODEGOD_CRASH_AT,
    },
    agent: {
      maxIterations: config.CODEGOD_MAX_ITERATIONS,
      promptBudgetTokens: config.CODEGOD_PROMPT_BUDGET_TOKENS,
      crashAt: config.CODEGOD_CRASH_AT,
    },
    llm: {
      defaults: llmTarget(config),
      roles: Object.fromEntries(ROLES.map((r) => [r, llmTarget(config, r)])) as Record<Role, LlmTarget>,
      apiKey: config.LLM_API_KEY,
      timeoutMs: config.LLM_TIMEOUT_MS,
      maxRetries: config.LLM_MAX_RETRIES,
      maxInflight: config.LLM_MAX_INFLIGHT,
      repairAttempts: config.LLM_REPAIR_ATTEMPTS,
      structuredOutput: config.LLM_STRUCTURED_OUTPUT,
    },
    http: {
      host: config.CODEGOD_HTTP_HOST,
      port: config.CODEGOD_HTTP_PORT,
      allowedHosts: config.CODEGOD_HTTP_ALLOWED_HOSTS,
      apiToken: config.CODEGOD_API_TOKEN,
      maxGoalChars: config.CODEGOD_MAX_GOAL_CHARS,
      maxTasksPerBuild: config.CODEGOD_MAX_TASKS_PER_BUILD,
      heartbeatMs: config.CODEGOD_HEARTBEAT_MS,
    },
    orchestrator: {
      planAttempts: config.CODEGOD_PLAN_ATTEMPTS,
      lockDurationMs: config.CODEGOD_LOCK_DURATION_MS,
      stalledIntervalMs: config.CODEGOD_STALLED_INTERVAL_MS,
      maxStalledCount: config.CODEGOD_MAX_STALLED_COUNT,
      reconcileIntervalMs: config.CODEGOD_RECONCILE_INTERVAL_MS,
      heartbeatMs: config.CODEGOD_HEARTBEAT_MS,
      healthFile: config.CODEGOD_HEALTH_FILE,
      retentionMs: config.CODEGOD_RETENTION,
      retentionIntervalMs: config.CODEGOD_RETENTION_INTERVAL_MS,
      agentExpiryMs: config.CODEGOD_AGENT_EXPIRY_MS,
    },
    sandbox: {
      workspaceRoot: config.CODEGOD_WORKSPACE_ROOT,
      commandTimeoutMs: config.CODEGOD_COMMAND_TIMEOUT_MS,
      outputCapBytes: config.CODEGOD_OUTPUT_CAP_BYTES,
      dockerHost: config.CODEGOD_DOCKER_HOST,
      isolation: {
        mode: config.CODEGOD_SANDBOX,
        network: config.CODEGOD_SANDBOX_NETWORK,
        outbound: config.CODEGOD_SANDBOX_OUTBOUND,
        pids: config.CODEGOD_SANDBOX_PIDS,
        memoryMb: config.CODEGOD_SANDBOX_MEMORY_MB,
        cpuSeconds: config.CODEGOD_SANDBOX_CPU_SECONDS,
        bwrap: config.CODEGOD_SANDBOX_BWRAP,
        pasta: config.CODEGOD_SANDBOX_PASTA,
        hide: [
          ...SECRET_DIRS,
          ...[config.REDIS_PASSWORD_FILE, config.LLM_API_KEY_FILE, config.CODEGOD_API_TOKEN_FILE].filter((p): p is string => p !== undefined),
          ...config.CODEGOD_SANDBOX_HIDE,
        ],
      },
    },
  };
}
