import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout belongs to CLI output). Callers bind `buildId`,
 * `taskId`, `agentId` with `logger.child({...})`.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid, ...bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['*.password', '*.apiKey', '*.token', 'config.REDIS_PASSWORD', 'config.LLM_API_KEY'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
