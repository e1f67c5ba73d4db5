import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../shared/config.js';

/** A unique key prefix, so test files sharing one Redis never see each other's keys. */
export function uniquePrefix(label = 't'): string {
  return `${label}${randomBytes(4).toString('hex')}`;
}

/** Config for a test: the harness's Redis, a fresh prefix, quiet logs, and any overrides. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    REDIS_URL: inject('redisUrl'),
    CODEGOD_PREFIX: uniquePrefix(),
    LOG_LEVEL: 'silent',
    // Orchestrators of parallel test files must not fight over the default port.
    CODEGOD_HTTP_PORT: '0',
    ...overrides,
  });
}

/** Environment for a child process built from a Config (only the codegod variables). */
export function configEnv(config: Config, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    if (v === undefined) continue;
    // A setting that is switched off (CODEGOD_RETENTION) reads back as `off`.
    if (v === null) {
      env[k] = 'off';
      continue;
    }
    env[k] = typeof v === 'boolean' ? String(v) : String(v);
  }
  return { ...env, ...extra };
}
