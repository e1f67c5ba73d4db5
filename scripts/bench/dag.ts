/**
 * `npm run bench:dag` — the DAG engine against raw BullMQ, on one Redis, in one run.
 *
 *   (a) wide:     N no-op tasks and a final fan-in, against N+1 raw BullMQ jobs (same concurrency)
 *   (b) chain:    a chain of dependent tasks, against a raw chain where each job adds the next
 *   (c) makespan: a random layered DAG of sleep tasks with enough workers, against its critical path
 *
 * Options: --wide N (default 5000), --chain N (500), --concurrency C (50), --layers L (6),
 * --repeat R (5; the best of R runs is kept for each measurement, CPU is averaged over them),
 * --only wide,chain,makespan (which to run), --json (last line is one JSON object). Uses
 * REDIS_URL when set, else starts a private redis-server.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { Scheduler } from '../../shared/engine/scheduler.js';
import { loadConfig, type Config } from '../../shared/config.js';
import { createKeys } from '../../shared/redis/keys.js';
import { createLogger } from '../../shared/logger.js';
import { parsePlan, type Plan } from '../../shared/domain/plan.js';
import { taskJobOptions } from '../../shared/engine/queues.js';
import { createRedis, displayUrl } from '../../shared/redis/connection.js';
import { RedisServer } from '../../shared/redis/redis-server.js';
import { ROLES } from '../../shared/domain/roles.js';
import { ScriptedExecutor } from '../../workers/executors/scripted.js';
import { openRoleWorker } from '../../shared/engine/open-role-worker.js';
import { redisOptions, compileOptions } from '../../shared/options.js';

const { values: opts } = parseArgs({
  options: {
    wide: { type: 'string', default: '5000' },
    chain: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '50' },
    layers: { type: 'string', default: '6' },
    repeat: { type: 'string', default: '5' },
    only: { type: 'string', default: 'wide,chain,makespan' },
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

/** CPU time so far of this process (every worker and queue of both sides runs here) and of Redis, in µs. */
interface Cpu {
  node: number;
  redis: number;
}

async function cpuNow(redis: Redis): Promise<Cpu> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  const { user, system } = process.cpuUsage();
  return { node: user + system, redis: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6 };
}

