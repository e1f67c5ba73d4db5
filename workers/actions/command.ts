import { z } from 'zod';
import { CodegodError } from '../../shared/domain/errors.js';
import type { RunResult } from '../../shared/sandbox/sandbox.js';
import { ArgParam, PathParam, defineAction, type ActionContext, type ActionDef, type ActionResult } from './action.js';

/**
 * Running commands on behalf of an agent, and the one way a command's result is shown to it.
 * Every action that runs something (pip, npm, test runners, docker) goes through
 * `runCommand`/`execCommand` here, so the output an agent reads always has the same shape:
 * the command line, how it ended, then its (sandbox-clipped) stdout and stderr.
 */

export interface CommandSpec {
  command: string;
  args?: readonly string[];
  /** Working directory relative to the workspace. */
  cwd?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
}

/** What Observe probes and actions get back: a finished command, or the sandbox's reason for refusing it. */
export type CommandOutcome = { result: RunResult } | { refused: string };

/** The part of an action's (or Observe's) context that running a command needs. */
export type CommandContext = Pick<ActionContext, 'sandbox' | 'signal'>;

/** Longest argument shown in a rendered command line; inline code can be long. */
const SHOWN_ARG_CHARS = 200;

/** Sandbox refusals (a path outside the workspace, a missing file, a forbidden command) are answers the agent can act on. */
export function sandboxRefusal(err: unknown): string | null {
  return err instanceof CodegodError && (err.code === 'SANDBOX_PATH' || err.code === 'SANDBOX_POLICY') ? err.message : null;
}

/**
 * `defineAction` for actions that touch the sandbox: a refused path or command becomes
 * `ok: false` with the sandbox's reason, so the action keeps the contract of never throwing
 * for an ordinary failure even when it is run outside the registry.
 */
export function defineSandboxAction<S extends z.ZodType>(def: ActionDef<S>): ActionDef<S> {
  return defineAction({
    ...def,
    async run(params, ctx) {
      try {
        return await def.run(params, ctx);
      } catch (err) {
        const reason = sandboxRefusal(err);
        if (reason === null) throw err;
        return { ok: false, output: reason };
      }
    },
  });
}

export async function execCommand(ctx: CommandContext, spec: CommandSpec): Promise<CommandOutcome> {
  try {
    const result = await ctx.sandbox.run({
      command: spec.command,
      args: [...(spec.args ?? [])],
      ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
      ...(spec.timeoutMs === undefined ? {} : { timeoutMs: spec.timeoutMs }),
      env: spec.env ?? {},
      signal: ctx.signal,
    });
    return { result };
  } catch (err) {
    const reason = sandboxRefusal(err);
    if (reason === null) throw err;
    return { refused: reason };
  }
}

export function commandSucceeded(result: RunResult): boolean {
  return result.exitCode === 0 && !result.timedOut && !result.cancelled;
}

function quoteArg(arg: string): string {
  const shown = arg.slice(0, SHOWN_ARG_CHARS);
  const quoted = /^[A-Za-z0-9_./:=@%+,^-]+$/.test(shown) ? shown : `'${shown.replaceAll("'", `'\\''`)}'`;
  return arg.length > SHOWN_ARG_CHARS ? `${quoted}…` : quoted;
}

/** A command as a shell would show it, for output and messages (not for running). */
export function formatCommandLine(command: string, args: readonly string[] = []): string {
  return [command, ...args].map(quoteArg).join(' ');
}

function howItEnded(result: RunResult): string {
  const took = `${result.durationMs} ms`;
  if (result.timedOut) return `timed out after ${took} (stopped)`;
  if (result.cancelled) return `cancelled after ${took}`;
  if (result.exitCode === null) return `killed by ${result.signal ?? 'a signal'} after ${took}`;
  return `exit code ${result.exitCode} in ${took}`;
}

/** The text an agent reads for a finished command. */
export function renderRunResult(spec: CommandSpec, result: RunResult): string {
  const lines = [`$ ${formatCommandLine(spec.command, spec.args)}${spec.cwd && spec.cwd !== '.' ? `  (in ${spec.cwd})` : ''}`, howItEnded(result)];
  if (result.droppedEnv.length > 0) lines.push(`withheld secret variables: ${result.droppedEnv.join(', ')}`);
  const stdout = result.stdout.trimEnd();
  const stderr = result.stderr.trimEnd();
  if (stdout) lines.push('--- stdout ---', stdout);
  if (stderr) lines.push('--- stderr ---', stderr);
  if (!stdout && !stderr) lines.push('(no output)');
  return lines.join('\n');
}

export function commandResult(spec: CommandSpec, outcome: CommandOutcome): ActionResult {
  if ('refused' in outcome) return { ok: false, output: `$ ${formatCommandLine(spec.command, spec.args)}\n${outcome.refused}`, exitCode: null };
  return { ok: commandSucceeded(outcome.result), output: renderRunResult(spec, outcome.result), exitCode: outcome.result.exitCode };
}

export async function runCommand(ctx: CommandContext, spec: CommandSpec): Promise<ActionResult> {
  return commandResult(spec, await execCommand(ctx, spec));
}

/** A program name or path; arguments go in `args`, since nothing here is run by a shell. */
export const ProgramParam = z
  .string()
  .min(1)
  .max(300)
  .regex(/^[^\s-]\S*$/, 'a program name or path without arguments (put them in args), not starting with -');

/** Arguments of one command, bounded in number and in total size. */
export const ArgsParam = z
  .array(ArgParam)
  .max(200)
  .refine((args) => args.reduce((n, a) => n + a.length, 0) <= 64_000, 'arguments total more than 64000 characters');

/** Longest time an agent may give one command. */
export const MAX_COMMAND_TIMEOUT_MS = 30 * 60_000;

export const runCommandAction = defineSandboxAction({
  name: 'run_command',
  description:
    'Run one program with arguments in the workspace (no shell: no pipes, redirects or &&); the sandbox policy may refuse it. Succeeds when it exits 0.',
  params: z.object({
    command: ProgramParam,
    args: ArgsParam.default([]),
    cwd: PathParam.optional(),
    timeout_ms: z.number().int().min(100).max(MAX_COMMAND_TIMEOUT_MS).optional(),
  }),
  run: ({ command, args, cwd, timeout_ms }, ctx) =>
    runCommand(ctx, { command, args, ...(cwd === undefined ? {} : { cwd }), ...(timeout_ms === undefined ? {} : { timeoutMs: timeout_ms }) }),
});
