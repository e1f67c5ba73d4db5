import { execa } from 'execa';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../shared/redis/redis-server.js';
import {
  CODEGOD_TEST_IMAGE,
  STACK_ENGINE,
  TEST_IMAGES,
  copyToStackEngine,
  docker,
  dockerOk,
  ensureCodegodImage,
  inStackNetns,
  until,
} from '../../helpers/docker.js';
import { ROOT } from '../../helpers/processes.js';

/**
 * The shipped deployment on a real engine, driven the way a user drives it: ./start-agents.sh
 * with docker-compose.agents.yml, the `scripted` profile (the scripted LLM in place of vLLM)
 * and the `docker` profile (the devops agent's isolated rootless engine). The images are
 * built from this checkout first and the stack starts with `up --no-build` (the engine may
 * have no network to build with). One stack serves the whole file, in order.
 */
const GOAL = 'Create a Flask + React todo app';
const ENGINE_IMAGE = 'codegod-docker-engine:test';
const project = `cgstack${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'codegod-stack-'));
const ports = { dashboard: 0, commander: 0 };
let env: Record<string, string>;

async function startAgents(args: string[], timeoutMs = 300_000) {
  const r = await inStackNetns('bash', [join(dir, 'start-agents.sh'), ...args], { cwd: dir, env, timeout: timeoutMs, input: '' });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function onStack(args: string[], input?: string) {
  return docker(args, { engine: STACK_ENGINE, ...(input === undefined ? {} : { input }), timeoutMs: 300_000 });
}

/** Ids of the project's running containers of SERVICE. */
async function containersOf(service: string): Promise<string[]> {
  const out = await dockerOk(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', `label=com.docker.compose.service=${service}`], { engine: STACK_ENGINE });
  return out.split('\n').filter(Boolean);
}

async function codegodJson<T>(args: string[]): Promise<T> {
  const r = await startAgents(['exec', 'master-orchestrator', 'codegod', ...args, '--json']);
  if (r.exitCode !== 0) throw new Error(`codegod ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

interface Agent {
  agentId: string;
  role: string;
  live: boolean;
  host: string;
  currentTasks: Array<{ buildId: string; taskId: string }>;
}

async function liveAgents(): Promise<Agent[]> {
  const status = await codegodJson<{ agents: Agent[] }>(['status']);
  return status.agents.filter((a) => a.live);
}

beforeAll(async () => {
  const [codegodImage] = await Promise.all([ensureCodegodImage()]);
  const engineBuild = ['build', '--network', 'host', '-t', ENGINE_IMAGE];
  if (TEST_IMAGES.debian) engineBuild.push('--build-arg', `BASE_IMAGE=${TEST_IMAGES.debian}`);
  await dockerOk([...engineBuild, join(ROOT, 'deploy/docker-engine')], { timeoutMs: 15 * 60_000 });
  await copyToStackEngine([codegodImage.image, ENGINE_IMAGE, ...[TEST_IMAGES.redis, TEST_IMAGES.redisCommander, TEST_IMAGES.python].filter((i): i is string => i !== undefined)]);

  for (const file of ['start-agents.sh', 'docker-compose.agents.yml', 'Dockerfile']) cpSync(join(ROOT, file), join(dir, file));
  cpSync(join(ROOT, 'deploy/docker-engine'), join(dir, 'deploy/docker-engine'), { recursive: true });
  cpSync(join(ROOT, 'deploy/seccomp'), join(dir, 'deploy/seccomp'), { recursive: true });
  // pasta, the agents' command egress, opens the tun device as uid 10001: where this host
  // keeps /dev/net/tun 0600, a 0666 node of the same device stands in (CODEGOD_TUN_DEVICE).
  const tun = (statSync('/dev/net/tun').mode & 0o666) === 0o666 ? '/dev/net/tun' : join(dir, 'tun');
  if (tun !== '/dev/net/tun') await execa('mknod', ['-m', '0666', tun, 'c', '10', '200']);
  ports.dashboard = await freePort();
  ports.commander = await freePort();
  env = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    COMPOSE_PROJECT_NAME: project,
    COMPOSE_PROFILES: 'scripted,docker',
    CODEGOD_IMAGE: CODEGOD_TEST_IMAGE,
    CODEGOD_DOCKER_ENGINE_IMAGE: ENGINE_IMAGE,
    CODEGOD_DASHBOARD_PORT: String(ports.dashboard),
    REDIS_COMMANDER_PORT: String(ports.commander),
    ...(TEST_IMAGES.redis ? { REDIS_IMAGE: TEST_IMAGES.redis } : {}),
    ...(TEST_IMAGES.redisCommander ? { REDIS_COMMANDER_IMAGE: TEST_IMAGES.redisCommander } : {}),
    // A killed worker's job comes back within seconds, and `down` need not wait 35 minutes.
    CODEGOD_LOCK_DURATION_MS: '5000',
    CODEGOD_STALLED_INTERVAL_MS: '5000',
    AGENT_STOP_GRACE_PERIOD: '10s',
    AGENT_MEMORY_LIMIT: '1g',
    CODEGOD_TUN_DEVICE: tun,
    // Debian's docker-compose here is v1, which cannot unmask the agents' /proc: their isolated
    // network cannot start there, and the devops agent's commands need one to reach its
    // engine. The stack's agents run their commands on the host tier; the isolation the
    // role agents' settings give in a container is sandbox-tier.test.ts's.
    CODEGOD_SANDBOX: 'host',
    // Slow enough that a build is still running when an agent is killed.
    SCRIPTED_LLM_LATENCY: 'ttft=300,tpot=4',
  };
}, 25 * 60_000);