/** One measured run: wall time to the end, and the CPU it cost until its last write. */
interface Run {
  ms: number;
  cpu: Cpu;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs a plan through codegod with in-process workers: ms from submission to the build's
 * end; its CPU is counted until the build's report is written, so the work of ending a
 * build is charged to codegod too.
 */
async function runCodegod(scheduler: Scheduler, listen: Redis, plan: Plan): Promise<Run> {
  const before = await cpuNow(listen);
  const t0 = performance.now();
  const buildId = await scheduler.createBuild({ goal: 'bench', plan, maxTasks: plan.tasks.length });
  const key = scheduler.keys.build(buildId);
  // Polling the state every 2 ms costs the measured system nothing; following the event
  // stream would charge the bench's own parsing of every event to codegod.
  let ms: number;
  for (;;) {
    const state = await listen.hget(key, 'state');
    if (state === 'succeeded') {
      ms = performance.now() - t0;
      break;
    }
    if (state !== 'running') throw new Error(`bench build ${buildId} ended ${state}`);
    await sleep(2);
  }
  while (!(await listen.hexists(key, 'report'))) await sleep(2);
  const after = await cpuNow(listen);
  return { ms, cpu: { node: after.node - before.node, redis: after.redis - before.redis } };
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
): Promise<Run> {
  const prefix = `${config.CODEGOD_PREFIX}:raw`;
  const conn = createRedis(redisOptions(config), 'service');
  const queue = new Queue(name, { connection: conn, prefix });
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const worker = new Worker(name, async (job) => processor(job, queue, finish), { connection: createRedis(redisOptions(config), 'service'), prefix, concurrency });
  await worker.waitUntilReady();
  const before = await cpuNow(conn);
  const t0 = performance.now();
  await seed(queue);
  await finished;
  const ms = performance.now() - t0;
  const after = await cpuNow(conn);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  conn.disconnect();
  return { ms, cpu: { node: after.node - before.node, redis: after.redis - before.redis } };
}

/** n jobs added in bulk; the fan-in job is added when the last of them completes, as codegod does. */
function rawWide(config: Config, n: number, concurrency: number, round: number): Promise<Run> {
  const opts = taskJobOptions(compileOptions(config).scheduler.jobs);
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
function rawChain(config: Config, n: number, round: number): Promise<Run> {
  const opts = taskJobOptions(compileOptions(config).scheduler.jobs);
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
  const redis = createRedis(redisOptions(config), 'service');
  const listen = createRedis(redisOptions(config), 'service');
  const scheduler = new Scheduler(redis, createKeys(config.CODEGOD_PREFIX), compileOptions(config).scheduler, logger);
  const options = compileOptions(config);
  const workers = ROLES.map((role) => openRoleWorker({ options, role, executor: new ScriptedExecutor(), logger, agentId: `bench-${role}` }));
  for (const w of workers) await w.start();
  const only = new Set(opts.only.split(','));
  // Baseline and codegod alternate round by round, so a change in the machine's load hits
  // both sides alike. Each keeps its best round's time; CPU is averaged over all rounds; each
  // round's own ratio (codegod's time over the baseline's just before it) is kept too, to show
  // the spread.
  const pairs = async (baseline: (round: number) => Promise<Run>, ours: () => Promise<Run>) => {
    const sides = [baseline, ours].map(() => ({ ms: Infinity, cpu: { node: 0, redis: 0 } }));
    const roundRatios: number[] = [];
    for (let r = 0; r < REPEAT; r++) {
      const runs = [await baseline(r), await ours()];
      roundRatios.push(Number((runs[0]!.ms / runs[1]!.ms).toFixed(3)));
      for (const [i, run] of runs.entries()) {
        const side = sides[i]!;
        side.ms = Math.min(side.ms, run.ms);
        side.cpu.node += run.cpu.node / REPEAT;
        side.cpu.redis += run.cpu.redis / REPEAT;
      }
    }
    return { baseline: sides[0]!, ours: sides[1]!, roundRatios };
  };

  say(`codegod bench:dag — redis ${displayUrl(url)}, concurrency ${CONCURRENCY}, best of ${REPEAT}`);
  // Warm-up: JIT, Lua script cache, connections.
  await runCodegod(scheduler, listen, taskPlan(Array.from({ length: 200 }, (_, i) => ({ id: `w${i}` }))));
  await rawWide(config, 200, CONCURRENCY, 99);

  const result: Record<string, number | number[]> = { concurrency: CONCURRENCY };
  const rows: Array<[string, string, string, string]> = [];
  const perTask = (cpu: Cpu, n: number) => ({ node: Math.round(cpu.node / n), redis: Math.round(cpu.redis / n) });
  const cpuRow = (label: string, base: Cpu, ours: Cpu, n: number) => {
    const [b, o] = [perTask(base, n), perTask(ours, n)];
    rows.push([`    CPU µs per ${label}: node / redis`, `${b.node} / ${b.redis}`, `${o.node} / ${o.redis}`, `${(o.node / b.node).toFixed(2)}× / ${(o.redis / b.redis).toFixed(2)}×`]);
    return [b, o] as const;
  };

  if (only.has('wide')) {
    const widePlan = taskPlan([...Array.from({ length: WIDE }, (_, i) => ({ id: `t${i}` })), { id: 'join', dependsOn: Array.from({ length: WIDE }, (_, i) => `t${i}`) }]);
    const { baseline: raw, ours, roundRatios } = await pairs(
      (r) => rawWide(config, WIDE, CONCURRENCY, r),
      () => runCodegod(scheduler, listen, widePlan),
    );
    say(`(a) each round's ratio: ${roundRatios.join(', ')}`);
    const rawTput = ((WIDE + 1) / raw.ms) * 1000;
    const ourTput = ((WIDE + 1) / ours.ms) * 1000;
    Object.assign(result, {
      wideTasks: WIDE + 1,
      rawWideJobsPerSec: Math.round(rawTput),
      codegodWideTasksPerSec: Math.round(ourTput),
      wideThroughputRatio: Number((ourTput / rawTput).toFixed(3)),
      wideRoundRatios: roundRatios,
    });
    rows.push(['(a) wide DAG throughput', `${result.rawWideJobsPerSec} jobs/s`, `${result.codegodWideTasksPerSec} tasks/s`, `${result.wideThroughputRatio}× (target ≥ 0.8)`]);
    const [b, o] = cpuRow('task', raw.cpu, ours.cpu, WIDE + 1);
    Object.assign(result, { rawWideNodeCpuUsPerJob: b.node, rawWideRedisCpuUsPerJob: b.redis, codegodWideNodeCpuUsPerTask: o.node, codegodWideRedisCpuUsPerTask: o.redis });
  }

  if (only.has('chain')) {
    const chainPlan = taskPlan(Array.from({ length: CHAIN }, (_, i) => ({ id: `c${i}`, dependsOn: i ? [`c${i - 1}`] : [] })));
    const { baseline: raw, ours } = await pairs(
      (r) => rawChain(config, CHAIN, r),
      () => runCodegod(scheduler, listen, chainPlan),
    );
    Object.assign(result, {
      chainHops: CHAIN,
      rawChainMsPerHop: Number((raw.ms / CHAIN).toFixed(3)),
      codegodChainMsPerHop: Number((ours.ms / CHAIN).toFixed(3)),
      chainAddedMsPerHop: Number(((ours.ms - raw.ms) / CHAIN).toFixed(3)),
    });
    rows.push(['(b) chain, ms per hop', `${result.rawChainMsPerHop}`, `${result.codegodChainMsPerHop}`, `+${result.chainAddedMsPerHop} ms (target ≤ 1)`]);
    cpuRow('hop', raw.cpu, ours.cpu, CHAIN);
  }

  if (only.has('makespan')) {
    const { plan: layered, criticalMs } = layeredDag(LAYERS, 12, 42);
    let makespanMs = Infinity;
    for (let r = 0; r < REPEAT; r++) makespanMs = Math.min(makespanMs, (await runCodegod(scheduler, listen, layered)).ms);
    Object.assign(result, {
      layeredTasks: layered.tasks.length,
      criticalPathMs: criticalMs,
      makespanMs: Math.round(makespanMs),
      makespanOverCriticalPath: Number((makespanMs / criticalMs).toFixed(3)),
    });
    rows.push(['(c) makespan / critical path', `${criticalMs} ms`, `${result.makespanMs} ms`, `${result.makespanOverCriticalPath}× (target ≤ 1.05)`]);
  }

  for (const w of workers) await w.close();
  await scheduler.close();
  redis.disconnect();
  listen.disconnect();
  await server?.stop();

  const widths = [34, 16, 16, 26];
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
