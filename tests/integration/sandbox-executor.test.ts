import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectIsolation, type Isolation } from '../../shared/sandbox/executor/isolation.js';
import type { IsolationOptions } from '../../shared/options.js';
import { Sandbox } from '../../shared/sandbox/sandbox.js';
import type { AuditSink } from '../../shared/telemetry/audit.js';

/**
 * The isolated executor, checked from outside: canary files, the host's processes, a server on
 * the host's loopback. Payloads are base64, so no text filter could have read them.
 */

const sink: AuditSink = { record: async () => undefined };
const b64 = (script: string) => `echo ${Buffer.from(script).toString('base64')} | base64 -d | sh`;
const SETTINGS: IsolationOptions = { mode: 'auto', network: 'on', pids: 128, memoryMb: 512, cpuSeconds: 30, bwrap: 'bwrap', pasta: 'pasta', hide: [] };

let root: string;
let outside: string;
let secretFile: string;
const SECRET = `s3cret-${process.pid}-value`;
let isolation: Isolation;
const open: Sandbox[] = [];

async function sandboxFor(buildId: string, iso: Isolation = isolation, limits: { commandTimeoutMs?: number } = {}): Promise<Sandbox> {
  const sandbox = await Sandbox.forBuild({ root, buildId, sink, isolation: iso, killGraceMs: 200, ...limits });
  open.push(sandbox);
  return sandbox;
}

/** Host processes whose command line contains `marker`. */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker) && !/\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) found.push(Number(pid));
    } catch {
      /* gone */
    }
  }
  return found;
}

async function eventually(check: () => boolean, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'codegod-exec-it-'));
  outside = mkdtempSync(join(tmpdir(), 'codegod-exec-outside-'));
  writeFileSync(join(outside, 'canary.txt'), 'canary');
  secretFile = join(outside, 'llm-key');
  writeFileSync(secretFile, SECRET);
  isolation = await detectIsolation({ ...SETTINGS, hide: [secretFile] });
  // This suite is the isolation's proof: where the kernel refuses it, it fails with the reason.
  expect(isolation.tier, isolation.description).toBe('namespaces');
  mkdirSync(join(root, 'other-build'), { recursive: true });
  writeFileSync(join(root, 'other-build', 'state.json'), '{"other":true}');
});

