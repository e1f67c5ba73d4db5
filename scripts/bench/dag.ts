/**
 * `npm run bench:dag` — the DAG engine against raw BullMQ, on one Redis, in one run.
 *
 *   (a) wide:     N no-op tasks and a final fan-in, against N+1 raw BullMQ jobs (same concurrency)
 *   (b) chain:    a chain of dependent tasks, against a raw chain where each job adds the next
 *   (c) makespan: a random layered DAG of sleep tasks with enough workers, against its critical path
 *
 * Options: --wide N (default 5000), --chain N (500), --concurrency C (50), --layers L (6),
 * --repeat R (3; the best of R runs is kept for each measurement), --json (last line is one
 * JSON object). Uses REDIS_URL when set, else starts a private redis-server.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { Scheduler } from '../../orchestrator/scheduler.js';
import { loadConfig, type Config } from '../../shared/config.js';
import { createKeys } from '../../shared/keys.js';
import { createLogger } from '../../shared/logger.js';
import { parsePlan, type Plan } from '../../shared/plan.js';
import { taskJobOptions } from '../../shared/queues.js';
import { createRedis } from '../../shared/redis.js';
import { RedisServer } from '../../shared/redis-server.js';
import { ROLES } from '../../shared/roles.js';
import { ScriptedExecutor } from '../../workers/executors/scripted.js';
import { RoleWorker } from '../../workers/worker.js';

const { values: opts } = parseArgs({
  options: {
    wide: { type: 'string', default: '5000' },
    chain: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '50' },
    layers: { type: 'string', default: '6' },
    repeat: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const WIDE = Number(opts.wide);
const CHAIN = Number(opts.chain);
const CONCURRENCY = Number(opts.concurrency);
const LAYERS = Number(opts.layers);
const REPEAT = Math.max(1, Number(opts.repeat));

const say = (line: string) => process.stderr.write(`${line}\n`);
const logger = createLogger('warn');

function taskPlan(tasks: Array<{ id: string; role?: string; description?: string; dependsOn?: string[] }>): Plan {
  return parsePlan(
    { tasks: tasks.map((t) => ({ id: t.id, role: t.role ?? 'backend', title: t.id, description: t.description ?? 'noop', dependsOn: t.dependsOn ?? [] })) },
    { maxTasks: 1_000_000 },
  );
}

/** Runs a plan through codegod with in-process workers; returns ms from submission to build end. */
async function runCodegod(config: Config, scheduler: Scheduler, listen: Redis, plan: Plan): Promise<number> {
  const t0 = performance.now();
  const buildId = await scheduler.createBuild({ goal: 'bench', plan, maxTasks: plan.tasks.length });
  // Polling the state every 2 ms costs the measured system nothing; following the event
  // stream would charge the bench's own parsing of every event to codegod.
  for (;;) {
    const state = await listen.hget(scheduler.keys.build(buildId), 'state');
    if (state === 'succeeded') return performance.now() - t0;
    if (state !== 'running') throw new Error(`bench build ${buildId} ended ${state}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * Raw BullMQ, the baseline: one queue and one worker with the same job options and
 * concurrency as codegod's. `run` seeds the queue; the processor calls `finish` when the
 * last job ran. Returns ms from seeding to finish.
 */
async function rawBullmq(
  config: Config,
  name: string,
  concurrency: number,
  processor: (job: Job, queue: Queue, finish: () => void) => Promise<void>,
  seed: (queue: Queue) => Promise<void>,
): Promise<number> {
  const prefix = `${config.CODEGOD_PREFIX}:raw`;
  const conn = createRedis(config, 'service');
  const queue = new Queue(name, { connection: conn, prefix });
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const worker = new Worker(name, async (job) => processor(job, queue, finish), { connection: createRedis(config, 'service'), prefix, concurrency });
  await worker.waitUntilReady();
  const t0 = performance.now();
  await seed(queue);
  await finished;
  const ms = performance.now() - t0;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  conn.disconnect();
  return ms;
}

/** n jobs added in bulk; the fan-in job is added when the last of them completes, as codegod does. */
function rawWide(config: Config, n: number, concurrency: number, round: number): Promise<number> {
  const opts = taskJobOptions(config);
  let done = 0;
  return rawBullmq(
    config,
    `wide${round}`,
    concurrency,
    async (job, queue, finish) => {
      if (job.name === 'wide' && ++done === n) await queue.add('join', {}, { ...opts, jobId: `join-${round}` });
      if (job.name === 'join') finish();
    },
    async (queue) => {
      for (let i = 0; i < n; i += 1_000) {
        await queue.addBulk(Array.from({ length: Math.min(1_000, n - i) }, (_, j) => ({ name: 'wide', data: { i: i + j }, opts: { ...opts, jobId: `w-${round}-${i + j}` } })));
      }
    },
  );
}

/** A chain where each job adds the next. */
function rawChain(config: Config, n: number, round: number): Promise<number> {
  const opts = taskJobOptions(config);
  return rawBullmq(
    config,
    `chain${round}`,
    CONCURRENCY,
    async (job, queue, finish) => {
      const i = (job.data as { i: number }).i;
      if (i + 1 < n) await queue.add('hop', { i: i + 1 }, { ...opts, jobId: `c-${round}-${i + 1}` });
      else finish();
    },
    async (queue) => {
      await queue.add('hop', { i: 0 }, { ...opts, jobId: `c-${round}-0` });
    },
  );
}

/** A random layered DAG (seeded, so every run measures the same graph) and its critical path. */
function layeredDag(layers: number, width: number, seed: number): { plan: Plan; criticalMs: number } {
  let s = seed;
  const rand = () => ((s = (s * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const tasks: Array<{ id: string; role: string; description: string; dependsOn: string[] }> = [];
  const finishAt = new Map<string, number>();
  for (let l = 0; l < layers; l++) {
    for (let i = 0; i < width; i++) {
      const id = `l${l}n${i}`;
      const ms = 100 + Math.floor(rand() * 300);
      const deps = l === 0 ? [] : [...new Set(Array.from({ length: 1 + Math.floor(rand() * 3) }, () => `l${l - 1}n${Math.floor(rand() * width)}`))];
      tasks.push({ id, role: ROLES[(l + i) % ROLES.length]!, description: `sleep=${ms}`, dependsOn: deps });
      finishAt.set(id, Math.max(0, ...deps.map((d) => finishAt.get(d)!)) + ms);
    }
  }
  return { plan: taskPlan(tasks), criticalMs: Math.max(...finishAt.values()) };
}

async function main(): Promise<void> {
  let server: RedisServer | undefined;
  let url = process.env.REDIS_URL;
  if (!url) {
    server = await new RedisServer().start();
    url = server.url;
  }
  const config = loadConfig({ ...process.env, REDIS_URL: url, CODEGOD_PREFIX: `bench${Date.now().toString(36)}`, LOG_LEVEL: 'warn', WORKER_CONCURRENCY: String(CONCURRENCY) });
  const redis = createRedis(config, 'service');
  const listen = createRedis(config, 'service');
  const scheduler = new Scheduler(redis, createKeys(config.CODEGOD_PREFIX), config, logger);
  const workers = ROLES.map((role) => new RoleWorker({ config, role, executor: new ScriptedExecutor(), logger, agentId: `bench-${role}` }));
  for (const w of workers) await w.start();
  const best = async (f: (round: number) => Promise<number>) => {
    let min = Infinity;
    for (let r = 0; r < REPEAT; r++) min = Math.min(min, await f(r));
    return min;
  };
  // Baseline and codegod alternate round by round, so a change in the machine's load hits
  // both sides alike; each keeps its best round.
  const bestOfPairs = async (baseline: (round: number) => Promise<number>, ours: () => Promise<number>) => {
    let [b, o] = [Infinity, Infinity];
    for (let r = 0; r < REPEAT; r++) {
      b = Math.min(b, await baseline(r));
      o = Math.min(o, await ours());
    }
    return [b, o] as const;
  };

  say(`codegod bench:dag — redis ${url}, concurrency ${CONCURRENCY}, best of ${REPEAT}`);
  // Warm-up: JIT, Lua script cache, connections.
  await runCodegod(config, scheduler, listen, taskPlan(Array.from({ length: 200 }, (_, i) => ({ id: `w${i}` }))));
  await rawWide(config, 200, CONCURRENCY, 99);

  const widePlan = taskPlan([...Array.from({ length: WIDE }, (_, i) => ({ id: `t${i}` })), { id: 'join', dependsOn: Array.from({ length: WIDE }, (_, i) => `t${i}`) }]);
  const [rawWideMs, cgWideMs] = await bestOfPairs(
    (r) => rawWide(config, WIDE, CONCURRENCY, r),
    () => runCodegod(config, scheduler, listen, widePlan),
  );
  const rawWideTput = ((WIDE + 1) / rawWideMs) * 1000;
  const cgWideTput = ((WIDE + 1) / cgWideMs) * 1000;

  const chainPlan = taskPlan(Array.from({ length: CHAIN }, (_, i) => ({ id: `c${i}`, dependsOn: i ? [`c${i - 1}`] : [] })));
  const [rawChainMs, cgChainMs] = await bestOfPairs(
    (r) => rawChain(config, CHAIN, r),
    () => runCodegod(config, scheduler, listen, chainPlan),
  );

  const { plan: layered, criticalMs } = layeredDag(LAYERS, 12, 42);
  const makespanMs = await best(() => runCodegod(config, scheduler, listen, layered));

  for (const w of workers) await w.close();
  await scheduler.close();
  redis.disconnect();
  listen.disconnect();
  await server?.stop();

  const result = {
    wideTasks: WIDE + 1,
    concurrency: CONCURRENCY,
    rawWideJobsPerSec: Math.round(rawWideTput),
    codegodWideTasksPerSec: Math.round(cgWideTput),
    wideThroughputRatio: Number((cgWideTput / rawWideTput).toFixed(3)),
    chainHops: CHAIN,
    rawChainMsPerHop: Number((rawChainMs / CHAIN).toFixed(3)),
    codegodChainMsPerHop: Number((cgChainMs / CHAIN).toFixed(3)),
    chainAddedMsPerHop: Number(((cgChainMs - rawChainMs) / CHAIN).toFixed(3)),
    layeredTasks: layered.tasks.length,
    criticalPathMs: criticalMs,
    makespanMs: Math.round(makespanMs),
    makespanOverCriticalPath: Number((makespanMs / criticalMs).toFixed(3)),
  };
  const rows: Array<[string, string, string, string]> = [
    ['(a) wide DAG throughput', `${result.rawWideJobsPerSec} jobs/s`, `${result.codegodWideTasksPerSec} tasks/s`, `${result.wideThroughputRatio}× (target ≥ 0.8)`],
    ['(b) chain, ms per hop', `${result.rawChainMsPerHop}`, `${result.codegodChainMsPerHop}`, `+${result.chainAddedMsPerHop} ms (target ≤ 1)`],
    ['(c) makespan / critical path', `${criticalMs} ms`, `${result.makespanMs} ms`, `${result.makespanOverCriticalPath}× (target ≤ 1.05)`],
  ];
  const widths = [30, 16, 16, 26];
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  process.stdout.write(`${line(['measure', 'baseline', 'codegod', 'ratio'])}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    say(`bench:dag failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
