import { InvalidArgumentError } from 'commander';
import { BUILD_ID_PATTERN } from '../../shared/domain/build.js';
import { CodegodError } from '../../shared/domain/errors.js';
import { TASK_ID_PATTERN } from '../../shared/domain/plan.js';

/**
 * Argument parsers for commander. A parser throws InvalidArgumentError, which commander turns
 * into one usage line (exit 2); checks that need more than one argument throw `usage`.
 */
export function usage(message: string): CodegodError {
  return new CodegodError('USAGE', message, { exitCode: 2 });
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of at least 1');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a whole number of at least 0');
  return n;
}

/** Seconds, fractions allowed (`--timeout 0.5`), returned in milliseconds. */
export function secondsToMs(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 365 * 24 * 3_600) {
    throw new InvalidArgumentError('must be a number of seconds greater than 0');
  }
  return Math.round(n * 1_000);
}

export function buildIdArg(value: string): string {
  if (!BUILD_ID_PATTERN.test(value)) throw new InvalidArgumentError('not a build id (they look like b-m3x0k2a1-4f2a9c)');
  return value;
}

export function taskIdArg(value: string): string {
  if (!TASK_ID_PATTERN.test(value) || value.length > 48) throw new InvalidArgumentError('not a task id (letters, digits, _ and -)');
  return value;
}
