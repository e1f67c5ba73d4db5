import type { Response } from 'express';
import type { z } from 'zod';
import { CodegodError, type ErrorCode } from '../../shared/domain/errors.js';
import type { Logger } from '../../shared/logger.js';

/**
 * How the HTTP server answers a failure to a caller that wants JSON (the API, /metrics,
 * Bull Board's calls): `{ error: { code, message } }` with the status its code calls for;
 * and how a request's input is checked, so a bad one fails the same way.
 */
const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  GOAL_INVALID: 400,
  REQUEST_INVALID: 400,
  USAGE: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  BUILD_NOT_FOUND: 404,
  TASK_NOT_FOUND: 404,
  NOT_FOUND: 404,
  BUILD_STATE: 409,
  GROW_REJECTED: 409,
  REDIS_UNREACHABLE: 503,
  REDIS_FULL: 507,
  UNAVAILABLE: 503,
};

export function httpStatus(code: ErrorCode): number {
  return STATUS_OF[code] ?? 500;
}

export interface ApiErrorBody {
  error: { code: ErrorCode | 'INTERNAL'; message: string };
}

/** The error shape every JSON endpoint answers with. Unexpected errors keep their details in the log only. */
export function sendError(res: Response, err: unknown, logger: Logger): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  let status = 500;
  let body: ApiErrorBody;
  if (err instanceof CodegodError) {
    status = httpStatus(err.code);
    body = { error: { code: err.code, message: err.message } };
  } else if (isBodyParserError(err)) {
    status = err.status;
    body = { error: { code: 'REQUEST_INVALID', message: bodyParserMessage(err) } };
  } else {
    logger.error({ err }, 'unexpected error in the HTTP API');
    body = { error: { code: 'INTERNAL', message: 'internal error; the orchestrator log has the details' } };
  }
  res.status(status).json(body);
}

function isBodyParserError(err: unknown): err is { status: number; type: string } {
  if (typeof err !== 'object' || err === null) return false;
  const { status, type } = err as { status?: unknown; type?: unknown };
  return typeof status === 'number' && status >= 400 && status < 500 && typeof type === 'string';
}

function bodyParserMessage(err: { type: string }): string {
  if (err.type === 'entity.parse.failed') return 'the request body is not valid JSON';
  if (err.type === 'entity.too.large') return 'the request body is too large';
  return `the request body could not be read (${err.type})`;
}

/** Parses `value` with `schema` or throws REQUEST_INVALID listing every problem. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`);
  throw new CodegodError('REQUEST_INVALID', `invalid ${what}: ${problems.join('; ')}`);
}
