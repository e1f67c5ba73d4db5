/**
 * Liveness probe for containers: `node dist/scripts/healthcheck.js [file] [maxAgeSeconds]`.
 *
 * Workers and the orchestrator touch CODEGOD_HEALTH_FILE on every heartbeat (5 s by
 * default). The probe exits 0 when the file was touched within maxAgeSeconds (default 30),
 * else 1 with one line saying why. Every failure exits 1, bad arguments included: Docker
 * reserves exit code 2 of a HEALTHCHECK command, and Kubernetes treats any non-zero alike.
 *
 * It reads the file's mtime and nothing else (no Redis, no config files), so it stays cheap
 * enough to run every few seconds and cannot fail because a dependency is slow.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ConfigSchema } from '../shared/config.js';

export const DEFAULT_MAX_AGE_SECONDS = 30;

export interface HealthVerdict {
  healthy: boolean;
  /** One line for the container runtime's health log. */
  message: string;
}

const HealthEnvSchema = ConfigSchema.pick({ CODEGOD_HEALTH_FILE: true });
const MaxAgeSchema = z.coerce.number().positive().max(86_400);

/** Judges the heartbeat file at `file` as of `nowMs`. */
export function checkHealthFile(file: string, maxAgeSeconds: number, nowMs: number = Date.now()): HealthVerdict {
  let mtimeMs: number;
  try {
    const stats = statSync(file);
    if (!stats.isFile()) return { healthy: false, message: `unhealthy: ${file} is not a regular file` };
    mtimeMs = stats.mtimeMs;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      return { healthy: false, message: `unhealthy: ${file} does not exist (no heartbeat yet: starting, or not running)` };
    }
    return { healthy: false, message: `unhealthy: cannot read ${file} (${code ?? 'error'})` };
  }
  // A clock step backwards makes the age negative; that is a fresh touch, not a failure.
  const ageSeconds = Math.max(0, (nowMs - mtimeMs) / 1000);
  const age = ageSeconds.toFixed(1);
  if (ageSeconds > maxAgeSeconds) {
    return { healthy: false, message: `unhealthy: last heartbeat ${age}s ago (limit ${maxAgeSeconds}s) in ${file}` };
  }
  return { healthy: true, message: `healthy: last heartbeat ${age}s ago in ${file}` };
}

/** Resolves the arguments, checks the file and returns the verdict; never throws. */
export function runHealthcheck(argv: readonly string[], env: NodeJS.ProcessEnv, nowMs: number = Date.now()): HealthVerdict {
  if (argv.length > 2) {
    return { healthy: false, message: 'unhealthy: usage: healthcheck [file] [maxAgeSeconds]' };
  }
  const [fileArg, maxAgeArg] = argv;
  const fromEnv = HealthEnvSchema.safeParse({ CODEGOD_HEALTH_FILE: env.CODEGOD_HEALTH_FILE?.trim() || undefined });
  const file = fileArg?.trim() || (fromEnv.success ? fromEnv.data.CODEGOD_HEALTH_FILE : undefined);
  if (!file) {
    return { healthy: false, message: 'unhealthy: no health file: pass its path or set CODEGOD_HEALTH_FILE' };
  }
  const maxAge = MaxAgeSchema.safeParse(maxAgeArg ?? DEFAULT_MAX_AGE_SECONDS);
  if (!maxAge.success) {
    return { healthy: false, message: `unhealthy: maxAgeSeconds must be a positive number of seconds, got '${maxAgeArg}'` };
  }
  return checkHealthFile(file, maxAge.data, nowMs);
}

function main(): void {
  const verdict = runHealthcheck(process.argv.slice(2), process.env);
  (verdict.healthy ? process.stdout : process.stderr).write(`${verdict.message}\n`);
  process.exitCode = verdict.healthy ? 0 : 1;
}

const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(resolve(invokedPath)).href) main();
