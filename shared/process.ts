import { CodegodError, errorMessage } from './domain/errors.js';
import { terminalSafe } from './terminal-safe.js';

/**
 * Runs an entry point: expected failures (CodegodError) end the process with one line on
 * stderr and the error's exit code; anything else is a bug and keeps its stack.
 */
export function runMain(main: () => Promise<number | void>): void {
  // Through a promise, so that a main that throws before its first await (a bad setting
  // read while building its arguments) ends the same way.
  Promise.resolve()
    .then(main)
    .then(
      (code) => {
        if (typeof code === 'number') process.exitCode = code;
      },
      (err: unknown) => {
        if (err instanceof CodegodError) {
          process.stderr.write(`codegod: ${terminalSafe(err.message)}\n`);
          process.exitCode = err.exitCode;
        } else {
          process.stderr.write(terminalSafe(`codegod: unexpected error: ${errorMessage(err)}\n${err instanceof Error ? (err.stack ?? '') : ''}\n`));
          process.exitCode = 70;
        }
      },
    );
}

/**
 * Calls `stop` once on the first SIGTERM/SIGINT; a second signal exits at once, and so does
 * a `stop` still running after `limitMs` (a Redis that does not answer must not keep a
 * stopping process alive: what it held is re-run elsewhere once its locks expire).
 */
export function onShutdown(stop: (signal: NodeJS.Signals) => Promise<void>, limitMs?: number): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    if (limitMs !== undefined) setTimeout(() => process.exit(1), limitMs).unref();
    void stop(signal).finally(() => process.exit(process.exitCode ?? 0));
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/**
 * Fault injection for crash tests: with CODEGOD_CRASH_AT=`point` (or `point:N`, the Nth
 * time), the process kills itself with SIGKILL when it reaches that point — the same as a
 * power cut at the worst moment. Unset in production, where this is one comparison.
 */
export function crashPoints(spec: string | undefined): (point: string) => void {
  if (!spec) return () => undefined;
  const [name, nth] = spec.split(':');
  let left = Number(nth ?? 1);
  return (point) => {
    if (point === name && --left <= 0) process.kill(process.pid, 'SIGKILL');
  };
}

