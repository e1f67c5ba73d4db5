import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../../scripts/llm-server/server.js';
import { roleAgentSecurity } from '../../helpers/agent-security.js';
import { RedisServer, freePort } from '../../../shared/redis/redis-server.js';
import { CODEGOD_TEST_IMAGE, docker, dockerOk, ensureCodegodImage, until } from '../../helpers/docker.js';
import { ROOT } from '../../helpers/processes.js';

/**
 * The image as the deployment runs it: built from the Dockerfile (FROM the base NODE_IMAGE
 * names), non-root, read-only root filesystem, no capabilities; `codegod doctor`, `codegod
 * worker` and `codegod orchestrator` run in it against a real Redis and the scripted LLM;
 * its own HEALTHCHECK turns healthy, then unhealthy once the heartbeat stops (Redis gone).
 * The containers use host networking, so they reach servers this test starts on 127.0.0.1.
 */
const SCENARIO = join(ROOT, 'scripts/llm-server/scenarios/todo-app.yaml');
const containers: string[] = [];
const secrets = mkdtempSync(join(tmpdir(), 'codegod-image-'));
let llm: ScriptedLlmServer;
let built: { image: string; seconds: number };

/** `docker run` as compose runs codegod: non-root, read-only, no capabilities, /tmp a tmpfs, /workspace a volume. */
function hardened(name: string): string[] {
  return [
    'run', '--name', name, '--network', 'host', '--user', '10001:10001', '--read-only',
    '--tmpfs', '/tmp:rw,nosuid,nodev,size=256m,mode=1777', '-v', '/workspace', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true',
  ];
}

function uniqueName(what: string): string {
  const name = `codegod-test-${what}-${process.pid}-${containers.length}`;
  containers.push(name);
  return name;
}

beforeAll(async () => {
  built = await ensureCodegodImage();
  llm = await startScriptedLlmServer({ scenarioPath: SCENARIO });
}, 20 * 60_000);

afterAll(async () => {
  for (const name of containers) await docker(['rm', '-f', '-v', name]);
  await llm?.close();
  rmSync(secrets, { recursive: true, force: true });
});

describe('the codegod image', () => {
  it('builds, runs as uid 10001 under tini with a health check, and reports its size', async () => {
    const inspect = JSON.parse(await dockerOk(['image', 'inspect', CODEGOD_TEST_IMAGE]))[0];
    expect(inspect.Config.User).toBe('10001:10001');
    expect(inspect.Config.Entrypoint).toEqual(['/usr/bin/tini', '--']);
    expect(inspect.Config.Healthcheck.Test).toEqual(['CMD', 'node', '/app/dist/scripts/healthcheck.js']);
    const mb = inspect.Size / 1e6;
    console.log(`image: ${CODEGOD_TEST_IMAGE} is ${mb.toFixed(0)} MB; docker build took ${built.seconds.toFixed(1)} s (0 = built by another test file)`);
    expect(mb).toBeGreaterThan(0);
  });

  it('is read-only and non-root when hardened as compose runs it, with /tmp writable and the clients the agents drive', async () => {
    const name = uniqueName('ro');
    const r = await docker([
      ...hardened(name), CODEGOD_TEST_IMAGE, 'sh', '-c',
      'id -u; touch /app/probe 2>/dev/null && echo app-writable || echo app-read-only; touch /tmp/probe && echo tmp-writable; ' +
        'codegod --version; python3 --version; docker --version; docker compose version; git --version',
    ]);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 3)).toEqual(['10001', 'app-read-only', 'tmp-writable']);
    expect(r.stdout).toMatch(/Python 3\./);
    expect(r.stdout).toMatch(/Docker version/);
    expect(r.stdout).toMatch(/docker-compose version 1\./);
    expect(r.exitCode).toBe(0);
  });

  it('codegod doctor passes in it against Redis and the scripted LLM', async () => {
    const name = uniqueName('doctor');
    // With the role agents' security settings, where agents' commands run: the namespaces tier.
    const r = await docker([
      'run', '--name', name, '--network', 'host', '-v', '/workspace', ...roleAgentSecurity(secrets), '-e', `REDIS_URL=${inject('redisUrl')}`, '-e', `VLLM_API_URL=${llm.url}`, '-e', 'LLM_MODEL=codegod-test',
      CODEGOD_TEST_IMAGE, 'codegod', 'doctor',
    ]);
    expect(r.stdout).toMatch(/Redis/);
    expect(r.stdout).not.toMatch(/^fail/m);
    expect(r.stdout).toMatch(/^ok +isolation +namespaces/m);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  });

  it('codegod worker and orchestrator start in it; the health check goes healthy, then unhealthy when the heartbeat stops', async () => {
    // A Redis of this test's own that it can stop; its password reaches codegod as deployed,
    // in a secret file, and the URL carries none.
    const redisServer = await new RedisServer().start();
    writeFileSync(join(secrets, 'redis_password'), redisServer.password, { mode: 0o644 });
    const common = [
      '-v', `${join(secrets, 'redis_password')}:/run/secrets/redis_password:ro`, '-e', 'REDIS_PASSWORD_FILE=/run/secrets/redis_password',
      '-e', `REDIS_URL=${redisServer.address}`, '-e', `VLLM_API_URL=${llm.url}`, '-e', 'LLM_MODEL=codegod-test',
      '-e', 'CODEGOD_HEARTBEAT_MS=1000', '-e', 'CODEGOD_PREFIX=imagetest',
      // The image's own HEALTHCHECK command (30 s limit on the heartbeat's age), probed often.
      '--health-interval', '2s', '--health-retries', '2', '--health-start-period', '1s',
    ];
    const worker = uniqueName('worker');
    const orchestrator = uniqueName('orchestrator');
    try {
      await dockerOk([...hardened(worker), '-d', ...common, '-e', 'AGENT_ROLE=backend', CODEGOD_TEST_IMAGE, 'codegod', 'worker']);
      const httpPort = await freePort();
      await dockerOk([...hardened(orchestrator), '-d', ...common, '-e', `CODEGOD_HTTP_PORT=${httpPort}`, CODEGOD_TEST_IMAGE, 'codegod', 'orchestrator']);

      const health = async (name: string) => (await docker(['inspect', '-f', '{{.State.Health.Status}}', name])).stdout.trim();
      for (const name of [worker, orchestrator]) {
        await until(async () => ((await health(name)) === 'healthy' ? true : undefined), `${name} to turn healthy`, 60_000);
      }
      expect((await fetch(`http://127.0.0.1:${httpPort}/health`)).status).toBe(200);

      // Idle worker memory: RSS of its node process (docker top lists the container's processes).
      const top = await dockerOk(['top', worker, '-o', 'pid,rss,args']);
      const nodeLine = top.split('\n').find((l) => /node \/app\/bin\/codegod\.js worker/.test(l));
      const rssMb = Number(nodeLine?.trim().split(/\s+/)[1]) / 1024;
      console.log(`image: idle worker RSS in the container ${rssMb.toFixed(1)} MB`);
      expect(rssMb).toBeGreaterThan(10);

      await redisServer.stop();
      await until(async () => ((await health(worker)) === 'unhealthy' ? true : undefined), 'the worker to turn unhealthy', 90_000, 1_000);
      const log = JSON.parse(await dockerOk(['inspect', '-f', '{{json .State.Health.Log}}', worker])) as Array<{ Output: string }>;
      expect(log.at(-1)?.Output).toMatch(/^unhealthy: last heartbeat \d+\.\ds ago \(limit 30s\)/);
    } finally {
      await redisServer.stop();
    }
  }, 240_000);
});
