import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../shared/redis/redis-server.js';
import { configEnv, testConfig } from '../helpers/config.js';
import { startCli } from '../helpers/cli.js';
import { engine } from '../helpers/engine.js';
import { ChildHandle, ROOT, spawnTs, waitFor } from '../helpers/processes.js';

/** The `codegod` program as its own process (bin/codegod.js). */
function codegod(args: string[], env: Record<string, string>): ChildHandle {
  const child = startCli(args, env);
  running.push(child);
  return child;
}

const running: ChildHandle[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.kill('SIGKILL')));
});

function stdoutOf(child: ChildHandle): Promise<string> {
  const chunks: string[] = [];
  child.proc.stdout?.on('data', (d: Buffer) => chunks.push(d.toString()));
  return child.exited.then(() => chunks.join(''));
}

function stderrOf(child: ChildHandle): Promise<string> {
  const chunks: string[] = [];
  child.proc.stderr?.on('data', (d: Buffer) => chunks.push(d.toString()));
  return child.exited.then(() => chunks.join(''));
}

describe('the codegod process', () => {
  it('exits 3 within a few seconds with one line when Redis is unreachable', async () => {
    const port = await freePort();
    const env = configEnv(testConfig(), { REDIS_URL: `redis://127.0.0.1:${port}`, CODEGOD_CONNECT_TIMEOUT_MS: '2000' });
    const started = Date.now();
    const child = codegod(['status'], env);
    const [stdout, stderr, { code }] = await Promise.all([stdoutOf(child), stderrOf(child), child.exited]);
    expect(code).toBe(3);
    // Process start-up (tsx) included; the connection attempt itself is bounded by the timeout.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(stdout).toBe('');
    expect(stderr).toBe(`codegod: cannot reach Redis at redis://127.0.0.1:${port} (${stderr.match(/\((.*)\)/)?.[1]}); start redis-server or set REDIS_URL\n`);
  });

  it('exits 2 with one line, and no password, for a REDIS_URL that is not a URL: the CLI, the worker and the orchestrator', async () => {
    const bad = ['redis://[::1', 'redis://host:notaport', 'redis://:s3cret-pw@127.0.0.1:99999', 'redis:///db', 'localhost:6379'];
    const children = bad.map((url) => ({ url, child: codegod(['status'], configEnv(testConfig(), { REDIS_URL: url })) }));
    // The other entry points, with the URL that carries a password.
    const env = configEnv(testConfig(), { REDIS_URL: bad[2]! });
    const entries = [spawnTs('workers/main.ts', [], { ...env, AGENT_ROLE: 'backend' }), spawnTs('orchestrator/main.ts', [], env)];
    running.push(...entries);
    children.push(
      ...[codegod(['worker', '--role', 'backend'], env), codegod(['orchestrator'], env), ...entries].map((child) => ({ url: bad[2]!, child })),
    );
    for (const { url, child } of children) {
      const { code } = await child.exited;
      // Nothing is written to stdout here, so the captured output is stderr alone.
      const stderr = child.text;
      expect(code, `${url}: ${stderr}`).toBe(2);
      expect(stderr).toMatch(/^codegod: invalid configuration: REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL, e\.g\. [^\n]+\n$/);
      expect(stderr).not.toContain('s3cret-pw');
    }
  });

  it('exits 2 with one line for an empty goal', async () => {
    const child = codegod(['--build', ''], configEnv(testConfig()));
    const [stderr, { code }] = await Promise.all([stderrOf(child), child.exited]);
    expect(code).toBe(2);
    expect(stderr).toBe('codegod: the goal is empty; say what to build, e.g. codegod build "Create a Flask + React todo app"\n');
  });

  it('submits with --detach, shows the build with status --json, and detaches on Ctrl-C with exit 130', async () => {
    const env = configEnv(testConfig());
    const detach = codegod(['build', 'Create a todo app', '--detach'], env);
    const [id, { code }] = await Promise.all([stdoutOf(detach), detach.exited]);
    expect(code).toBe(0);
    const buildId = id.trim();
    expect(buildId).toMatch(/^b-[a-z0-9]+-[a-z0-9]+$/);

    const status = codegod(['status', buildId, '--json'], env);
    const [json, statusExit] = await Promise.all([stdoutOf(status), status.exited]);
    expect(statusExit.code).toBe(0);
    expect(JSON.parse(json)).toMatchObject({ build: { id: buildId, state: 'planning', goal: 'Create a todo app' }, tasks: [] });

    // No orchestrator runs, so the build stays in planning while the CLI follows it.
    const follow = codegod(['status', buildId, '--follow'], env);
    const stderr = stderrOf(follow);
    await waitFor(() => follow.text.includes('submitted'), 'the follower to replay the build', 15_000);
    follow.proc.kill('SIGINT');
    expect((await follow.exited).code).toBe(130);
    expect(await stderr).toBe(`codegod: detached; build ${buildId} goes on. Follow it: codegod status ${buildId} --follow · cancel it: codegod cancel ${buildId}\n`);
  });

  it('`codegod status | head -1` ends quietly with exit 0 when the reader goes away', async () => {
    const config = testConfig();
    const h = engine(config);
    try {
      // More output than a pipe holds, so the CLI is still writing when head has gone.
      const ids = Array.from({ length: 1_500 }, (_, i) => `b-m0000000-${i.toString(16).padStart(6, '0')}`);
      for (let i = 0; i < ids.length; i += 250) {
        await Promise.all(ids.slice(i, i + 250).map((buildId) => h.scheduler.dag.submitBuild({ buildId, goal: `goal ${buildId} ${'x'.repeat(60)}`, maxTasks: 5, budgetTokens: 0 })));
      }
    } finally {
      await h.close();
    }
    const { LOG_LEVEL: _silent, ...env } = configEnv(config);
    const shell = spawn('bash', ['-c', `node ${ROOT}bin/codegod.js status --limit 1500 | head -1; echo "codegod exit $\{PIPESTATUS[0]}" >&2`], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const child = new ChildHandle(shell);
    running.push(child);
    const [stdout, stderr] = await Promise.all([stdoutOf(child), stderrOf(child)]);
    expect(stdout).toBe('builds\n');
    expect(stderr).toBe('codegod exit 0\n');
  });

  it('`codegod build` against an unreachable LLM prints plain lines, never a JSON log line', async () => {
    const closed = await freePort();
    const { LOG_LEVEL: _silent, ...env } = configEnv(testConfig(), {
      VLLM_API_URL: `http://127.0.0.1:${closed}/v1`,
      LLM_MAX_RETRIES: '0',
      CODEGOD_TASK_BACKOFF_MS: '50',
      CODEGOD_EXECUTOR: 'scripted',
    });
    const child = codegod(['build', 'Create a todo app', '--local'], env);
    const [stdout, stderr, { code }] = await Promise.all([stdoutOf(child), stderrOf(child), child.exited]);
    expect(code).toBe(5);
    const lines = `${stdout}${stderr}`.split('\n').filter((l) => l.trim() !== '');
    expect(lines.filter((l) => l.trimStart().startsWith('{'))).toEqual([]);
    // The orchestrator's warnings reach the person as warnings.
    expect(stderr).toMatch(/^codegod: warning: planning failed; the goal will be retried/m);
    expect(stderr.trim().split('\n').pop()).toMatch(/^codegod: build b-\S+ failed \(LLM_UNREACHABLE\): cannot reach the LLM/);

    const json = codegod(['--log-format', 'json', 'build', 'Create a todo app', '--local'], env);
    const [jsonErr, jsonExit] = await Promise.all([stderrOf(json), json.exited]);
    expect(jsonExit.code).toBe(5);
    expect(jsonErr.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('planning failed; the goal will be retried');
  }, 60_000);
});
