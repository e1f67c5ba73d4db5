import { mkdirSync, mkdtempSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../shared/config.js';
import { RedisServer } from '../../shared/redis/redis-server.js';
import { cli } from '../helpers/cli-io.js';
import { configEnv, testConfig } from '../helpers/config.js';
import { engine, plan, waitForBuildEnd, waitForWorkers, type EngineHarness } from '../helpers/engine.js';
import { FAST_RECOVERY, startOrchestrator, startWorker, waitFor, type ChildHandle } from '../helpers/processes.js';

/**
 * Retention: `codegod prune` removes ended builds completely — every key, stream and BullMQ
 * job, and workspaces when asked — and never touches a build that has not ended; the
 * orchestrator applies CODEGOD_RETENTION by itself and drops dead agents; a full Redis fails
 * a new build with one line naming prune.
 */
const children: ChildHandle[] = [];
const workspaceRoot = mkdtempSync(join(tmpdir(), 'codegod-retention-'));
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill('SIGKILL')));
});
afterAll(() => rmSync(workspaceRoot, { recursive: true, force: true }));

async function allKeys(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out.sort();
}

/**
 * The keys a prune may change: every key but BullMQ's own housekeeping of a live worker (job
 * locks, the stalled-check marker, queue events), which comes and goes on its own timer.
 */
async function dataKeys(redis: Redis, prefix: string): Promise<string[]> {
  return (await allKeys(redis, prefix)).filter((k) => !/:q:[^:]+:(stalled-check|events|stalled|meta|marker)$|:lock$/.test(k));
}

/** Keys that belong to a build: its hash-tagged keys and its BullMQ jobs (ids start with the build id). */
const keysOf = (keys: string[], buildId: string) => keys.filter((k) => k.includes(buildId));

interface World {
  config: Config;
  env: Record<string, string>;
  h: EngineHarness;
  ended: string[];
  running: string;
  planning: string;
}

async function world(extra: Record<string, string> = {}): Promise<World> {
  const config = testConfig({ ...FAST_RECOVERY, CODEGOD_WORKSPACE_ROOT: workspaceRoot, CODEGOD_TASK_ATTEMPTS: '1', ...extra });
  const h = engine(config);
  const worker = startWorker(config, 'backend', FAST_RECOVERY);
  children.push(worker);
  await waitForWorkers(h.redis, config, [worker]);
  const ok = await h.scheduler.createBuild({ goal: 'ends well', plan: plan([{ id: 'a' }, { id: 'b', dependsOn: ['a'] }]) });
  const bad = await h.scheduler.createBuild({ goal: 'ends badly', plan: plan([{ id: 'a', description: 'fatal' }, { id: 'b', dependsOn: ['a'] }]) });
  expect((await waitForBuildEnd(h.scheduler, ok)).state).toBe('succeeded');
  expect((await waitForBuildEnd(h.scheduler, bad)).state).toBe('failed');
  const running = await h.scheduler.createBuild({ goal: 'still running', plan: plan([{ id: 'slow', description: 'sleep=60000' }]) });
  await waitFor(async () => (await h.scheduler.dag.getTask(running, 'slow')).state === 'running', 'the slow task to run');
  // No orchestrator: this one stays planning, its goal job waiting.
  const planning = await h.scheduler.submitGoal({ goal: 'still planning' });
  for (const id of [ok, bad, running, planning]) {
    mkdirSync(join(workspaceRoot, id), { recursive: true });
    writeFileSync(join(workspaceRoot, id, 'app.py'), 'print(1)\n');
  }
  return { config, env: configEnv(config), h, ended: [bad, ok], running, planning };
}

