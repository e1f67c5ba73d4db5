import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { z } from 'zod';
import { loadConfig } from '../../shared/config.js';
import { CodegodError, isRedisFull, RedisFullError } from '../../shared/domain/errors.js';
import { LOG_FORMATS, type LogFormat } from '../../shared/logger.js';
import { MEMORY_ROLES } from '../../shared/memory/schema.js';
import { runMain } from '../../shared/process.js';
import { ROLES } from '../../shared/domain/roles.js';
import type { Programs } from '../../shared/programs.js';
import { scrubProcessEnv } from '../../shared/sandbox/sandbox.js';
import { buildIdArg, nonNegativeInt, positiveInt, secondsToMs, taskIdArg } from './args.js';
import { buildCommand, type BuildOptions } from './build.js';
import { paint } from './colour.js';
import { CliContext, processIo, type CliIo } from './context.js';
import { backupCommand, restoreBackupCommand } from './backup.js';
import { cancelCommand, retryCommand } from './control.js';
import { DEMO_GOAL, demoCommand, type DemoOptions } from './demo.js';
import { doctorCommand } from './doctor.js';
import { EXIT } from './exit-codes.js';
import { checkpointCommand, exportCommand, importCommand, listCommand, restoreCommand, wipeCommand, type WipeOptions } from './memory.js';
import { durationArg, pruneCommand, type PruneOptions } from './prune.js';
import { statusCommand, type StatusOptions } from './status.js';
import { traceCommand, type TraceOptions } from './trace.js';

/**
 * The `codegod` command. Every command prints for people on stdout (or one JSON document with
 * `--json`), diagnostics on stderr, and ends with an exit code from cli/exit-codes.ts; an
 * expected failure is one line `codegod: <what is wrong and what to do>`, never a stack.
 */

/** The package's root: this module is <root>/orchestrator/cli/main.ts, or <root>/dist/orchestrator/cli/main.js once compiled. */
function packageRoot(): string {
  const parent = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
  return basename(parent) === 'dist' ? dirname(parent) : parent;
}

