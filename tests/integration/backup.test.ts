import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readlinkSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import type { Config } from '../../shared/config.js';
import { cli } from '../helpers/cli-io.js';
import { configEnv, testConfig } from '../helpers/config.js';
import { engine, plan, waitForBuildEnd, waitForWorkers, type EngineHarness } from '../helpers/engine.js';
import { FAST_RECOVERY, ROOT, startWorker, waitFor, type ChildHandle } from '../helpers/processes.js';

/**
 * Backup and restore: one archive of Redis (builds, history, queues, memory) and workspaces;
 * backup → wipe everything → restore brings back the same builds, traces, memory and files.
 * Bad archives, a stack that is not empty and an unwritable target end with one line and a
 * non-zero exit, having changed nothing.
 */
const step = (action: string, params: Record<string, unknown>) => ({ action, params, expected: 'done' });
const SCENARIO = {
  rules: [
    { match: { phase: 'reason' }, reply: { problem_analysis: 'a file', root_causes: ['none'], approach: 'write it', risks: ['none'], success_criteria: 'it exists', conclusion: 'write it' } },
    { match: { phase: 'plan' }, reply: { steps: [step('write_file', { path: 'hello.txt', content: 'hello from a backup\n' })], estimated_duration: '1 second', confidence: 0.9 } },
    { match: { phase: 'validate' }, reply: { checks: [{ kind: 'file_exists', target: 'hello.txt', args: [], contains: null }], summary: 'written' } },
  ],
};

const dir = mkdtempSync(join(tmpdir(), 'codegod-backup-'));
const workspaceRoot = join(dir, 'workspaces');
let llm: ScriptedLlmServer;
let config: Config;
let env: Record<string, string>;
let h: EngineHarness;
let worker: ChildHandle;
let builds: string[];

beforeAll(async () => {
  llm = await startScriptedLlmServer({ scenario: SCENARIO });
  const extra = { ...FAST_RECOVERY, CODEGOD_EXECUTOR: 'agent', VLLM_API_URL: llm.url, CODEGOD_WORKSPACE_ROOT: workspaceRoot };
  config = testConfig(extra);
  env = configEnv(config);
  h = engine(config);
  worker = startWorker(config, 'backend', extra);
  await waitForWorkers(h.redis, config, [worker]);
  builds = [];
  for (const goal of ['first', 'second']) {
    const id = await h.scheduler.createBuild({ goal, plan: plan([{ id: 'hello' }]) });
    expect((await waitForBuildEnd(h.scheduler, id, 60_000)).state).toBe('succeeded');
    builds.push(id);
  }
  // A symlink out of the workspace, as a virtualenv's interpreter is: kept as a link.
  symlinkSync('/usr/bin/python3', join(workspaceRoot, builds[0]!, 'python-link'));
  // A quiet stack from here on: the worker's short-lived keys (locks, stall checks) expire.
  await worker.kill('SIGTERM');
  await waitFor(async () => {
    const keys = await prefixKeys(h.redis);
    const ttls = await Promise.all(keys.map((k) => h.redis.pttl(k)));
    return ttls.every((t) => t < 0);
  }, 'short-lived keys to expire', 15_000, 200);
}, 120_000);

