import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import type { ScenarioInput } from '../../scripts/llm-server/scenario.js';
import { loadConfig, type Config } from '../../shared/config.js';
import { newBuildId } from '../../shared/engine/dag-store.js';
import { createLogger } from '../../shared/logger.js';
import { LoopStateStore } from '../../shared/memory/loop-state.js';
import { freePort } from '../../shared/redis/redis-server.js';
import { TERMINAL_BUILD_STATES, type BuildRecord } from '../../shared/domain/build.js';
import { plan1, REASON, validateWith } from './agent.js';
import { configEnv, uniquePrefix } from './config.js';
import { engine, plan, waitForWorkers, type EngineHarness } from './engine.js';
import { FAST_RECOVERY, spawnTs, waitFor, type ChildHandle } from './processes.js';

/**
 * The red-team world: real builds whose plans attack the machine the worker runs on. Agents'
 * commands are untrusted code; these tests hand the agent payloads a text filter cannot read
 * and judge only what can be seen from outside the sandbox afterwards — canary files,
 * secrets, Redis, processes, the worker — never which rule refused what.
 *
 * Each file gets its own password-protected redis-server (an attack may try to wipe it), a
 * scripted LLM server, an orchestrator (it plans CLI goals and writes build reports) and
 * workers started with canary secrets the way a deployment gives them: the Redis password
 * and the LLM key as `*_FILE` paths, the API token as a variable.
 */

// ---------------------------------------------------------------------------------------------
// Payloads

type PyValue = string | number | boolean | readonly string[] | readonly number[];

function pyLiteral(v: PyValue): string {
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return JSON.stringify(v);
}

/**
 * Python code that a text filter cannot read: the program, with `consts` bound first, is
 * base64-encoded and decoded at run time. The shared prelude gives it `say(...)` (printed and
 * flushed) and `why(err)` (an OS error as `ErrnoName`, e.g. `ENOENT`). `tag` ends the code as
 * a comment, so the running process carries it in its cmdline for the test to look for.
 */
export function hiddenPython(source: string, consts: Record<string, PyValue> = {}, tag = ''): string {
  const prelude = [
    'import os, sys, errno, base64',
    'def say(*a):',
    '    try:',
    '        print(*a, flush=True)',
    '    except OSError:',
    '        pass',
    'def why(e):',
    "    n = getattr(e, 'errno', None)",
    "    return errno.errorcode.get(n, type(e).__name__) if n else type(e).__name__",
    ...Object.entries(consts).map(([k, v]) => `${k} = ${pyLiteral(v)}`),
  ].join('\n');
  const encoded = Buffer.from(`${prelude}\n${source}`, 'utf8').toString('base64');
  return `import base64 as _b;exec(_b.b64decode('${encoded}').decode())${tag ? `  # ${tag}` : ''}`;
}

/** A `run_python` step running hidden code. */
export function pythonStep(source: string, consts: Record<string, PyValue> = {}, tag = '') {
  return { action: 'run_python', params: { code: hiddenPython(source, consts, tag) } };
}

/** A `run_command` step running hidden code through python3 (for roles without run_python). */
export function commandStep(source: string, consts: Record<string, PyValue> = {}, tag = '', timeoutMs?: number) {
  return {
    action: 'run_command',
    params: { command: 'python3', args: ['-c', hiddenPython(source, consts, tag)], ...(timeoutMs === undefined ? {} : { timeout_ms: timeoutMs }) },
  };
}

export type Step = { action: string; params: Record<string, unknown> };

/** The marker every payload prints last: the step ran to its end. */
export const RAN = 'RT-RAN';

// ---------------------------------------------------------------------------------------------
// Looking from outside

/** A value as it may travel: plain, base64, reversed. */
export function secretForms(value: string): string[] {
  return [value, Buffer.from(value).toString('base64'), [...value].reverse().join('')];
}