describe('codegod prune', () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
  }, 60_000);
  afterAll(() => w?.h.close());

  it('rejects a bad duration with one line and changes nothing', async () => {
    const before = await dataKeys(w.h.redis, w.config.CODEGOD_PREFIX);
    const r = await cli(['prune', '--older-than', '7x'], w.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("codegod: option '--older-than <duration>' argument '7x' is invalid. must be a duration such as 7d, 12h, 30m or 45s (got '7x')\n");
    expect(await dataKeys(w.h.redis, w.config.CODEGOD_PREFIX)).toEqual(before);
  });

  it('--dry-run lists the ended builds with the Redis memory each holds, and removes nothing', async () => {
    const before = await dataKeys(w.h.redis, w.config.CODEGOD_PREFIX);
    const r = await cli(['prune', '--older-than', '0', '--dry-run', '--json'], w.env);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { builds: Array<{ buildId: string; keys: number; bytes: number }> };
    expect(doc.builds.map((b) => b.buildId).sort()).toEqual([...w.ended].sort());
    for (const b of doc.builds) {
      expect(b.keys).toBe(keysOf(before, b.buildId).filter((k) => k.includes(`{${b.buildId}}`)).length);
      expect(b.bytes).toBeGreaterThan(0);
    }
    const human = await cli(['prune', '--older-than', '0', '--dry-run'], w.env);
    expect(human.stdout).toMatch(/^would prune 2 builds ended over 0ms ago: \d+ keys, [\d.]+ KB of Redis memory/);
    expect(await dataKeys(w.h.redis, w.config.CODEGOD_PREFIX)).toEqual(before);
  });

  it('--keep keeps the most recently ended builds', async () => {
    const r = await cli(['prune', '--older-than', '0', '--keep', '2', '--json'], w.env);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { pruned: unknown[] }).pruned).toEqual([]);
  });

  it('removes every key, stream and job of the ended builds (and their workspaces), and leaves running and planning builds alone', async () => {
    const before = await allKeys(w.h.redis, w.config.CODEGOD_PREFIX);
    for (const id of w.ended) expect(keysOf(before, id).length, id).toBeGreaterThan(5);
    const r = await cli(['prune', '--older-than', '0', '--workspaces'], w.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^pruned 2 builds ended over 0ms ago: \d+ keys and [\d.]+ KB of Redis memory, \d+ jobs, 2 workspaces\n$/);

    const after = await allKeys(w.h.redis, w.config.CODEGOD_PREFIX);
    for (const id of w.ended) {
      expect(keysOf(after, id), id).toEqual([]);
      expect(await w.h.redis.zscore(w.h.scheduler.keys.builds, id)).toBeNull();
      expect(existsSync(join(workspaceRoot, id))).toBe(false);
      const jobs = await w.h.scheduler.queues.get('backend').getJobs(['completed', 'failed', 'waiting', 'active']);
      expect(jobs.filter((j) => j.id?.startsWith(id))).toEqual([]);
    }
    for (const id of [w.running, w.planning]) {
      expect(keysOf(after, id), id).toEqual(keysOf(before, id));
      expect(existsSync(join(workspaceRoot, id, 'app.py'))).toBe(true);
    }
    expect((await w.h.scheduler.dag.getBuild(w.running)).state).toBe('running');
    expect(await w.h.scheduler.queues.get('goals').getJobState(w.planning)).toBe('waiting');
    const status = await cli(['status', '--json'], w.env);
    expect((JSON.parse(status.stdout) as { builds: Array<{ id: string }> }).builds.map((b) => b.id).sort()).toEqual([w.running, w.planning].sort());
  });
});

describe('the orchestrator applies CODEGOD_RETENTION', () => {
  it('removes ended builds past the retention and dead agents, and leaves the rest', async () => {
    const w = await world();
    try {
      const deadAgent = { agentId: 'backend-gone-1', role: 'backend', state: 'busy', currentTasks: [], heartbeat: Date.now() - 3_600_000, startedAt: 0, tasksCompleted: 0, tasksFailed: 0, concurrency: 1, pid: 1, host: 'gone' };
      await w.h.redis.hset(w.h.scheduler.keys.agentsStatus, deadAgent.agentId, JSON.stringify(deadAgent));
      children.push(startOrchestrator(w.config, { CODEGOD_RETENTION: '1s', CODEGOD_RETENTION_INTERVAL_MS: '300', CODEGOD_AGENT_EXPIRY_MS: '60000' }));
      await waitFor(async () => {
        const keys = await allKeys(w.h.redis, w.config.CODEGOD_PREFIX);
        return w.ended.every((id) => keysOf(keys, id).length === 0);
      }, 'the ended builds to be pruned', 30_000, 200);
      // The same pass drops dead agents once its pruning is done.
      await waitFor(async () => (await w.h.redis.hexists(w.h.scheduler.keys.agentsStatus, deadAgent.agentId)) === 0, 'the dead agent to be dropped', 10_000, 100);
      expect((await w.h.scheduler.dag.getBuild(w.running)).state).toBe('running');
      // Retention keeps workspaces: they are the user's project.
      for (const id of w.ended) expect(existsSync(join(workspaceRoot, id, 'app.py'))).toBe(true);
    } finally {
      await w.h.close();
    }
  }, 90_000);
});

describe('a full Redis', () => {
  it('fails a new build with one line naming prune, never a crash', async () => {
    const server = await new RedisServer().start();
    try {
      const admin = new Redis(server.url);
      await admin.config('SET', 'maxmemory', '1');
      admin.disconnect();
      const r = await cli(['build', 'Create a todo app', '--detach'], configEnv(testConfig({ REDIS_URL: server.url })));
      expect(r.code).toBe(3);
      // The last line says why; a warning that no orchestrator runs may come first.
      expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('codegod: warning:')).join('\n') + '\n').toMatch(/^codegod: Redis is full \(it reached maxmemory and refuses writes\): remove ended builds with codegod prune, or give Redis more memory \(REDIS_MAXMEMORY\)\n$/);
      expect(r.stdout).toBe('');
    } finally {
      await server.kill();
    }
  });
});