afterAll(async () => {
  if (env) await inStackNetns('docker-compose', ['-p', project, '-f', join(dir, 'docker-compose.agents.yml'), 'down', '-v', '-t', '1'], { cwd: dir, env, timeout: 120_000 });
  rmSync(dir, { recursive: true, force: true });
}, 180_000);

describe('the compose stack through start-agents.sh', () => {
  it('up starts every service; agents turn healthy', async () => {
    const started = Date.now();
    const up = await startAgents(['up', '--no-build']);
    expect(up.exitCode, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toContain('codegod is starting (LLM: scripted');
    const agentServices = ['backend-agent', 'frontend-agent', 'devops-agent', 'testing-agent'];
    await until(async () => {
      const healthy = await dockerOk(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'health=healthy'], { engine: STACK_ENGINE });
      return healthy ? true : undefined;
    }, 'a healthy container', 120_000);
    console.log(`stack: up --no-build to the first healthy container in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const service of agentServices) expect(await containersOf(service), service).toHaveLength(1);
    for (const service of ['redis', 'redis-commander', 'scripted-llm', 'docker-engine', 'master-orchestrator']) {
      expect(await containersOf(service), service).toHaveLength(1);
    }
    await until(async () => ((await liveAgents()).length >= 4 ? true : undefined), 'four live agents', 120_000, 1_000);
  }, 300_000);

  it('codegod --build through the stack succeeds; the workspace volume holds the project, and the devops agent built and ran its image in its own engine', async () => {
    // Docker Hub is out of reach here: the engine gets a local python3 image under the name
    // the todo app's Dockerfile asks for.
    const [engine] = await containersOf('docker-engine');
    await until(async () => ((await onStack(['inspect', '-f', '{{.State.Health.Status}}', engine!])).stdout.trim() === 'healthy' ? true : undefined), 'the docker engine', 120_000, 1_000);
    if (TEST_IMAGES.python) {
      const piped = await inStackNetns('sh', ['-c', `docker save ${TEST_IMAGES.python} | docker exec -i ${engine} docker load -q && docker exec ${engine} docker tag ${TEST_IMAGES.python} python:3.12-slim`]);
      expect(piped.exitCode, String(piped.stderr)).toBe(0);
    }

    const started = Date.now();
    const build = await startAgents(['exec', 'master-orchestrator', 'codegod', '--build', GOAL], 600_000);
    console.log(`stack: codegod --build "${GOAL}" took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(build.exitCode, build.stdout + build.stderr).toBe(0);
    expect(build.stdout).toMatch(/succeeded/);

    const buildId = /build (b-[a-z0-9-]+) submitted/.exec(build.stdout)?.[1];
    const files = await onStack([
      'run', '--rm', '--network', 'none', '-v', `${project}_workspace:/workspace:ro`, CODEGOD_TEST_IMAGE,
      'find', `/workspace/${buildId}`, '-maxdepth', '3', '-type', 'f', '-not', '-path', '*/.*',
    ]);
    const listing = files.stdout + files.stderr;
    for (const file of ['backend/todo_api.py', 'backend/validation.py', 'frontend/src/App.jsx', 'Dockerfile', 'docker-compose.yml', 'README.md']) {
      expect(listing, file).toContain(`/workspace/${buildId}/${file}`);
    }

    const running = await onStack(['exec', engine!, 'docker', 'ps', '--format', '{{.Image}} {{.Status}} {{.Label "com.docker.compose.service"}}']);
    // run_container's container (no compose label; its image shows as an id once deploy's
    // build re-tags todo-api:1), and deploy's compose service.
    expect(running.stdout).toMatch(/^\S+ Up .* $/m);
    expect(running.stdout).toMatch(/^todo-api:1 Up .* api$/m);
    const [apiContainer] = (await onStack(['exec', engine!, 'docker', 'ps', '-q', '--filter', 'label=com.docker.compose.service=api'])).stdout.split('\n');
    const api = await onStack(['exec', engine!, 'docker', 'exec', apiContainer!, 'python', '-c', "import urllib.request as u; print(u.urlopen('http://127.0.0.1:5000/api/todos').read().decode())"]);
    expect(api.stdout.trim()).toBe('[]');
    // The host's engine never saw any of it.
    expect((await docker(['images', '-q', 'todo-api'])).stdout.trim()).toBe('');
  }, 700_000);

  it('scale backend-agent 3 gives three live backend agents', async () => {
    const r = await startAgents(['scale', 'backend-agent', '3']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await containersOf('backend-agent')).toHaveLength(3);
    await until(async () => ((await liveAgents()).filter((a) => a.role === 'backend').length === 3 ? true : undefined), 'three live backend agents', 120_000, 1_000);
  }, 180_000);

  it('an agent container that dies mid-build: the restart policy and BullMQ bring the build to success', async () => {
    const build = startAgents(['build', GOAL], 600_000);
    const victim = await until(async () => {
      // A worker: the master orchestrator lists the goal it plans as its task too, and its
      // container is where this build's CLI runs.
      const busy = (await liveAgents()).find((a) => a.currentTasks.length > 0 && a.role !== 'devops' && a.role !== 'master');
      return busy;
    }, 'an agent running a task', 300_000, 300);
    const [container] = (await dockerOk(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', `id=${victim.host}`], { engine: STACK_ENGINE })).split('\n');
    expect(container, `no container for host ${victim.host}`).toBeTruthy();
    // The container dies as a crash (or the OOM killer) ends it: its init process killed with
    // SIGKILL. (`docker kill` counts as a manual stop, after which Docker never restarts it.)
    process.kill(Number(await dockerOk(['inspect', '-f', '{{.State.Pid}}', container!], { engine: STACK_ENGINE })), 'SIGKILL');
    const done = await build;
    if (done.exitCode !== 0) {
      const failed = /trace    (codegod trace \S+ \S+)/.exec(done.stdout)?.[1]?.split(' ').slice(1) ?? [];
      const trace = failed.length ? await startAgents(['exec', 'master-orchestrator', 'codegod', ...failed]) : undefined;
      expect.fail(`the build failed after agent ${victim.agentId} was killed:\n${done.stdout.split('\n').slice(-25).join('\n')}\n${trace?.stdout.slice(-4000) ?? ''}`);
    }
    expect(done.stdout).toMatch(/succeeded/);
    const inspect = JSON.parse(await dockerOk(['inspect', container!], { engine: STACK_ENGINE }))[0] as { RestartCount: number; State: { Running: boolean } };
    expect(inspect.RestartCount).toBeGreaterThanOrEqual(1);
    expect(inspect.State.Running).toBe(true);
  }, 700_000);

  it('wipe clears the agents\' working memory', async () => {
    const completed = (memories: unknown): number => {
      let n = 0;
      const walk = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === 'object') {
          for (const [k, x] of Object.entries(v)) {
            if (k === 'completedTasks' && Array.isArray(x)) n += x.length;
            else if (k !== 'checkpoints') walk(x);
          }
        }
      };
      walk(memories);
      return n;
    };
    const exportMemories = async () => JSON.parse((await startAgents(['exec', 'master-orchestrator', 'codegod', 'memory', 'export', '-'])).stdout) as unknown;
    expect(completed(await exportMemories())).toBeGreaterThan(0);
    const r = await startAgents(['wipe', '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wiped /);
    expect(completed(await exportMemories())).toBe(0);
  }, 120_000);

  it('status and logs work', async () => {
    const status = await startAgents(['status']);
    expect(status.exitCode, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/backend-agent/);
    expect(status.stdout).toMatch(/agents/);
    // logs follows (-f): read until the orchestrator's lines show, then stop its process group.
    const logs = inStackNetns('bash', [join(dir, 'start-agents.sh'), 'logs', 'master-orchestrator'], { cwd: dir, env, detached: true, buffer: false });
    let seen = '';
    logs.stdout?.on('data', (d: Buffer) => (seen += d.toString()));
    try {
      await until(async () => (seen.includes('master-orchestrator') ? true : undefined), 'orchestrator log lines', 15_000, 200);
    } finally {
      process.kill(-logs.pid!, 'SIGTERM');
      await logs.catch(() => undefined);
    }
  }, 60_000);

  it('Redis Commander answers only with its credentials', async () => {
    // Redis Commander signs users in (POST /signin) and wants the bearer token it hands out
    // on every API call.
    const base = `http://127.0.0.1:${ports.commander}`;
    const curl = async (...args: string[]) => String((await inStackNetns('curl', ['-s', ...args])).stdout);
    const api = (...auth: string[]) => curl('-o', '/dev/null', '-w', '%{http_code}', ...auth, `${base}/apiv2/server/info`);
    await until(async () => ((await api()) === '401' ? true : undefined), 'Redis Commander to answer', 60_000, 1_000);
    const signin = async (password: string) => JSON.parse(await curl('-X', 'POST', '--data-urlencode', 'username=admin', '--data-urlencode', `password=${password}`, `${base}/signin`)) as { ok: boolean; bearerToken?: string };
    const good = await signin(readFileSync(join(dir, 'secrets/redis_commander_password'), 'utf8').trim());
    expect(good.ok).toBe(true);
    expect(await signin('wrong')).toEqual({ ok: false });
    expect(await api('-H', 'Authorization: Bearer forged')).toBe('401');
    expect(await api('-H', `Authorization: Bearer ${good.bearerToken}`)).toBe('200');
  }, 90_000);

  it('Redis is not reachable from outside the compose network', async () => {
    const [redis] = await containersOf('redis');
    const inspect = JSON.parse(await dockerOk(['inspect', redis!], { engine: STACK_ENGINE }))[0];
    expect(Object.values(inspect.NetworkSettings.Ports ?? {}).every((bindings) => bindings === null)).toBe(true);
    expect(inspect.HostConfig.PortBindings ?? {}).toEqual({});
    const networks = Object.keys(inspect.NetworkSettings.Networks);
    expect(networks).toEqual([`${project}_backplane`]);
    const ip = inspect.NetworkSettings.Networks[`${project}_backplane`].IPAddress as string;
    // Not from a container outside the stack's networks. (The engine's own host can route to
    // any bridge network's addresses, internal ones included; there Redis asks for its password.)
    const probe = `exec 3<>/dev/tcp/${ip}/6379 && echo reached || echo unreachable`;
    const outside = await onStack(['run', '--rm', CODEGOD_TEST_IMAGE, 'timeout', '5', 'bash', '-c', probe]);
    expect(outside.stdout.trim()).not.toBe('reached');
    // From inside it answers (and wants the password).
    const inside = await startAgents(['exec', 'redis', 'redis-cli', 'ping']);
    expect(inside.stdout).toMatch(/NOAUTH/);
  }, 60_000);

  it('down removes the containers and keeps the volumes', async () => {
    const r = await startAgents(['down'], 180_000);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await dockerOk(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], { engine: STACK_ENGINE })).toBe('');
    expect(await dockerOk(['volume', 'ls', '-q', '--filter', `name=${project}_workspace`], { engine: STACK_ENGINE })).toBe(`${project}_workspace`);
  }, 200_000);
});

describe('start-agents.sh against engines that cannot serve it: one line, non-zero, nothing started', () => {
  it('no engine at all', async () => {
    const r = await inStackNetns('bash', [join(dir, 'start-agents.sh'), 'up'], { cwd: dir, env: { ...env, DOCKER_HOST: `unix://${dir}/no-such.sock` } });
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr).trim().split('\n')).toHaveLength(1);
    expect(String(r.stderr)).toMatch(/^start-agents: cannot reach the Docker engine \(.*\); start Docker/);
  });

  it('a stopped engine (its socket left behind)', async () => {
    // A socket file nothing listens on, as a killed daemon leaves behind.
    const sock = join(dir, 'stopped.sock');
    await execa('python3', ['-c', 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', sock]);
    const r = await inStackNetns('bash', [join(dir, 'start-agents.sh'), 'status'], { cwd: dir, env: { ...env, DOCKER_HOST: `unix://${sock}` } });
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr).trim().split('\n')).toHaveLength(1);
    expect(String(r.stderr)).toMatch(/cannot reach the Docker engine .*Is the docker daemon running\?/);
  });

  it('a port already taken', async () => {
    const holder = inStackNetns('node', ['-e', `require('net').createServer().listen(${ports.dashboard}, '127.0.0.1', () => console.log('listening'))`], { buffer: false });
    await new Promise<void>((resolve) => holder.stdout?.once('data', () => resolve()));
    try {
      const r = await startAgents(['up', '--no-build']);
      expect(r.exitCode).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`port ${ports.dashboard} on 127.0.0.1 is taken`);
      expect(await dockerOk(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], { engine: STACK_ENGINE })).toBe('');
    } finally {
      holder.kill('SIGKILL');
      await holder.catch(() => undefined);
    }
  });
});
