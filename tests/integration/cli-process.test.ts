import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../shared/redis/redis-server.js';
import { configEnv, testConfig } from '../helpers/config.js';
import { startCli } from '../helpers/cli.js';
import { waitFor, type ChildHandle } from '../helpers/processes.js';

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
});
