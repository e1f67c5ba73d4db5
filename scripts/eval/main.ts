import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from '../../shared/config.js';
import { compileOptions, redisOptions } from '../../shared/options.js';
import { CodegodError, errorMessage, RedisUnreachableError } from '../../shared/domain/errors.js';
import { LlmClient } from '../../shared/llm/client.js';
import { createLogger } from '../../shared/logger.js';
import { runMain } from '../../shared/process.js';
import { connectOrFail, displayUrl } from '../../shared/redis/connection.js';
import { RedisServer } from '../../shared/redis/redis-server.js';
import { scrubProcessEnv } from '../../shared/sandbox/sandbox.js';
import { renderSummary, summarize } from './report.js';
import { SuiteRunner } from './runner.js';
import { loadSuite, selectGoals } from './suite.js';

/**
 * `npm run eval -- --suite <file> [--goals a,b] [--out results.json] [--timeout <sec>] [--json]`
 *
 * Builds every goal of the suite with codegod against the configured LLM (VLLM_API_URL,
 * LLM_MODEL and the rest of the environment, as for `codegod build --local`), then judges
 * each result from outside: the project's own tests and the suite's independent checks. It
 * prints a row per goal and writes a JSON summary (default eval-results/<suite>-<time>.json).
 * Redis: REDIS_URL when it answers, else a private redis-server. Builds go under
 * --workspace (default eval-workspaces/<suite>-<time>). Exit 0 once the suite has run,
 * whatever the goals' outcomes; 2 for bad arguments or a bad suite.
 */
function usage(message: string): CodegodError {
  return new CodegodError('USAGE', `${message}; usage: npm run eval -- --suite <file> [--goals a,b] [--out file] [--workspace dir] [--timeout sec] [--json]`, { exitCode: 2 });
}

function options() {
  try {
    return parseArgs({
      options: {
        suite: { type: 'string' },
        goals: { type: 'string' },
        out: { type: 'string' },
        workspace: { type: 'string' },
        timeout: { type: 'string', default: '1800' },
        json: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    throw usage(errorMessage(err));
  }
}

async function redisFor(config: Config): Promise<{ config: Config; server?: RedisServer }> {
  try {
    (await connectOrFail(redisOptions(config))).disconnect();
    return { config };
  } catch (err) {
    if (!(err instanceof RedisUnreachableError)) throw err;
  }
  const server = await new RedisServer().start();
  process.stderr.write(`eval: no Redis at ${displayUrl(config.REDIS_URL)}; started a private redis-server at ${server.address}\n`);
  const { REDIS_PASSWORD: _unused, ...rest } = config;
  return { config: { ...rest, REDIS_URL: server.url }, server };
}

async function main(): Promise<number> {
  const opts = options();
  if (!opts.suite) throw usage('--suite is required');
  const timeoutSec = Number(opts.timeout);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) throw usage(`--timeout must be a positive number of seconds (got '${opts.timeout}')`);
  const suite = await loadSuite(resolve(opts.suite));
  const goals = selectGoals(suite, opts.goals?.split(',').map((g) => g.trim()).filter(Boolean));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runId = `${suite.name}-${stamp}`;
  const out = resolve(opts.out ?? `eval-results/${runId}.json`);
  const workspace = resolve(opts.workspace ?? `eval-workspaces/${runId}`);

  const base = loadConfig();
  scrubProcessEnv();
  const logger = createLogger(base.LOG_LEVEL === 'info' ? 'warn' : base.LOG_LEVEL, { service: 'eval' });
  const redis = await redisFor({
    ...base,
    // A prefix of its own unless one is given: an evaluation's builds stay apart from a deployment's.
    CODEGOD_PREFIX: process.env.CODEGOD_PREFIX?.trim() ? base.CODEGOD_PREFIX : `eval-${Date.now().toString(36)}`,
    CODEGOD_WORKSPACE_ROOT: workspace,
    CODEGOD_HTTP_PORT: 0,
  });
  const config = redis.config;
  const llm = new LlmClient(compileOptions(config).llm, { logger });
  const model = await llm.modelFor('planner');
  const startedAt = new Date().toISOString();
  const runner = new SuiteRunner({
    config,
    logger,
    timeoutSec,
    onGoal: (r) => process.stderr.write(`eval: ${r.id}: ${r.outcome}, checks ${r.checksPassed}/${r.checks.length}, ${Math.round(r.ms / 1_000)} s\n`),
  });
  try {
    process.stderr.write(`eval: ${goals.length} goal(s) of suite ${suite.name} against ${model} at ${llm.url}; workspaces under ${workspace}\n`);
    await runner.start();
    const results = await runner.run(goals);
    const summary = summarize({
      suite: suite.name,
      startedAt,
      finishedAt: new Date().toISOString(),
      endpoint: llm.url,
      model,
      promptBudgetTokens: config.CODEGOD_PROMPT_BUDGET_TOKENS,
      goals: results,
    });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(`${[...renderSummary(summary), `summary: ${out}`].join('\n')}\n`);
    return 0;
  } finally {
    await runner.stop();
    await redis.server?.stop();
  }
}

runMain(main);
