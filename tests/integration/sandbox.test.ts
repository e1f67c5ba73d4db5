import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAudit, RedisAuditSink, unfinishedCommands, type AuditEntry } from '../../shared/telemetry/audit.js';
import { CodegodError, DataCorruptError } from '../../shared/domain/errors.js';
import { createKeys, type Keys } from '../../shared/redis/keys.js';
import { createRedis } from '../../shared/redis/connection.js';
import { Sandbox } from '../../shared/sandbox/sandbox.js';
import { testConfig } from '../helpers/config.js';
import { compileOptions, redisOptions } from '../../shared/options.js';

let root: string;
let redis: Redis;
let keys: Keys;
let sandbox: Sandbox;
const buildId = 'b-sandbox-it';

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'codegod-sandbox-it-'));
  const config = testConfig({
    CODEGOD_WORKSPACE_ROOT: root,
    CODEGOD_OUTPUT_CAP_BYTES: '1024',
    CODEGOD_COMMAND_TIMEOUT_MS: '10000',
  });
  redis = createRedis(redisOptions(config), 'client');
  keys = createKeys(config.CODEGOD_PREFIX);
  const base = await Sandbox.fromOptions(compileOptions(config).sandbox, { buildId, sink: new RedisAuditSink(redis, keys, buildId) });
  // A short grace keeps the SIGKILL cases fast.
  sandbox = (await Sandbox.forBuild({
    root,
    buildId,
    sink: new RedisAuditSink(redis, keys, buildId),
    outputCapBytes: config.CODEGOD_OUTPUT_CAP_BYTES,
    commandTimeoutMs: config.CODEGOD_COMMAND_TIMEOUT_MS,
    killGraceMs: 200,
  })).forTask({ taskId: 't-1', agentId: 'backend-1' });
  expect(base.workspace).toBe(sandbox.workspace);
});

afterAll(async () => {
  await redis.quit();
  rmSync(root, { recursive: true, force: true });
});

/** Entries recorded since `fromId`, with their ids. */
async function auditSince(fromId?: string): Promise<Array<{ id: string; entry: AuditEntry }>> {
  return readAudit(redis, keys, buildId, fromId);
}

async function lastAuditId(): Promise<string | undefined> {
  const [last] = await redis.xrevrange(keys.audit(buildId), '+', '-', 'COUNT', 1);
  return last?.[0];
}