function packageVersion(): string {
  try {
    const parsed = z.object({ version: z.string() }).safeParse(JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')));
    return parsed.success ? parsed.data.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

type Json = { json?: boolean };

/** Where a command's exit code lands; `undefined` means a service now runs until signalled. */
interface Outcome {
  code: number | undefined;
}

function createProgram(ctx: CliContext, outcome: Outcome): Command {
  const done = (code: number | undefined) => {
    outcome.code = code;
  };
  const program = new Command('codegod')
    .description('Turn one sentence into a working project: an LLM plans a DAG of tasks that role workers build through Redis.')
    .version(packageVersion(), '-V, --version')
    .addOption(new Option('--log-format <format>', 'logs of the CLI and what it runs in this process: human lines or JSON').choices(LOG_FORMATS).default('human'))
    .exitOverride()
    .configureOutput({
      // Commander echoes arguments back (an unknown option, a bad value): painted like every line.
      writeOut: (s) => ctx.io.stdout.write(paint(s)),
      writeErr: (s) => ctx.io.stderr.write(paint(s)),
      // Commander's messages may span lines (a "Did you mean" hint): one line, like every other error.
      outputError: (s, write) => write(`codegod: ${s.replace(/^error:\s*/, '').trim().replace(/\s*\n\s*/g, ' ')}\n`),
    })
    .addHelpText(
      'after',
      [
        '',
        '`codegod --build "goal" [options]` is the same as `codegod build "goal" [options]`.',
        '',
        'Exit codes:',
        '  0 ok · 1 build failed (or a doctor check) · 2 bad input · 3 Redis unreachable or full · 4 not found',
        '  5 LLM unreachable or model unknown · 6 plan invalid · 7 token budget spent · 8 cancelled',
        '  124 --timeout reached · 130 interrupted (the build goes on)',
      ].join('\n'),
    )
    .hook('preAction', () => {
      ctx.logFormat = program.opts<{ logFormat: LogFormat }>().logFormat;
    });

  program
    .command('build')
    .description('submit a goal, follow the build live and print its report')
    .argument('<goal>', 'what to build, in one sentence')
    .option('--json', 'print the final report as one JSON object on stdout (progress goes to stderr)')
    .addOption(new Option('--detach', 'print the build id and return at once').conflicts(['timeout', 'local']))
    .option('--timeout <seconds>', 'stop following after this long (exit 124); the build goes on', secondsToMs)
    .option('--max-tasks <n>', 'most tasks the build may have (default CODEGOD_MAX_TASKS_PER_BUILD)', positiveInt)
    .option('--budget-tokens <n>', 'stop the build once its LLM calls used this many tokens (0: no limit)', nonNegativeInt)
    .option('--model <name>', 'LLM model for this build')
    .option('--local', 'run the orchestrator and one worker per role in this process (and a private Redis when none answers)')
    .option('--workspace <dir>', 'with --local: the workspace root')
    .action(async (goal: string, opts: BuildOptions) => done(await buildCommand(ctx, goal, opts)));

  program
    .command('demo')
    .description(`try codegod with no GPU: a local build of "${DEMO_GOAL}" against a bundled scripted LLM, started in this process`)
    .option('--workspace <dir>', 'the workspace root (default CODEGOD_WORKSPACE_ROOT, ./workspaces)')
    .option('--json', 'print the final report as one JSON object on stdout (progress goes to stderr)')
    .option('--timeout <seconds>', 'stop after this long (exit 124)', secondsToMs)
    .action(async (opts: DemoOptions) => done(await demoCommand(ctx, opts)));

  program
    .command('status')
    .description('recent builds, queues and agents; or one build with its DAG')
    .argument('[build]', 'a build id', buildIdArg)
    .option('--json', 'one JSON document')
    .option('--limit <n>', 'how many recent builds to list', positiveInt, 10)
    .option('--follow', 'with a build: follow it live until it ends, like build does')
    .option('--timeout <seconds>', 'with --follow: stop following after this long (exit 124)', secondsToMs)
    .action(async (buildId: string | undefined, opts: StatusOptions) => done(await statusCommand(ctx, buildId, opts)));

  program
    .command('trace')
    .description("a task's observe → reason → plan → act → validate trace; without a task, every task briefly")
    .argument('<build>', 'a build id', buildIdArg)
    .argument('[task]', 'a task id', taskIdArg)
    .option('--json', 'one JSON document')
    .option('--full', 'whole outputs instead of their last lines')
    .action(async (buildId: string, taskId: string | undefined, opts: TraceOptions) => done(await traceCommand(ctx, buildId, taskId, opts)));

  program
    .command('cancel')
    .description('cancel a build: open tasks are cancelled, running ones are told to stop')
    .argument('<build>', 'a build id', buildIdArg)
    .option('--json', 'one JSON document')
    .action(async (buildId: string, opts: Json) => done(await cancelCommand(ctx, buildId, opts)));

  program
    .command('retry')
    .description('run a failed task again (and the tasks it skipped); without a task, every failed task')
    .argument('<build>', 'a build id', buildIdArg)
    .argument('[task]', 'a task id', taskIdArg)
    .option('--json', 'one JSON document')
    .action(async (buildId: string, taskId: string | undefined, opts: Json) => done(await retryCommand(ctx, buildId, taskId, opts)));

  program
    .command('wipe')
    .description("wipe agents' working memory (current and completed tasks, observations, reasoning); role, knowledge and checkpoints stay")
    .option('--agent <id>', 'one agent')
    .addOption(new Option('--role <role>', 'every agent of a role').choices(MEMORY_ROLES))
    .option('--all', 'every agent')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .option('--json', 'one JSON document')
    .action(async (opts: WipeOptions) => done(await wipeCommand(ctx, opts)));

  const memory = program.command('memory').description("agents' memory: checkpoints, restore, export and import");
  memory
    .command('checkpoint')
    .description("save a snapshot of an agent's memory")
    .argument('<agent>', 'agent id')
    .argument('[name]', 'checkpoint name (default: the time now)')
    .option('--json', 'one JSON document')
    .action(async (agentId: string, name: string | undefined, opts: Json) => done(await checkpointCommand(ctx, agentId, name, opts)));
  memory
    .command('list')
    .description("agents with memory; with an agent, its checkpoints")
    .argument('[agent]', 'agent id')
    .option('--json', 'one JSON document')
    .action(async (agentId: string | undefined, opts: Json) => done(await listCommand(ctx, agentId, opts)));
  memory
    .command('restore')
    .description("make a checkpoint the agent's memory again")
    .argument('<agent>', 'agent id')
    .argument('<name>', 'checkpoint name')
    .option('--json', 'one JSON document')
    .action(async (agentId: string, name: string, opts: Json) => done(await restoreCommand(ctx, agentId, name, opts)));
  memory
    .command('export')
    .description('write every memory and checkpoint to a JSON file (- for stdout)')
    .argument('<file>', 'output file')
    .action(async (file: string) => done(await exportCommand(ctx, file)));
  memory
    .command('import')
    .description('load a file made by export: adds what is missing, or with --replace overwrites the agents it lists')
    .argument('<file>', 'input file')
    .option('--replace', 'each agent in the file gets exactly its memory and checkpoints from it')
    .option('--json', 'one JSON document')
    .action(async (file: string, opts: { replace?: boolean } & Json) => done(await importCommand(ctx, file, opts)));

  program
    .command('prune')
    .description('remove ended builds completely: keys, streams and BullMQ jobs (running builds are never touched)')
    .addOption(new Option('--older-than <duration>', 'only builds that ended longer ago than this, e.g. 7d, 12h (default CODEGOD_RETENTION, else 7d)').argParser(durationArg))
    .option('--keep <n>', 'keep the n most recently ended builds whatever their age', nonNegativeInt)
    .option('--workspaces', "remove the builds' workspaces too")
    .option('--dry-run', 'show what would be removed, and how much Redis memory each build holds')
    .option('--json', 'one JSON document')
    .action(async (opts: PruneOptions) => done(await pruneCommand(ctx, opts)));

  program
    .command('backup')
    .description('write a consistent snapshot of Redis (builds, history, queues, agent memory) and every workspace into one archive')
    .argument('<file>', 'the archive (.tar.gz) to write; - for stdout')
    .option('--json', 'a JSON summary (on stderr when the archive goes to stdout)')
    .action(async (file: string, opts: Json) => done(await backupCommand(ctx, file, opts)));

  program
    .command('restore')
    .description('bring back a backup into an empty stack: builds, history, memory and workspaces')
    .argument('<file>', 'an archive made by codegod backup; - for stdin')
    .option('--json', 'one JSON document')
    .action(async (file: string, opts: Json) => done(await restoreBackupCommand(ctx, file, opts)));

  program
    .command('doctor')
    .description('check Redis, the LLM, workers, the orchestrator and the workspace; exit 1 when a check fails')
    .option('--json', 'one JSON document')
    .action(async (opts: Json) => done(await doctorCommand(ctx, opts)));

  program
    .command('worker')
    .description('run the worker of one role (until SIGTERM/SIGINT)')
    .addOption(new Option('--role <role>', 'the role (default AGENT_ROLE)').choices(ROLES))
    .action(async (opts: { role?: string }) => {
      const config = loadConfig(ctx.io.env);
      // As workers/main.ts: secrets leave the environment before anything can inherit it.
      scrubProcessEnv();
      await (await ctx.programs.workers()).runWorker(config, opts.role);
      done(undefined);
    });

  program
    .command('orchestrator')
    .description('run the orchestrator: plans goals and keeps builds moving (until SIGTERM/SIGINT)')
    .action(async () => {
      await (await ctx.programs.orchestrator()).runOrchestrator(loadConfig(ctx.io.env));
      done(undefined);
    });

  return program;
}

const COMMANDS = new Set(['build', 'demo', 'prune', 'backup', 'restore', 'status', 'trace', 'cancel', 'retry', 'wipe', 'memory', 'doctor', 'worker', 'orchestrator', 'help']);

/**
 * `codegod --build "goal" [options]` is the product's spelling of `codegod build "goal"
 * [options]`; it is rewritten before parsing, so both take exactly the same options.
 */
export function rewriteBuildOption(argv: readonly string[]): string[] {
  if (argv.length === 0 || COMMANDS.has(argv[0]!)) return [...argv];
  const i = argv.findIndex((a) => a === '--build' || a.startsWith('--build='));
  if (i < 0) return [...argv];
  const rest = (skip: number) => [...argv.slice(0, i), ...argv.slice(i + skip)];
  const token = argv[i]!;
  if (token.startsWith('--build=')) return ['build', token.slice('--build='.length), ...rest(1)];
  // Without a goal after it, `build` reports the missing argument itself.
  if (i + 1 >= argv.length) return ['build', ...rest(1)];
  return ['build', argv[i + 1]!, ...rest(2)];
}

function commanderExit(err: CommanderError): number {
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.OK;
  return EXIT.USAGE;
}

/**
 * Runs one invocation. Returns its exit code, or undefined when it started a long-running
 * service (worker, orchestrator) that ends on a signal. CodegodErrors become one line on
 * stderr and their exit code; anything else is a bug and is thrown.
 */
export async function run(argv: readonly string[], io: CliIo, programs: Programs): Promise<number | undefined> {
  const ctx = new CliContext(io, programs);
  const outcome: Outcome = { code: EXIT.OK };
  try {
    await createProgram(ctx, outcome).parseAsync(rewriteBuildOption(argv), { from: 'user' });
    return outcome.code;
  } catch (err) {
    if (err instanceof CommanderError) return commanderExit(err);
    // Redis at maxmemory refuses writes wherever a command makes one.
    const expected = isRedisFull(err) ? new RedisFullError(err) : err;
    if (expected instanceof CodegodError) {
      ctx.err(`codegod: ${expected.message}`);
      return expected.exitCode;
    }
    throw err;
  }
}

/**
 * A reader that went away (`codegod status | head -1`) is not an error: what it did not read
 * was not wanted. The process ends at once, quietly, with exit code 0.
 */
function endQuietlyOnBrokenPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  }
}

/** The `codegod` process: bin/codegod.js calls this with the programs it may launch. */
export function main(programs: Programs): void {
  endQuietlyOnBrokenPipe();
  runMain(async () => {
    const code = await run(process.argv.slice(2), processIo(), programs);
    if (code === undefined) return;
    // Every connection is closed by now; should a library still hold a handle open, the
    // process ends anyway rather than hang after its work is done.
    setTimeout(() => process.exit(code), 1_000).unref();
    return code;
  });
}
