import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/domain/errors.js';
import { loadConfig } from '../../shared/config.js';
import { createKeys } from '../../shared/redis/keys.js';

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    expect(c.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(c.CODEGOD_PREFIX).toBe('codegod');
    expect(c.WORKER_CONCURRENCY).toBe(4);
    expect(c.LOG_LEVEL).toBe('info');
  });

  it('reports one readable line per bad variable', () => {
    try {
      loadConfig({ REDIS_URL: 'http://x', WORKER_CONCURRENCY: 'many', AGENT_ROLE: 'chef', LOG_LEVEL: 'LOUD' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.problems).toHaveLength(4);
      expect(e.problems.find((p) => p.startsWith('REDIS_URL'))).toBe("REDIS_URL: must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379 or redis://:password@redis:6379 (got 'http://x')");
      expect(e.problems.find((p) => p.startsWith('WORKER_CONCURRENCY'))).toMatch(/got 'many'/);
      expect(e.message.split('\n')).toHaveLength(1);
      expect(e.exitCode).toBe(2);
    }
  });

  it('accepts the seed spelling LOG_LEVEL=INFO and treats blank variables as unset', () => {
    const c = loadConfig({ LOG_LEVEL: 'DEBUG', WORKER_CONCURRENCY: '  ' });
    expect(c.LOG_LEVEL).toBe('debug');
    expect(c.WORKER_CONCURRENCY).toBe(4);
  });

  it('reads secrets from *_FILE so they need not sit in the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'codegod-cfg-'));
    writeFileSync(join(dir, 'pw'), 's3cret\n');
    expect(loadConfig({ REDIS_PASSWORD_FILE: join(dir, 'pw') }).REDIS_PASSWORD).toBe('s3cret');
    expect(() => loadConfig({ LLM_API_KEY_FILE: join(dir, 'missing') })).toThrow(/LLM_API_KEY_FILE: cannot read .*missing \(ENOENT\)/);
  });

  it('keeps every key of one build under one hash tag (Redis Cluster)', () => {
    const k = createKeys('codegod');
    const tag = (key: string) => /\{([^}]*)\}/.exec(key)?.[1];
    const b = 'b-abc123-ff00aa';
    for (const key of [k.build(b), k.buildStates(b), k.task(b, 't1'), k.events(b), k.audit(b), k.knowledge(b), k.loopState(b, 't1')]) {
      expect(tag(key)).toBe(b);
    }
    expect(k.agentsStatus).toBe('codegod:agents:status');
    expect(k.metricsTasks).toBe('codegod:metrics:tasks');
  });
});
