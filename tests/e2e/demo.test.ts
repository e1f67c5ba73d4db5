import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

/**
 * `codegod demo`, as a new user runs it: the real binary, no LLM server of its own and no
 * GPU, twice in a row in one directory. Each run is a whole local build against the bundled
 * scripted LLM; the agents' files and commands are real.
 */
const cwd = mkdtempSync(join(tmpdir(), 'codegod-demo-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('codegod demo', () => {
  it('succeeds twice in a row on one machine, each build in a fresh workspace', async () => {
    const env = { REDIS_URL: inject('redisUrl'), CODEGOD_HTTP_PORT: '0' };
    const ids: string[] = [];
    for (let run = 1; run <= 2; run++) {
      const r = await runCli(['demo'], env, cwd);
      expect(r.code, `run ${run}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toMatch(/^codegod: demo: the LLM is a scripted stand-in at http:\/\/127\.0\.0\.1:\d+\/v1/m);
      const id = /^build (b-\S+) succeeded in/m.exec(r.stdout)?.[1];
      expect(id, r.stdout).toBeDefined();
      expect(r.stdout).toMatch(/test-api-rerun-\S+\s+testing\s+succeeded/);
      expect(`${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trimStart().startsWith('{'))).toEqual([]);
      ids.push(id!);
    }
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) expect(readdirSync(join(cwd, 'workspaces', id))).toEqual(expect.arrayContaining(['backend', 'frontend', 'Dockerfile', 'README.md']));
  }, 180_000);
});