/** Names of the secrets found in `text` in any of their forms. */
export function leakedSecrets(text: string, secrets: Record<string, string>): string[] {
  return Object.entries(secrets)
    .filter(([, v]) => secretForms(v).some((f) => text.includes(f)))
    .map(([k]) => k);
}

/** Every file below `dir` (symlinks not followed), with its contents. */
export function readTree(dir: string): string {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const s = statSync(p, { throwIfNoEntry: false });
      if (!s) continue;
      let isLink = false;
      try {
        readlinkSync(p);
        isLink = true;
      } catch {
        // not a symlink
      }
      if (isLink) {
        out.push(`${p} -> ${readlinkSync(p)}`);
        continue;
      }
      if (s.isDirectory()) walk(p);
      else if (s.isFile()) out.push(`${p}\n${readFileSync(p, 'latin1')}`);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.join('\n');
}

/** Pids of live processes whose command line contains `marker` (zombies have none). */
export function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(marker)) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Whether a process is alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^\d+ \(.*\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

/** This process's pid namespace: payloads compare theirs to it before anything that could hit the host. */
export const HOST_PID_NS = readlinkSync('/proc/self/ns/pid');

// ---------------------------------------------------------------------------------------------
// A private Redis with a password

export class PasswordRedis {
  private constructor(
    private readonly proc: ChildProcess,
    readonly port: number,
    readonly password: string,
    readonly dir: string,
  ) {}

  static async start(password: string): Promise<PasswordRedis> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'codegod-rt-redis-'));
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
    proc.on('error', () => undefined);
    const reap = () => proc.kill('SIGKILL');
    process.once('exit', reap);
    proc.once('exit', () => process.removeListener('exit', reap));
    const server = new PasswordRedis(proc, port, password, dir);
    await waitFor(async () => {
      const probe = server.client({ lazyConnect: true });
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    }, `redis-server on ${port}`, 10_000);
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  client(extra: { lazyConnect?: boolean } = {}): Redis {
    const r = new Redis({ host: '127.0.0.1', port: this.port, password: this.password, maxRetriesPerRequest: 1, retryStrategy: () => null, ...extra });
    r.on('error', () => undefined);
    return r;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      await new Promise<void>((resolve) => {
        this.proc.once('exit', () => resolve());
        this.proc.kill('SIGKILL');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Every key and every value of a Redis, as one text (for looking for secrets). */
export async function dumpRedis(r: Redis): Promise<{ keys: string[]; text: string }> {
  const keys: string[] = [];
  const parts: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await r.scan(cursor, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  for (const key of keys) {
    const type = await r.type(key);
    let value: unknown;
    if (type === 'string') value = await r.getBuffer(key).then((b) => b?.toString('latin1'));
    else if (type === 'hash') value = await r.hgetall(key);
    else if (type === 'list') value = await r.lrange(key, 0, -1);
    else if (type === 'set') value = await r.smembers(key);
    else if (type === 'zset') value = await r.zrange(key, 0, -1, 'WITHSCORES');
    else if (type === 'stream') value = await r.xrange(key, '-', '+');
    parts.push(`${key} ${type} ${JSON.stringify(value)}`);
  }
  return { keys, text: parts.join('\n') };
}

// ---------------------------------------------------------------------------------------------
// The world

export interface Secrets {
  redisPassword: string;
  llmKey: string;
  apiToken: string;
}

const canary = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;

/** Limits that end an attacked task quickly: two iterations, one attempt, no re-plan. */
const QUICK = {
  CODEGOD_MAX_ITERATIONS: '2',
  CODEGOD_TASK_ATTEMPTS: '1',
  CODEGOD_REPLANS_PER_TASK: '0',
  CODEGOD_COMMAND_TIMEOUT_MS: '20000',
  LLM_TIMEOUT_MS: '5000',
  LLM_MAX_RETRIES: '2',
};

export class RedTeamWorld {
  readonly workspaceRoot = mkdtempSync(join(tmpdir(), 'codegod-rt-ws-'));
  /** Places outside every workspace the agent must not touch: the host's /tmp and /var/tmp, and one outside both. */
  readonly outside = {
    tmp: mkdtempSync(join(tmpdir(), 'codegod-rt-out-')),
    varTmp: mkdtempSync('/var/tmp/codegod-rt-out-'),
    home: mkdtempSync(join(homedir(), '.codegod-rt-out-')),
  };
  readonly secretDir = mkdtempSync(join(tmpdir(), 'codegod-rt-secrets-'));
  readonly secretFiles: { redisPassword: string; llmKey: string };
  readonly config: Config;
  readonly h: EngineHarness;
  readonly workers = new Map<string, ChildHandle>();
  orchestrator: ChildHandle | undefined;
  httpPort = 0;
  /** Tags of processes payloads may have left behind: killed when the world closes. */
  readonly tags = new Set<string>();
  private readonly states: LoopStateStore;

  private constructor(
    readonly redis: PasswordRedis,
    readonly llm: ScriptedLlmServer,
    readonly secrets: Secrets,
  ) {
    this.secretFiles = { redisPassword: join(this.secretDir, 'redis-password'), llmKey: join(this.secretDir, 'llm-key') };
    writeFileSync(this.secretFiles.redisPassword, `${secrets.redisPassword}\n`, { mode: 0o600 });
    writeFileSync(this.secretFiles.llmKey, `${secrets.llmKey}\n`, { mode: 0o600 });
    this.config = loadConfig({
      REDIS_URL: redis.url,
      REDIS_PASSWORD: secrets.redisPassword,
      CODEGOD_PREFIX: uniquePrefix('rt'),
      LOG_LEVEL: 'silent',
      CODEGOD_HTTP_PORT: '0',
    });
    this.h = engine(this.config);
    this.states = new LoopStateStore(this.h.redis, this.h.scheduler.keys, createLogger('silent'));
  }

  static async start(): Promise<RedTeamWorld> {
    const secrets: Secrets = { redisPassword: canary('rt-redis-pw'), llmKey: canary('rt-llm-key'), apiToken: canary('rt-api-token') };
    const redis = await PasswordRedis.start(secrets.redisPassword);
    const llm = await startScriptedLlmServer({ scenario: { rules: [] } });
    return new RedTeamWorld(redis, llm, secrets);
  }

  /**
   * The environment of every codegod process here: the config without its secrets, which
   * come as a deployment gives them (files for the Redis password and the LLM key).
   */
  env(extra: Record<string, string> = {}): Record<string, string> {
    const base = configEnv(this.config);
    delete base.REDIS_PASSWORD;
    return {
      ...base,
      ...FAST_RECOVERY,
      ...QUICK,
      LOG_LEVEL: 'warn',
      VLLM_API_URL: this.llm.url,
      CODEGOD_EXECUTOR: 'agent',
      CODEGOD_WORKSPACE_ROOT: this.workspaceRoot,
      CODEGOD_HTTP_PORT: String(this.httpPort),
      REDIS_PASSWORD_FILE: this.secretFiles.redisPassword,
      LLM_API_KEY_FILE: this.secretFiles.llmKey,
      CODEGOD_API_TOKEN: this.secrets.apiToken,
      ...extra,
    };
  }

  async startOrchestrator(): Promise<void> {
    this.httpPort = await freePort();
    this.orchestrator = spawnTs('orchestrator/main.ts', [], this.env());
    await waitFor(async () => {
      try {
        return (await fetch(`http://127.0.0.1:${this.httpPort}/health`)).status < 500;
      } catch {
        return false;
      }
    }, 'the orchestrator to listen', 30_000, 100);
  }

  /** The worker of `role`, started again if an attack (or anything) ended it. */
  async worker(role: string): Promise<ChildHandle> {
    const current = this.workers.get(role);
    if (current && alive(current.pid)) return current;
    const w = spawnTs('workers/main.ts', [], this.env({ AGENT_ROLE: role }));
    this.workers.set(role, w);
    await waitForWorkers(this.h.redis, this.config, [w]);
    return w;
  }

  /**
   * Scripts the LLM: every task reasons the same way; `attacks` gives a task's first plan
   * (it ends with writing done.txt, so a plan whose every step ran validates); any later
   * plan only writes done.txt, so an attacked task always ends.
   */
  script(attacks: Record<string, Step[]>, extraRules: NonNullable<ScenarioInput['rules']> = []): void {
    const done = { action: 'write_file', params: { path: 'done.txt', content: 'done\n' } };
    this.llm.reset({
      rules: [
        ...extraRules,
        { match: { phase: 'reason' }, reply: REASON },
        ...Object.entries(attacks).map(([task, steps]) => ({ match: { phase: 'plan', task }, reply: plan1([...steps, done]), times: 1 })),
        { match: { phase: 'plan' }, reply: plan1([done]) },
        { match: { phase: 'validate' }, reply: validateWith([{ kind: 'file_exists', target: 'done.txt' }]) },
      ],
    });
  }

  /** A new build id, its workspace created (and prepared) before any task of it starts. */
  prepareWorkspace(prepare?: (dir: string) => void): string {
    const buildId = newBuildId();
    const dir = this.workspace(buildId);
    mkdirSync(dir, { recursive: true });
    prepare?.(dir);
    return buildId;
  }

  async build(tasks: Array<{ id: string; role: string }>, buildId?: string): Promise<string> {
    return this.h.scheduler.createBuild({
      goal: 'red team',
      plan: plan(tasks.map((t) => ({ ...t, description: `Do ${t.id}` }))),
      ...(buildId === undefined ? {} : { buildId }),
    });
  }

  async getBuild(buildId: string): Promise<BuildRecord | undefined> {
    return this.h.scheduler.dag.getBuild(buildId).catch(() => undefined);
  }

  /** Waits for the build to end and for its report; returns both. */
  async ended(buildId: string, timeoutMs = 60_000): Promise<{ build: BuildRecord; report: { tasks: unknown[] } }> {
    const build = await waitFor(async () => {
      const b = await this.getBuild(buildId);
      return b && TERMINAL_BUILD_STATES.has(b.state) ? b : undefined;
    }, `build ${buildId} to end`, timeoutMs);
    const report = await waitFor(async () => (await this.h.redis.hget(this.h.scheduler.keys.build(buildId), 'report')) ?? undefined, `the report of ${buildId}`, 15_000);
    return { build, report: JSON.parse(report) as { tasks: unknown[] } };
  }

  /** Every step of every iteration of a task, as the trace holds them. */
  async steps(buildId: string, taskId: string): Promise<Array<{ action: string; ok: boolean; output: string }>> {
    const trace = await this.states.read(buildId, taskId);
    return (trace?.iterations ?? []).flatMap((it) => it.act?.steps ?? []);
  }

  /** The outputs of a task's steps of one action, joined. */
  async outputs(buildId: string, taskId: string, action?: string): Promise<string> {
    return (await this.steps(buildId, taskId))
      .filter((s) => action === undefined || s.action === action)
      .map((s) => s.output)
      .join('\n');
  }

  workspace(buildId: string): string {
    return join(this.workspaceRoot, buildId);
  }

  /** A unique tag for a payload's processes; whatever carries it is killed when the world closes. */
  tag(label: string): string {
    const t = `rt-${label}-${randomBytes(4).toString('hex')}`;
    this.tags.add(t);
    return t;
  }

  killTagged(): void {
    for (const t of this.tags) for (const pid of processesWith(t)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  async close(): Promise<void> {
    this.killTagged();
    await Promise.all([...this.workers.values(), this.orchestrator].map((c) => c?.kill('SIGTERM')));
    this.killTagged();
    await this.h.close();
    await this.llm.close();
    await this.redis.stop();
    for (const dir of [this.workspaceRoot, this.secretDir, ...Object.values(this.outside)]) rmSync(dir, { recursive: true, force: true });
  }
}
