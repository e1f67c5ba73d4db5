import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * `json`: pino's structured lines, for services (workers, orchestrator) whose logs a
 * collector reads. `human`: one plain line per record (`codegod: warning: …`), for people at
 * a terminal — the CLI's default, so its own output is never interleaved with JSON.
 */
export type LogFormat = 'json' | 'human';
export const LOG_FORMATS: readonly LogFormat[] = ['human', 'json'];

export interface LoggerOptions {
  format?: LogFormat;
  /** Where lines go (default: stderr; stdout belongs to CLI output). */
  write?: (line: string) => void;
}

const LEVEL_WORDS: Readonly<Record<number, string>> = { 10: 'trace: ', 20: 'debug: ', 30: '', 40: 'warning: ', 50: 'error: ', 60: 'error: ' };
/** Fields every record carries that a person does not need to read. */
const QUIET_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'service', 'component', 'role', 'agentId']);
const FIELD_CHARS = 200;

function fieldValue(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const line = (text ?? String(value)).replace(/\s*[\r\n]+\s*/g, ' ');
  return line.length > FIELD_CHARS ? `${line.slice(0, FIELD_CHARS - 1)}…` : line;
}

/**
 * One pino record as one line a person reads: `codegod: warning: invalid LLM reply
 * (buildId=b-…, attempt=1, error=…)`. Records that are not JSON pass through unchanged.
 */
export function humanLine(record: string): string {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(record) as Record<string, unknown>;
  } catch {
    return record.endsWith('\n') ? record : `${record}\n`;
  }
  const level = LEVEL_WORDS[Number(obj.level)] ?? '';
  const msg = fieldValue(obj.msg ?? '');
  const fields = Object.entries(obj)
    .filter(([k, v]) => !QUIET_FIELDS.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${fieldValue(v)}`);
  return `codegod: ${level}${msg}${fields.length ? ` (${fields.join(', ')})` : ''}\n`;
}

/** Structured logs; callers bind `buildId`, `taskId`, `agentId` with `logger.child({...})`. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}, options: LoggerOptions = {}): Logger {
  const config = {
    level,
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['*.password', '*.apiKey', '*.token', 'config.REDIS_PASSWORD', 'config.LLM_API_KEY'], censor: '[redacted]' },
  };
  const write = options.write;
  if (options.format === 'human') {
    const out = write ?? ((line: string) => process.stderr.write(line));
    return pino(config, { write: (record: string) => out(humanLine(record)) });
  }
  return pino(config, write ? { write } : pino.destination({ fd: 2, sync: false }));
}
