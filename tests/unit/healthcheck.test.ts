import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHealthFile, DEFAULT_MAX_AGE_SECONDS, runHealthcheck } from '../../scripts/healthcheck.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const SCRIPT = join(ROOT, 'scripts/healthcheck.ts');

let dir: string;
let file: string;

/** Writes the heartbeat file with an mtime `ageSeconds` before `now`. */
function touch(path: string, ageSeconds: number, now = Date.now()): void {
  writeFileSync(path, '');
  const when = new Date(now - ageSeconds * 1000);
  utimesSync(path, when, when);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'codegod-health-'));
  file = join(dir, 'health');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('checkHealthFile', () => {
  it('is healthy when the file was touched within the limit', () => {
    const now = Date.now();
    touch(file, 5, now);
    const verdict = checkHealthFile(file, 30, now);
    expect(verdict.healthy).toBe(true);
    expect(verdict.message).toMatch(/^healthy: last heartbeat 5\.0s ago/);
  });

  it('is unhealthy when the last touch is older than the limit', () => {
    const now = Date.now();
    touch(file, 31, now);
    const verdict = checkHealthFile(file, 30, now);
    expect(verdict).toEqual({
      healthy: false,
      message: `unhealthy: last heartbeat 31.0s ago (limit 30s) in ${file}`,
    });
  });

  it('flips from healthy to unhealthy as the limit passes', () => {
    const now = Date.now();
    touch(file, 10, now);
    expect(checkHealthFile(file, 10.5, now).healthy).toBe(true);
    expect(checkHealthFile(file, 10.5, now + 1_000).healthy).toBe(false);
  });

  it('treats an mtime in the future (clock stepped back) as fresh', () => {
    const now = Date.now();
    touch(file, -60, now);
    expect(checkHealthFile(file, 30, now).healthy).toBe(true);
  });

  it('is unhealthy with a clear line when the file is missing', () => {
    const missing = join(dir, 'never-written');
    const verdict = checkHealthFile(missing, 30);
    expect(verdict.healthy).toBe(false);
    expect(verdict.message).toBe(`unhealthy: ${missing} does not exist (no heartbeat yet: starting, or not running)`);
  });

  it('is unhealthy when the path is a directory', () => {
    const sub = join(dir, 'a-directory');
    mkdirSync(sub, { recursive: true });
    expect(checkHealthFile(sub, 30)).toEqual({ healthy: false, message: `unhealthy: ${sub} is not a regular file` });
  });
});

describe('runHealthcheck arguments', () => {
  it('takes the file from CODEGOD_HEALTH_FILE and the default limit when no arguments are given', () => {
    const now = Date.now();
    touch(file, DEFAULT_MAX_AGE_SECONDS - 1, now);
    expect(runHealthcheck([], { CODEGOD_HEALTH_FILE: file }, now).healthy).toBe(true);
    touch(file, DEFAULT_MAX_AGE_SECONDS + 1, now);
    expect(runHealthcheck([], { CODEGOD_HEALTH_FILE: file }, now).healthy).toBe(false);
  });

  it('prefers the file argument over the environment and honours maxAgeSeconds', () => {
    const now = Date.now();
    touch(file, 50, now);
    const env = { CODEGOD_HEALTH_FILE: join(dir, 'other') };
    expect(runHealthcheck([file, '60'], env, now).healthy).toBe(true);
    expect(runHealthcheck([file, '40'], env, now).healthy).toBe(false);
  });

  it('fails clearly without any file', () => {
    expect(runHealthcheck([], {})).toEqual({
      healthy: false,
      message: 'unhealthy: no health file: pass its path or set CODEGOD_HEALTH_FILE',
    });
    expect(runHealthcheck([], { CODEGOD_HEALTH_FILE: '  ' }).healthy).toBe(false);
  });

  it('rejects a max age that is not a positive number', () => {
    touch(file, 0);
    for (const bad of ['abc', '0', '-5', '']) {
      const verdict = runHealthcheck([file, bad], {});
      expect(verdict.healthy).toBe(false);
      expect(verdict.message).toContain('maxAgeSeconds must be a positive number');
    }
  });

  it('rejects extra arguments', () => {
    expect(runHealthcheck([file, '30', 'extra'], {}).message).toContain('usage: healthcheck');
  });
});

describe('healthcheck program', () => {
  async function program(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(TSX, [SCRIPT, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('exits 0 with one line on stdout when fresh', async () => {
    touch(file, 1);
    const result = await program([], { CODEGOD_HEALTH_FILE: file });
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(result.stdout).toMatch(/^healthy: /);
  });

  it('exits 1 with one line on stderr when stale, never 2 (reserved by Docker)', async () => {
    touch(file, 120);
    const stale = await program([file, '30'], {});
    expect(stale.code).toBe(1);
    const lines = stale.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^unhealthy: last heartbeat 12\d\.\ds ago \(limit 30s\) in /);

    const badArgs = await program([file, 'soon'], {});
    expect(badArgs.code).toBe(1);
    expect(badArgs.stderr.trim().split('\n')).toHaveLength(1);
  });
});