afterAll(async () => {
  await Promise.all(open.map((s) => s.close()));
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

describe('commands in the executor', () => {
  it('cannot write outside the workspace: ../, /tmp, /var/tmp, another build, a secret', async () => {
    const sandbox = await sandboxFor('b-writes');
    const script = [
      `echo pwned > ../other-build/state.json`,
      `echo pwned > ../pwned.txt`,
      `echo pwned > ${outside}/canary.txt`,
      `echo pwned > ${outside}/new.txt`,
      `echo pwned > /var/tmp/codegod-pwned-${process.pid}`,
      `rm -rf ${outside}`,
      `cat ${secretFile}; cat ${root}/other-build/state.json; ls ${root}`,
      `echo done`,
    ].join('; ');
    const result = await sandbox.run({ command: b64(script), shell: true });
    expect(result.stdout).toContain('done');
    expect(result.stdout).not.toContain(SECRET);
    expect(result.stdout).not.toContain('other');
    expect(readFileSync(join(root, 'other-build', 'state.json'), 'utf8')).toBe('{"other":true}');
    expect(existsSync(join(root, 'pwned.txt'))).toBe(false);
    expect(readFileSync(join(outside, 'canary.txt'), 'utf8')).toBe('canary');
    expect(existsSync(join(outside, 'new.txt'))).toBe(false);
    expect(existsSync(`/var/tmp/codegod-pwned-${process.pid}`)).toBe(false);
    expect(readFileSync(secretFile, 'utf8')).toBe(SECRET);
  });

  it("sees only its own processes: not the worker's environ nor its command line", async () => {
    const sandbox = await sandboxFor('b-proc');
    const result = await sandbox.run({ command: b64('for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline; echo; cat $p/environ; done 2>/dev/null; echo; ls /proc | grep -c "^[0-9]"'), shell: true });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).not.toContain('vitest');
    expect(result.stdout).not.toContain('VITEST');
    expect(Number(result.stdout.trim().split('\n').pop())).toBeLessThan(8);
  });

  it('cannot reach a server on the host loopback; egress works with the network on and not with it off', async () => {
    const server: Server = createServer((_req, res) => res.end('host-only'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const probe = (url: string) => b64(`curl -s -m 5 -o /dev/null -w '%{http_code}' ${url} || echo unreachable`);
      const on = await sandboxFor('b-net-on');
      expect((await on.run({ command: probe(`http://127.0.0.1:${port}/`), shell: true })).stdout).toMatch(/unreachable/);
      expect((await on.run({ command: probe(`http://10.0.2.2:${port}/`), shell: true })).stdout).toMatch(/unreachable/);
      const hasEgress = await lookup('registry.npmjs.org').then(() => true, () => false);
      if (hasEgress) expect((await on.run({ command: probe('https://registry.npmjs.org/execa'), shell: true })).stdout).toBe('200');
      const off = await sandboxFor('b-net-off', await detectIsolation({ ...SETTINGS, network: 'off' }));
      expect((await off.run({ command: probe('https://registry.npmjs.org/execa'), shell: true })).stdout).toMatch(/unreachable/);
      expect((await off.run({ command: probe(`http://127.0.0.1:${port}/`), shell: true })).stdout).toMatch(/unreachable/);
    } finally {
      server.close();
    }
  });

  it('leaves no setsid double-fork daemon behind, after the command, its timeout or its cancel', async () => {
    const sandbox = await sandboxFor('b-daemon');
    const daemon = (marker: number) => b64(`setsid sh -c 'sh -c "sleep ${marker}" & exit 0' & sleep 0.2`);
    await sandbox.run({ command: daemon(31_401), shell: true });
    expect(await eventually(() => processesWith('31401').length === 0)).toBe(true);

    const timedOut = await sandbox.run({ command: `${daemon(31_402)}; sleep 100`, shell: true, timeoutMs: 1_000 });
    expect(timedOut.timedOut).toBe(true);
    expect(await eventually(() => processesWith('31402').length === 0)).toBe(true);

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 800);
    const cancelled = await sandbox.run({ command: `${daemon(31_403)}; sleep 100`, shell: true, signal: controller.signal });
    expect(cancelled.cancelled).toBe(true);
    expect(await eventually(() => processesWith('31403').length === 0)).toBe(true);
  });

  it('bounds a fork bomb to the task, and the worker carries on', async () => {
    const sandbox = await sandboxFor('b-bomb', isolation, { commandTimeoutMs: 4_000 });
    const bomb = await sandbox.run({ command: b64('b() { b | b & }; b; sleep 3; ls /proc | grep -c "^[0-9]"'), shell: true });
    // It met the task's limit (forks refused) and ended within its timeout.
    expect(`${bomb.stdout}${bomb.stderr}`).toMatch(/fork|Resource temporarily unavailable/i);
    expect(bomb.durationMs).toBeLessThan(10_000);
    const after = await sandbox.run({ command: 'echo', args: ['still here'] });
    expect(after.stdout).toBe('still here\n');
  });

  it('ends a memory hog at the heap limit', async () => {
    const sandbox = await sandboxFor('b-memory');
    const hog = await sandbox.run({ command: 'python3', args: ['-c', 'x = bytearray(2 * 1024 ** 3); print("allocated")'] });
    expect(hog.stdout).not.toContain('allocated');
    expect(hog.exitCode).not.toBe(0);
    const small = await sandbox.run({ command: 'python3', args: ['-c', 'x = bytearray(64 * 1024 ** 2); print("fine")'] });
    expect(small.stdout).toBe('fine\n');
  });
});

describe('file actions in the executor', () => {
  it('cannot leave the workspace through a directory swapped for a symlink while writing and reading', async () => {
    const sandbox = await sandboxFor('b-race');
    mkdirSync(join(sandbox.workspace, 'd'), { recursive: true });
    writeFileSync(join(outside, 'pwn'), 'canary');
    const controller = new AbortController();
    const swapper = sandbox.run({
      command: b64(`while true; do rm -rf d; mkdir d; echo inside > d/pwn; rm -rf d; ln -s ${outside} d; done`),
      shell: true,
      signal: controller.signal,
      timeoutMs: 30_000,
    });
    const reads: string[] = [];
    let written = 0;
    // At least 40 rounds, and on until the race has let writes and reads land inside.
    const deadline = Date.now() + 15_000;
    for (let i = 0; i < 40 || (Date.now() < deadline && (written === 0 || !reads.some((r) => r === 'inside\n' || r === 'written'))); i++) {
      if (await sandbox.writeFile('d/pwn', 'written').then(() => true, () => false)) written++;
      reads.push(await sandbox.readFile('d/pwn').catch(() => ''));
    }
    // The race ran: some writes and reads landed inside, some were refused.
    expect(written).toBeGreaterThan(0);
    expect(reads.filter((r) => r === 'inside\n' || r === 'written').length).toBeGreaterThan(0);
    controller.abort();
    await swapper;
    expect(readFileSync(join(outside, 'pwn'), 'utf8')).toBe('canary');
    expect(reads).not.toContain('canary');
  });

  it('refuses a hard link to a file outside, which stays as it was', async () => {
    const sandbox = await sandboxFor('b-hardlink');
    const target = join(outside, 'linked-canary');
    writeFileSync(target, 'canary');
    linkSync(target, join(sandbox.workspace, 'link.txt'));
    await expect(sandbox.writeFile('link.txt', 'pwned')).rejects.toMatchObject({ code: 'SANDBOX_PATH', message: /hard links/ });
    expect(readFileSync(target, 'utf8')).toBe('canary');
  });

  it('reads no secret and lists no other build through a symlink', async () => {
    const sandbox = await sandboxFor('b-links');
    await sandbox.run({ command: b64(`ln -s ${secretFile} key; ln -s ${root}/other-build other`), shell: true });
    await expect(sandbox.readFile('key')).rejects.toMatchObject({ code: 'SANDBOX_PATH' });
    await expect(sandbox.listFiles('other')).rejects.toMatchObject({ code: 'SANDBOX_PATH' });
    expect(readFileSync(secretFile, 'utf8')).toBe(SECRET);
  });
});

describe('when the executor is missing or not wanted', () => {
  it('refuses commands and file actions with one line naming the fix; nothing runs', async () => {
    const missing = await detectIsolation({ ...SETTINGS, bwrap: '/nonexistent/bwrap' });
    expect(missing.tier).toBe('unavailable');
    const sandbox = await sandboxFor('b-missing', missing);
    const refused = await sandbox.run({ command: 'touch', args: ['ran'] }).then(() => null, (err: Error & { code?: string }) => err);
    expect(refused?.code).toBe('SANDBOX_UNAVAILABLE');
    expect(refused?.message).toMatch(/install it \(apt-get install bubblewrap\).*CODEGOD_SANDBOX=host/);
    expect(refused?.message).not.toContain('\n');
    await expect(sandbox.writeFile('x.txt', 'x')).rejects.toMatchObject({ code: 'SANDBOX_UNAVAILABLE' });
    expect(existsSync(join(sandbox.workspace, 'ran'))).toBe(false);
    const noPasta = await detectIsolation({ ...SETTINGS, pasta: '/nonexistent/pasta' });
    expect(noPasta.tier === 'unavailable' && noPasta.reason).toMatch(/install passt.*CODEGOD_SANDBOX_NETWORK=off/);
  });

  it('CODEGOD_SANDBOX=host runs commands on the host, with a warning', async () => {
    const host = await detectIsolation({ ...SETTINGS, mode: 'host' });
    expect(host.tier).toBe('host');
    expect(host.tier === 'host' && host.warning).toMatch(/WITHOUT kernel isolation/);
    const sandbox = await sandboxFor('b-host', host);
    const result = await sandbox.run({ command: 'sh', args: ['-c', `ls ${root}`] });
    expect(result.stdout).toContain('other-build');
  });
});

describe('a worker that dies', () => {
  it('takes its task executor, pasta and every command along', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../helpers/executor-child.ts', import.meta.url)), root, 'b-killed', '31404'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    const holders = processesWith(join(root, 'b-killed'));
    const pastas = holders.flatMap((pid) => processesWith(`/proc/${pid}/ns/net`));
    expect(processesWith('31404').length).toBeGreaterThan(0);
    expect(holders.length).toBeGreaterThan(0);
    expect(pastas.length).toBeGreaterThan(0);
    child.kill('SIGKILL');
    const gone = (pids: number[]) => pids.every((pid) => !existsSync(`/proc/${pid}`) || /\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')));
    expect(await eventually(() => processesWith('31404').length === 0 && gone(holders) && gone(pastas), 5_000)).toBe(true);
  });
});
