/**
 * Typed errors with a stable `code`. Expected failures (bad input, unreachable services)
 * are CodegodErrors: entry points print `message` as one line and exit with `exitCode`,
 * never a stack trace. Anything else is a bug and keeps its stack.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'REDIS_UNREACHABLE'
  | 'REDIS_FULL'
  | 'PLAN_INVALID'
  | 'GOAL_INVALID'
  | 'BUILD_NOT_FOUND'
  | 'TASK_NOT_FOUND'
  | 'BUILD_STATE'
  | 'DATA_CORRUPT'
  | 'MEMORY_INVALID'
  | 'MEMORY_NOT_FOUND'
  | 'MEMORY_CONFLICT'
  | 'CHECKPOINT_NOT_FOUND'
  | 'KNOWLEDGE_INVALID'
  | 'KNOWLEDGE_DENIED'
  | 'GROW_REJECTED'
  | 'TASK_ABORTED'
  | 'LLM_UNREACHABLE'
  | 'LLM_MODEL_UNKNOWN'
  | 'LLM_BAD_RESPONSE'
  | 'LLM_TIMEOUT'
  | 'LLM_REQUEST_FAILED'
  | 'LLM_STRUCTURED_OUTPUT_REFUSED'
  | 'LLM_BUDGET'
  | 'SANDBOX_PATH'
  | 'SANDBOX_POLICY'
  | 'SANDBOX_RUNNER'
  | 'SANDBOX_UNAVAILABLE'
  | 'ACTION_INVALID'
  | 'USAGE'
  | 'REQUEST_INVALID'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'UNAVAILABLE'
  | 'HTTP_LISTEN';

export class CodegodError extends Error {
  readonly code: ErrorCode;
  /** Process exit code an entry point uses when this error ends it. */
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = options?.exitCode ?? 1;
  }
}

export class ConfigError extends CodegodError {
  constructor(readonly problems: string[]) {
    super('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, { exitCode: 2 });
  }
}

export class RedisUnreachableError extends CodegodError {
  constructor(url: string, detail: string) {
    super(
      'REDIS_UNREACHABLE',
      `cannot reach Redis at ${url} (${detail}); start redis-server or set REDIS_URL`,
      { exitCode: 3 },
    );
  }
}

/**
 * Redis refused a write because it reached maxmemory (`OOM command not allowed`): the
 * deployment runs it with `noeviction`, so nothing is dropped, but nothing new fits either.
 */
export class RedisFullError extends CodegodError {
  constructor(cause?: unknown) {
    super('REDIS_FULL', 'Redis is full (it reached maxmemory and refuses writes): remove ended builds with codegod prune, or give Redis more memory (REDIS_MAXMEMORY)', {
      exitCode: 3,
      ...(cause === undefined ? {} : { cause }),
    });
  }
}

/** Whether `err` is Redis refusing a write at maxmemory (alone, or inside a transaction it aborted). */
export function isRedisFull(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const previous = (err as Error & { previousErrors?: unknown[] }).previousErrors ?? [];
  return /^OOM command not allowed/.test(err.message) || previous.some(isRedisFull);
}

export class PlanValidationError extends CodegodError {
  constructor(readonly problems: string[]) {
    super('PLAN_INVALID', `invalid plan: ${problems.join('; ')}`, { exitCode: 2 });
  }
}

export class DataCorruptError extends CodegodError {
  constructor(what: string, detail: string) {
    super('DATA_CORRUPT', `malformed data in Redis at ${what}: ${detail}`);
  }
}

export class NotFoundError extends CodegodError {
  constructor(kind: 'build' | 'task', id: string) {
    super(kind === 'build' ? 'BUILD_NOT_FOUND' : 'TASK_NOT_FOUND', `${kind} ${id} not found`, { exitCode: 4 });
  }
}

/** Renders an unknown thrown value as one line, for logs and task failure reasons. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.name;
  return String(err).split('\n')[0] ?? 'unknown error';
}
