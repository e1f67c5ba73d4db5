import { access, constants, mkdtemp, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import type { Config } from '../../shared/config.js';
import { compileOptions, type LlmClientOptions, redisOptions } from '../../shared/options.js';
import { CodegodError, errorMessage } from '../../shared/domain/errors.js';
import { createKeys } from '../../shared/redis/keys.js';
import { checkLlm } from '../../shared/llm/client.js';
import { connectOrFail, displayUrl } from '../../shared/redis/connection.js';
import { ROLES } from '../../shared/domain/roles.js';
import { agentViews, MASTER_ROLE, type AgentView, type CliContext } from './context.js';
import { withTimeout } from '../../shared/timeout.js';
import { EXIT } from './exit-codes.js';
import { detectIsolation, type Isolation } from '../../shared/sandbox/executor/isolation.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  status: CheckStatus;
  check: string;
  /** What was found and, unless ok, what to do about it. */
  detail: string;
}

/** How long the LLM check may take in all; doctor must answer even when a server hangs. */
const LLM_CHECK_MS = 8_000;
/** Per request to the LLM during the check (no retries: doctor reports, it does not wait out). */
const LLM_REQUEST_MS = 5_000;
/** Any single Redis command during the checks. */
const REDIS_COMMAND_MS = 3_000;

class CheckTimeout extends Error {}

function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return withTimeout(promise, ms, () => new CheckTimeout(`${what} did not answer within ${ms / 1_000} s`));
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/** Version, eviction policy and persistence, from INFO (readable where CONFIG is disabled, as on managed Redis). */
export function redisServerChecks(info: Map<string, string>, url: string): CheckResult[] {
  const results: CheckResult[] = [];
  const version = info.get('redis_version') ?? 'unknown';
  if (version !== 'unknown' && compareVersions(version, '5.0.0') < 0) {
    results.push({ status: 'fail', check: 'Redis', detail: `Redis ${version} at ${url} is too old; BullMQ needs 5.0 or newer (6.2+ recommended)` });
  } else if (version !== 'unknown' && compareVersions(version, '6.2.0') < 0) {
    results.push({ status: 'warn', check: 'Redis', detail: `Redis ${version} at ${url} works, but BullMQ recommends 6.2 or newer` });
  } else results.push({ status: 'ok', check: 'Redis', detail: `Redis ${version} at ${url}` });
  const policy = info.get('maxmemory_policy');
  if (policy === undefined) results.push({ status: 'warn', check: 'Redis eviction', detail: 'maxmemory-policy not reported by INFO; make sure it is noeviction' });
  else if (policy !== 'noeviction') {
    results.push({ status: 'warn', check: 'Redis eviction', detail: `maxmemory-policy is ${policy}; set it to noeviction (evicted keys lose jobs and build state)` });
  } else results.push({ status: 'ok', check: 'Redis eviction', detail: 'maxmemory-policy noeviction' });
  const aof = info.get('aof_enabled');
  if (aof === '1') results.push({ status: 'ok', check: 'Redis persistence', detail: 'AOF on' });
  else results.push({ status: 'warn', check: 'Redis persistence', detail: 'AOF is off; set appendonly yes (appendfsync everysec), or a restarted Redis forgets acknowledged work' });
  return results;
}

/** Workers per role and the orchestrator, from heartbeats. */
export function agentChecks(agents: readonly AgentView[]): CheckResult[] {
  const results: CheckResult[] = [];
  for (const role of ROLES) {
    const live = agents.filter((a) => a.role === role && a.live);
    const stale = agents.filter((a) => a.role === role && a.stale).length;
    const staleNote = stale ? ` (${stale} stale)` : '';
    if (live.length === 0) {
      results.push({ status: 'warn', check: `${role} workers`, detail: `none running${staleNote}; tasks for ${role} wait until one starts: codegod worker --role ${role}` });
    } else {
      const slots = live.reduce((n, a) => n + a.concurrency, 0);
      results.push({ status: 'ok', check: `${role} workers`, detail: `${live.length} running, ${slots} task slot(s)${staleNote}` });
    }
  }
  const masters = agents.filter((a) => a.role === MASTER_ROLE && a.live);
  if (masters.length === 0) results.push({ status: 'warn', check: 'orchestrator', detail: 'none running; goals are not planned until one starts: codegod orchestrator (or use codegod build --local)' });
  else results.push({ status: 'ok', check: 'orchestrator', detail: `${masters.length} running (${masters.map((m) => m.agentId).join(', ')})` });
  return results;
}

