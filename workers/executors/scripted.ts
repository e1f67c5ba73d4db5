import { setTimeout as sleep } from 'node:timers/promises';
import { TaskFailedError, type TaskContext, type TaskExecutor } from '../../shared/engine/task-executor.js';

/**
 * An executor driven by directives in the task description, for tests and benchmarks of the
 * engine without an LLM:
 *   `sleep=MS`            take MS milliseconds (honours cancellation)
 *   `fail`                fail every attempt
 *   `fail-attempts=N`     fail the first N attempts, then succeed
 *   `fatal`               fail for good at once (no further attempts)
 *   `hang`                never finish until aborted (cancel or timeout)
 * Anything else succeeds at once.
 */
export interface ScriptedDirectives {
  sleepMs: number;
  fail: boolean;
  failAttempts: number;
  fatal: boolean;
  hang: boolean;
}

const NUMBER_DIRECTIVE = /(?:^|\s)(sleep|fail-attempts)=(\d+)(?=\s|$)/g;
const FLAG_DIRECTIVE = /(?:^|\s)(fail|fatal|hang)(?=\s|$)/g;

export function parseDirectives(description: string): ScriptedDirectives {
  const d: ScriptedDirectives = { sleepMs: 0, fail: false, failAttempts: 0, fatal: false, hang: false };
  for (const [, name, value] of description.matchAll(NUMBER_DIRECTIVE)) {
    if (name === 'sleep') d.sleepMs = Number(value);
    else d.failAttempts = Number(value);
  }
  for (const [, name] of description.matchAll(FLAG_DIRECTIVE)) {
    if (name === 'fail') d.fail = true;
    else if (name === 'fatal') d.fatal = true;
    else d.hang = true;
  }
  return d;
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason ?? 'aborted'));
}

export class ScriptedExecutor implements TaskExecutor {
  async execute(ctx: TaskContext): Promise<unknown> {
    const d = parseDirectives(ctx.spec.description);
    const started = Date.now();
    if (d.hang) {
      await new Promise<never>((_, reject) => {
        if (ctx.signal.aborted) reject(abortError(ctx.signal));
        ctx.signal.addEventListener('abort', () => reject(abortError(ctx.signal)), { once: true });
      });
    }
    if (d.sleepMs > 0) {
      try {
        await sleep(d.sleepMs, undefined, { signal: ctx.signal });
      } catch {
        throw abortError(ctx.signal);
      }
    }
    if (d.fatal) throw new TaskFailedError(`task ${ctx.taskId} failed (fatal directive)`, false);
    if (d.fail || ctx.attempt <= d.failAttempts) throw new TaskFailedError(`task ${ctx.taskId} failed on attempt ${ctx.attempt}`);
    return { ok: true, ms: Date.now() - started };
  }
}