/** Whether a process still runs (a zombie waiting for its reaper counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms = 2_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !alive(pid);
}

function firstPid(stdout: string): number {
  const pid = Number(/^(\d+)$/m.exec(stdout)?.[1]);
  expect(pid).toBeGreaterThan(1);
  return pid;
}

describe('running commands', () => {
  it('returns exit code and output of a failing program without throwing, and audits it', async () => {
    const from = await lastAuditId();
    const result = await sandbox.run({ command: 'sh', args: ['-c', 'echo out; echo err >&2; exit 3'] });
    expect(result).toMatchObject({
      exitCode: 3,
      signal: null,
      stdout: 'out\n',
      stderr: 'err\n',
      timedOut: false,
      cancelled: false,
      truncated: false,
    });
    const entries = await auditSince(from);
    const run = entries[0]!.entry.type === 'command.started' ? entries[0]!.entry.run : 'no start entry';
    expect(entries.map((e) => e.entry)).toEqual([
      expect.objectContaining({ type: 'command.started', command: 'sh', args: ['-c', 'echo out; echo err >&2; exit 3'], cwd: '.', run, taskId: 't-1' }),
      expect.objectContaining({
        type: 'command',
        run,
        command: 'sh',
        args: ['-c', 'echo out; echo err >&2; exit 3'],
        shell: false,
        cwd: '.',
        exitCode: 3,
        signal: null,
        stdoutBytes: 4,
        stderrBytes: 4,
        truncated: false,
        taskId: 't-1',
        agentId: 'backend-1',
      }),
    ]);
  });

  it('runs shell scripts only when asked, in the workspace or a directory inside it', async () => {
    mkdirSync(join(sandbox.workspace, 'src'), { recursive: true });
    const shell = await sandbox.run({ command: 'echo hi > out.txt && cat out.txt', shell: true });
    expect(shell).toMatchObject({ exitCode: 0, stdout: 'hi\n' });
    expect(readFileSync(join(sandbox.workspace, 'out.txt'), 'utf8')).toBe('hi\n');
    // Without shell, the metacharacters are plain arguments.
    const plain = await sandbox.run({ command: 'echo', args: ['a', '&&', 'b', '>', 'c.txt'] });
    expect(plain.stdout).toBe('a && b > c.txt\n');
    expect(existsSync(join(sandbox.workspace, 'c.txt'))).toBe(false);
    const pwd = await sandbox.run({ command: 'pwd', cwd: 'src' });
    expect(pwd.stdout.trim()).toBe(join(sandbox.workspace, 'src'));
    const input = await sandbox.run({ command: 'cat', input: 'hello' });
    expect(input.stdout).toBe('hello');
  });

  it('answers 127 for a program that does not exist', async () => {
    const result = await sandbox.run({ command: 'codegod-no-such-program' });
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toContain('codegod-no-such-program: command not found');
  });

  it('refuses a destructive command before spawning anything, and audits the refusal', async () => {
    const from = await lastAuditId();
    const err = await sandbox.run({ command: 'touch marker.txt; sudo ls', shell: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CodegodError);
    expect(err).toMatchObject({ code: 'SANDBOX_POLICY', message: expect.stringMatching(/^refused: sudo/) });
    expect(existsSync(join(sandbox.workspace, 'marker.txt'))).toBe(false);
    await expect(sandbox.run({ command: 'ls', cwd: '../..' })).rejects.toMatchObject({ code: 'SANDBOX_PATH' });
    const entries = (await auditSince(from)).map((e) => e.entry);
    expect(entries).toEqual([
      expect.objectContaining({
        type: 'command.refused',
        command: 'touch marker.txt; sudo ls',
        shell: true,
        reason: expect.stringMatching(/sudo/),
      }),
      expect.objectContaining({
        type: 'command.refused',
        command: 'ls',
        cwd: '../..',
        reason: expect.stringMatching(/escapes the workspace/),
      }),
    ]);
  });

  it('kills the whole process group on timeout, grandchildren included', async () => {
    const started = Date.now();
    const result = await sandbox.run({ command: 'sh -c "sleep 100 & echo \\$!; wait"', shell: true, timeoutMs: 300 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBeNull();
    expect(result.signal).toBe('SIGTERM');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await waitGone(firstPid(result.stdout))).toBe(true);
  });

  it('follows SIGTERM with SIGKILL when the group ignores it', async () => {
    const result = await sandbox.run({ command: "trap '' TERM; sleep 100 & echo $!; wait", shell: true, timeoutMs: 300 });
    expect(result.timedOut).toBe(true);
    expect(result.signal).toBe('SIGKILL');
    expect(result.durationMs).toBeGreaterThanOrEqual(450);
    expect(await waitGone(firstPid(result.stdout))).toBe(true);
  });

  it('stops the group when the cancel signal fires, and does not start once it has', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const result = await sandbox.run({ command: 'sleep 100 & echo $!; wait', shell: true, signal: controller.signal });
    expect(result).toMatchObject({ cancelled: true, timedOut: false, exitCode: null });
    expect(await waitGone(firstPid(result.stdout))).toBe(true);

    const from = await lastAuditId();
    const before = await sandbox.run({ command: 'touch', args: ['never.txt'], signal: controller.signal });
    expect(before).toMatchObject({ cancelled: true, durationMs: 0 });
    expect(existsSync(join(sandbox.workspace, 'never.txt'))).toBe(false);
    expect((await auditSince(from)).map((e) => e.entry)).toEqual([expect.objectContaining({ type: 'command', cancelled: true })]);
  });

  it('does not let background processes outlive their command', async () => {
    const started = Date.now();
    const result = await sandbox.run({ command: 'sleep 100 >/dev/null 2>&1 & echo $!', shell: true });
    expect(result).toMatchObject({ exitCode: 0, timedOut: false });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(await waitGone(firstPid(result.stdout))).toBe(true);
  });

  it('clips large output to head and tail with a note, counting the full size in the audit', async () => {
    const from = await lastAuditId();
    const result = await sandbox.run({ command: 'yes abcdefghij | head -n 20000', shell: true });
    expect(result.truncated).toBe(true);
    expect(result.stdout.startsWith('abcdefghij\nabcdefghij\n')).toBe(true);
    expect(result.stdout.endsWith('abcdefghij\nabcdefghij\n')).toBe(true);
    expect(result.stdout).toContain(`\n…[clipped ${220_000 - 1024} bytes]…\n`);
    expect(result.stdout.length).toBeLessThan(1024 + 40);
    const entry = (await auditSince(from)).map((e) => e.entry).find((e) => e.type === 'command');
    expect(entry).toMatchObject({ type: 'command', stdoutBytes: 220_000, truncated: true });
  });
});

describe('command environment', () => {
  it('passes an allowlist only: no worker secrets, even when the caller passes them', async () => {
    const saved = { ...process.env };
    process.env.REDIS_PASSWORD = 'canary-redis-password';
    process.env.LLM_API_KEY = 'canary-llm-key';
    process.env.MY_SERVICE_TOKEN = 'canary-service-token';
    process.env.SOME_HARMLESS_SETTING = 'canary-not-allowlisted';
    try {
      const result = await sandbox.run({
        command: 'env',
        env: {
          LLM_API_KEY: 'canary-passed-key',
          DB_PASSWORD: 'canary-db-password',
          REDIS_URL: 'redis://:canary@localhost:6379',
          VIRTUAL_ENV: '.venv',
          PIP_INDEX_URL: 'http://localhost/simple',
          npm_config_cache: '.npm-cache',
        },
      });
      expect(result.exitCode).toBe(0);
      expect(result.stdout).not.toContain('canary');
      const lines = result.stdout.trim().split('\n');
      const env = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      expect(env).toMatchObject({
        VIRTUAL_ENV: '.venv',
        PIP_INDEX_URL: 'http://localhost/simple',
        npm_config_cache: '.npm-cache',
        HOME: join(sandbox.workspace, '.codegod', 'home'),
        TMPDIR: join(sandbox.workspace, '.codegod', 'tmp'),
        TERM: 'dumb',
      });
      expect(env.PATH).toBeTruthy();
      expect(result.droppedEnv.sort()).toEqual(['DB_PASSWORD', 'LLM_API_KEY', 'REDIS_URL']);
    } finally {
      for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
      Object.assign(process.env, saved);
    }
  });

  it('refuses to run when the home directory has been turned into a symlink out of the workspace', async () => {
    const other = await Sandbox.forBuild({ root, buildId: 'b-home-swap', sink: new RedisAuditSink(redis, keys, 'b-home-swap') });
    const outside = mkdtempSync(join(root, 'outside-'));
    rmSync(join(other.workspace, '.codegod'), { recursive: true });
    symlinkSync(outside, join(other.workspace, '.codegod'));
    await expect(other.run({ command: 'true' })).rejects.toMatchObject({ code: 'SANDBOX_PATH', message: /symlink/ });
    expect(readdirSync(outside)).toEqual([]);
  });
});

describe('files', () => {
  it('writes files inside the workspace, creating directories, and audits each write', async () => {
    const from = await lastAuditId();
    const written = await sandbox.writeFile('app/src/main.py', 'print("hi")\n');
    expect(written).toEqual({ path: 'app/src/main.py', bytes: 12 });
    expect(readFileSync(join(sandbox.workspace, 'app/src/main.py'), 'utf8')).toBe('print("hi")\n');
    expect(await sandbox.readFile('app/src/main.py')).toBe('print("hi")\n');
    expect(await sandbox.exists('app/src/main.py')).toBe(true);
    expect(await sandbox.exists('app/missing.py')).toBe(false);
    expect(await sandbox.stat('app/src')).toMatchObject({ path: 'app/src', type: 'dir' });
    await expect(sandbox.stat('app/missing.py')).rejects.toMatchObject({ code: 'SANDBOX_PATH', message: /no such file/ });
    await expect(sandbox.readFile('app')).rejects.toMatchObject({ code: 'SANDBOX_PATH', message: /not a regular file/ });
    const tooBig = Buffer.alloc(5 * 1024 * 1024 + 1);
    await expect(sandbox.writeFile('big.bin', tooBig)).rejects.toMatchObject({ code: 'SANDBOX_POLICY' });
    await expect(sandbox.writeFile('/etc/x', 'x')).rejects.toMatchObject({ code: 'SANDBOX_PATH' });
    const entries = (await auditSince(from)).map((e) => e.entry);
    expect(entries).toEqual([
      expect.objectContaining({ type: 'file.write', path: 'app/src/main.py', bytes: 12, taskId: 't-1', agentId: 'backend-1' }),
      expect.objectContaining({ type: 'file.refused', path: 'big.bin', reason: expect.stringMatching(/more than one write/) }),
      expect.objectContaining({ type: 'file.refused', path: '/etc/x', reason: expect.stringMatching(/absolute/) }),
    ]);
  });

  it('replaces a file whole (temporary file, then rename), keeping its mode and leaving nothing behind', async () => {
    const path = join(sandbox.workspace, 'run.sh');
    writeFileSync(path, '#!/bin/sh\necho old\n');
    chmodSync(path, 0o755);
    // A write in place keeps the inode; a rename brings a new one.
    const before = statSync(path).ino;
    await sandbox.writeFile('run.sh', '#!/bin/sh\necho new\n');
    expect(readFileSync(path, 'utf8')).toBe('#!/bin/sh\necho new\n');
    expect(statSync(path).ino).not.toBe(before);
    expect(statSync(path).mode & 0o777).toBe(0o755);
    expect(readdirSync(sandbox.workspace).filter((f) => f.endsWith('.partial'))).toEqual([]);
    mkdirSync(join(sandbox.workspace, 'a-dir'), { recursive: true });
    await expect(sandbox.writeFile('a-dir', 'x')).rejects.toMatchObject({ code: 'SANDBOX_PATH', message: /is a directory/ });
  });

  it('refuses to write a file with other hard links, and anything under .git/', async () => {
    const path = join(sandbox.workspace, 'linked.txt');
    writeFileSync(path, 'one');
    linkSync(path, join(sandbox.workspace, 'linked-too.txt'));
    await expect(sandbox.writeFile('linked.txt', 'two')).rejects.toMatchObject({ code: 'SANDBOX_PATH', message: /other hard links/ });
    expect(readFileSync(path, 'utf8')).toBe('one');
    await expect(sandbox.writeFile('.git/config', '[core]\n')).rejects.toMatchObject({ code: 'SANDBOX_POLICY', message: /\.git\// });
    await expect(sandbox.writeFile('sub/.git/hooks/pre-commit', 'x')).rejects.toMatchObject({ code: 'SANDBOX_POLICY' });
    expect(existsSync(join(sandbox.workspace, '.git', 'config'))).toBe(false);
  });

  it('clips long files with a note', async () => {
    writeFileSync(join(sandbox.workspace, 'long.txt'), 'x'.repeat(5_000));
    const text = await sandbox.readFile('long.txt', { maxBytes: 100 });
    expect(text).toBe(`${'x'.repeat(100)}\n…[clipped: showing the first 100 of 5000 bytes]…\n`);
  });

  it('lists files, showing node_modules and .git without their contents', async () => {
    const dir = 'listing';
    for (const f of ['listing/a.txt', 'listing/node_modules/pkg/index.js', 'listing/.git/HEAD', 'listing/src/b.ts']) {
      mkdirSync(join(sandbox.workspace, f, '..'), { recursive: true });
      writeFileSync(join(sandbox.workspace, f), 'x');
    }
    const { entries, truncated } = await sandbox.listFiles(dir);
    expect(truncated).toBe(false);
    expect(entries.map((e) => [e.path, e.type, e.collapsed ?? false])).toEqual([
      ['listing/.git', 'dir', true],
      ['listing/a.txt', 'file', false],
      ['listing/node_modules', 'dir', true],
      ['listing/src', 'dir', false],
      ['listing/src/b.ts', 'file', false],
    ]);
    const all = await sandbox.listFiles(dir, { all: true });
    expect(all.entries.map((e) => e.path)).toContain('listing/node_modules/pkg/index.js');
    const capped = await sandbox.listFiles(dir, { max: 2 });
    expect(capped).toMatchObject({ truncated: true, entries: [{ path: 'listing/.git' }, { path: 'listing/a.txt' }] });
  });
});

describe('audit stream', () => {
  it('pairs each command start with its end; a start without an end is a command that never ended', async () => {
    const b = 'b-audit-pairs';
    const sink = new RedisAuditSink(redis, keys, b);
    const base = { command: 'python3', args: ['-m', 'venv', '.venv'], shell: false, cwd: '.' };
    const end = { exitCode: 0, signal: null, timedOut: false, cancelled: false, durationMs: 5, stdoutBytes: 0, stderrBytes: 0, truncated: false, droppedEnv: [] };
    await sink.record({ type: 'command.started', ...base, run: 'r1' });
    await sink.record({ type: 'command', ...base, ...end, run: 'r1' });
    await sink.record({ type: 'command.started', ...base, run: 'r2' });
    const never = unfinishedCommands(await readAudit(redis, keys, b));
    expect(never.map((r) => r.entry)).toEqual([expect.objectContaining({ type: 'command.started', run: 'r2' })]);
  });

  it('reads on after a given id and rejects malformed entries', async () => {
    const otherBuild = 'b-audit-read';
    const sink = new RedisAuditSink(redis, keys, otherBuild);
    await sink.record({ type: 'file.write', path: 'a', bytes: 1 });
    await sink.record({ type: 'file.write', path: 'b', bytes: 2 });
    const all = await readAudit(redis, keys, otherBuild);
    expect(all.map((r) => r.entry)).toMatchObject([{ path: 'a' }, { path: 'b' }]);
    expect(all[0]!.entry.at).toBeGreaterThan(0);
    const after = await readAudit(redis, keys, otherBuild, all[0]!.id);
    expect(after.map((r) => r.entry)).toMatchObject([{ path: 'b', bytes: 2 }]);
    const raw = await redis.xrange(keys.audit(otherBuild), '-', '+');
    expect(raw[0]![1]).toEqual(expect.arrayContaining(['type', 'file.write', 'path', 'a', 'bytes', '1']));

    await redis.xadd(keys.audit(otherBuild), '*', 'type', 'file.write', 'path', 'c', 'bytes', 'not-json');
    await expect(readAudit(redis, keys, otherBuild)).rejects.toBeInstanceOf(DataCorruptError);
  });

  it('keeps the workspace path real (symlinked roots resolve)', () => {
    expect(sandbox.workspace).toBe(realpathSync(join(root, buildId)));
  });
});