/** The Redis server's checks, then those read from heartbeats (workers, orchestrator). */
async function redisChecks(config: Config): Promise<{ server: CheckResult[]; agents: CheckResult[] }> {
  const url = displayUrl(config.REDIS_URL);
  let redis: Redis;
  try {
    redis = await connectOrFail(redisOptions(config));
  } catch (err) {
    return {
      server: [{ status: 'fail', check: 'Redis', detail: errorMessage(err) }],
      agents: [{ status: 'warn', check: 'workers', detail: 'not checked: Redis is unreachable' }],
    };
  }
  try {
    let server: CheckResult[];
    try {
      server = redisServerChecks(parseInfo(await bounded(redis.info(), REDIS_COMMAND_MS, 'Redis INFO')), url);
    } catch (err) {
      server = [{ status: 'warn', check: 'Redis', detail: `reachable at ${url}, but INFO failed (${errorMessage(err)}); check maxmemory-policy noeviction and appendonly yes by hand` }];
    }
    let agents: CheckResult[];
    try {
      const views = await bounded(agentViews({ redis, keys: createKeys(config.CODEGOD_PREFIX), config }), REDIS_COMMAND_MS, 'Redis');
      agents = agentChecks(views.agents);
    } catch (err) {
      agents = [{ status: 'warn', check: 'workers', detail: `not checked: ${errorMessage(err)}` }];
    }
    return { server, agents };
  } finally {
    redis.disconnect();
  }
}

async function llmCheck(ctx: CliContext, config: Config): Promise<CheckResult> {
  const { llm } = compileOptions(config);
  const quick: LlmClientOptions = { ...llm, timeoutMs: Math.min(llm.timeoutMs, LLM_REQUEST_MS), maxRetries: 0 };
  try {
    const found = await bounded(checkLlm(quick, { logger: ctx.logger }), LLM_CHECK_MS, `the LLM at ${displayUrl(config.VLLM_API_URL)}`);
    const others = found.models.length > 1 ? ` (serves ${found.models.length} models)` : '';
    const roles = (found.roles ?? []).map((r) => `; ${r.role}: ${r.url} serves ${r.model}`).join('');
    return { status: 'ok', check: 'LLM', detail: `${found.url} serves ${found.model}${others}${roles}` };
  } catch (err) {
    if (err instanceof CodegodError || err instanceof CheckTimeout) return { status: 'fail', check: 'LLM', detail: err.message };
    return { status: 'fail', check: 'LLM', detail: `check failed: ${errorMessage(err)}; check VLLM_API_URL` };
  }
}

/** The isolation agent commands get on this machine (what a worker started here would use). */
export function isolationCheck(isolation: Isolation): CheckResult {
  const check = 'isolation';
  if (isolation.tier === 'namespaces') return { status: 'ok', check, detail: isolation.description };
  if (isolation.tier === 'host') return { status: 'warn', check, detail: isolation.warning };
  return { status: 'fail', check, detail: `${isolation.reason}; workers here refuse agent commands` };
}

/** The workspace root must be writable here (or creatable): agents of local builds write into it. */
export async function workspaceCheck(root: string): Promise<CheckResult> {
  const check = 'workspace';
  try {
    const info = await stat(root).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (info && !info.isDirectory()) return { status: 'fail', check, detail: `${root} is not a directory; set CODEGOD_WORKSPACE_ROOT` };
    if (!info) {
      let parent = dirname(root);
      while (!(await stat(parent).catch(() => undefined))) parent = dirname(parent);
      await access(parent, constants.W_OK);
      return { status: 'ok', check, detail: `${root} does not exist yet; it will be created (${parent} is writable)` };
    }
    const probe = await mkdtemp(join(root, '.codegod-doctor-'));
    await rm(probe, { recursive: true, force: true });
    return { status: 'ok', check, detail: `${root} is writable` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
    return { status: 'fail', check, detail: `${root} is not writable (${code}); fix its permissions or set CODEGOD_WORKSPACE_ROOT` };
  }
}

export function formatCheck(r: CheckResult): string {
  return `${r.status.padEnd(4)}  ${r.check.padEnd(18)}  ${r.detail}`;
}

/** `codegod doctor`: every part codegod needs, each on one line; exit 1 when any check fails. */
export async function doctorCommand(ctx: CliContext, opts: { json?: boolean }): Promise<number> {
  let config: Config;
  try {
    config = ctx.config;
  } catch (err) {
    const result: CheckResult = { status: 'fail', check: 'configuration', detail: errorMessage(err) };
    if (opts.json) ctx.json({ ok: false, checks: [result] });
    else ctx.out(formatCheck(result));
    return EXIT.CHECKS_FAILED;
  }
  // Independent parts are checked at once, so the slowest bound (the LLM's) is the whole wait.
  const [redis, llm, workspace, isolation] = await Promise.all([
    redisChecks(config),
    llmCheck(ctx, config),
    workspaceCheck(resolve(ctx.io.cwd, config.CODEGOD_WORKSPACE_ROOT)),
    detectIsolation(compileOptions(config).sandbox.isolation).then(isolationCheck),
  ]);
  const results = [...redis.server, llm, ...redis.agents, workspace, isolation];
  const ok = results.every((r) => r.status !== 'fail');
  if (opts.json) ctx.json({ ok, checks: results });
  else ctx.out(...results.map(formatCheck));
  return ok ? EXIT.OK : EXIT.CHECKS_FAILED;
}