afterAll(async () => {
  await worker?.kill();
  await h?.close();
  await llm?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function prefixKeys(redis: Redis): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.CODEGOD_PREFIX}:*`, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out.filter((k) => k !== h.scheduler.keys.agentsStatus).sort();
}

/** What people look at: the builds, each build's trace, the agents' memory. */
async function views(): Promise<Record<string, unknown>> {
  const status = JSON.parse((await cli(['status', '--json'], env)).stdout) as { builds: unknown };
  const traces = await Promise.all(builds.map(async (id) => JSON.parse((await cli(['trace', id, '--json'], env)).stdout) as unknown));
  const memory = JSON.parse((await cli(['memory', 'list', '--json'], env)).stdout) as unknown;
  return { builds: status.builds, traces, memory };
}

/** Runs the real binary with stdin and stdout on files (the archive is binary). */
function binary(args: string[], io: { stdin?: string; stdout?: string }): Promise<{ code: number | null; stderr: string }> {
  const stdin = io.stdin ? openSync(io.stdin, 'r') : 'ignore';
  const stdout = io.stdout ? openSync(io.stdout, 'w') : 'ignore';
  const child = spawn(process.execPath, [`${ROOT}bin/codegod.js`, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: [stdin, stdout, 'pipe'],
  });
  const err: string[] = [];
  child.stderr?.on('data', (d: Buffer) => err.push(d.toString()));
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      if (typeof stdin === 'number') closeSync(stdin);
      if (typeof stdout === 'number') closeSync(stdout);
      resolve({ code, stderr: err.join('') });
    }),
  );
}

describe('backup → wipe everything → restore', () => {
  it('brings back the same builds, traces, memory and workspaces (archive through stdout and stdin)', async () => {
    const before = await views();
    expect((before.builds as unknown[]).length).toBe(2);
    const keysBefore = await prefixKeys(h.redis);
    const archive = join(dir, 'round-trip.tar.gz');
    const made = await binary(['backup', '-'], { stdout: archive });
    expect(made.code, made.stderr).toBe(0);
    expect(made.stderr).toMatch(/^backed up 2 builds, 1 agent memory and \d+ Redis keys \(a consistent snapshot\), and 2 workspaces/);

    // Wipe everything: every key of the prefix, every workspace.
    for (const k of keysBefore) await h.redis.del(k);
    rmSync(workspaceRoot, { recursive: true, force: true });
    expect((JSON.parse((await cli(['status', '--json'], env)).stdout) as { builds: unknown[] }).builds).toEqual([]);

    const restored = await binary(['restore', '-'], { stdin: archive });
    expect(restored.code, restored.stderr).toBe(0);
    expect(await prefixKeys(h.redis)).toEqual(keysBefore);
    expect(await views()).toEqual(before);
    for (const id of builds) expect(readFileSync(join(workspaceRoot, id, 'hello.txt'), 'utf8')).toBe('hello from a backup\n');
    expect(readlinkSync(join(workspaceRoot, builds[0]!, 'python-link'))).toBe('/usr/bin/python3');
    expect(readdirSync(workspaceRoot).filter((n) => n.startsWith('.codegod-restore'))).toEqual([]);
  }, 60_000);
});

describe('bad input changes nothing', () => {
  let archive: string;
  beforeAll(async () => {
    archive = join(dir, 'good.tar.gz');
    const r = await cli(['backup', archive], env);
    expect(r.code, r.stderr).toBe(0);
  });

  async function refused(args: string[], message: RegExp): Promise<void> {
    const keys = await prefixKeys(h.redis);
    const files = readdirSync(workspaceRoot).sort();
    const r = await cli(args, env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(await prefixKeys(h.redis)).toEqual(keys);
    expect(readdirSync(workspaceRoot).sort()).toEqual(files);
  }

  it('a backup target that is not writable', async () => {
    await refused(['backup', '/proc/codegod-backup.tar.gz'], /^codegod: cannot write the backup to \/proc\/codegod-backup\.tar\.gz \((ENOENT|EACCES|EROFS|EPERM)\)\n$/);
    await refused(['backup', join(dir, 'no-such-dir', 'b.tar.gz')], /^codegod: cannot write the backup to .*no-such-dir\/b\.tar\.gz \(ENOENT\)\n$/);
    await refused(['backup', dir], /^codegod: cannot write the backup to .*: it is a directory; give a file name\n$/);
    expect(readdirSync(dir).filter((n) => n.endsWith('.partial'))).toEqual([]);
  });

  it('restore into a stack that is not empty', async () => {
    await refused(['restore', archive], /^codegod: (the workspace of b-\S+ already exists in .*; restore into an empty stack|Redis at .* already holds codegod data under .*; restore needs an empty stack)\n$/);
    const elsewhere = configEnv(testConfig({ CODEGOD_WORKSPACE_ROOT: join(dir, 'other-root') }), { CODEGOD_PREFIX: config.CODEGOD_PREFIX });
    const r = await cli(['restore', archive], elsewhere);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^codegod: Redis at .* already holds codegod data under \S+ \(\d+ keys, e\.g\. .*\); restore needs an empty stack\n$/);
  });

  it('a corrupt archive, a foreign one, and a file that is no archive', async () => {
    const cut = join(dir, 'cut.tar.gz');
    writeFileSync(cut, readFileSync(archive).subarray(0, Math.floor(readFileSync(archive).length / 2)));
    await refused(['restore', cut], /^codegod: .*cut\.tar\.gz is damaged: .+\n$/);

    const foreignDir = mkdtempSync(join(dir, 'foreign-'));
    writeFileSync(join(foreignDir, 'notes.txt'), 'not a backup\n');
    const foreign = join(dir, 'foreign.tar.gz');
    await new Promise<void>((resolve, reject) => spawn('tar', ['-czf', foreign, '-C', foreignDir, 'notes.txt']).on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`tar ${c}`)))));
    await refused(['restore', foreign], /^codegod: .*foreign\.tar\.gz is not a codegod backup \(no codegod-backup\.json in it\)\n$/);

    const text = join(dir, 'plain.txt');
    writeFileSync(text, 'hello\n'.repeat(200));
    await refused(['restore', text], /^codegod: .*plain\.txt is not a codegod backup \(not a tar\.gz archive\)\n$/);
    await refused(['restore', join(dir, 'missing.tar.gz')], /^codegod: cannot read .*missing\.tar\.gz \(ENOENT\)\n$/);
    truncateSync(cut, 0);
    await refused(['restore', cut], /^codegod: .*cut\.tar\.gz is (damaged|not a codegod backup).*\n$/);
    expect(existsSync(archive)).toBe(true);
  });
});
