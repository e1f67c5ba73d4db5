/**
 * What `codegod build --local` exposes to other local processes, from outside the real
 * `codegod` process: its private Redis refuses clients without the password, and the
 * password is on no command line; its dashboard has a token of its own, printed as a
 * sign-in link, and refuses requests without it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer, freePort } from '../../shared/redis/redis-server.js';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import { startCli } from '../helpers/cli.js';
import { configEnv, testConfig } from '../helpers/config.js';
import { waitFor, type ChildHandle } from '../helpers/processes.js';

/** Every process's command line, as /proc holds it (arguments joined by spaces). */
function allCommandLines(): string[] {
  const lines: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      lines.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      // gone meanwhile
    }
  }
  return lines;
}

/** What Redis answers a PING from a client that offers no password (its first reply line). */
function anonymousPing(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    let reply = '';
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (reply.includes('\r\n')) socket.end();
    });
    socket.on('error', (err) => resolve(`error: ${err.message}`));
    socket.on('close', () => resolve(reply.split('\r\n')[0]!));
  });
}

describe('a private redis-server', () => {
  const servers: RedisServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  it('refuses clients without its password, which is on no command line, and keeps it across a restart', async () => {
    const server = await new RedisServer({ appendonly: true }).start();
    servers.push(server);
    expect(server.password.length).toBeGreaterThanOrEqual(32);
    expect(await anonymousPing(server.port)).toMatch(/^-NOAUTH/);
    const owner = new Redis(server.url);
    expect(await owner.ping()).toBe('PONG');
    owner.disconnect();
    expect(allCommandLines().filter((l) => l.includes(server.password))).toEqual([]);
    expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toContain(server.password);
    expect(server.address).not.toContain(server.password);

    await server.kill();
    await server.start();
    expect(await anonymousPing(server.port)).toMatch(/^-NOAUTH/);
    const again = new Redis(server.url);
    expect(await again.ping()).toBe('PONG');
    again.disconnect();
  });

  it('gets a different password each time', async () => {
    const [a, b] = [new RedisServer(), new RedisServer()];
    expect(a.password).not.toBe(b.password);
  });
});

describe('codegod build --local', () => {
  let llm: ScriptedLlmServer;
  let child: ChildHandle | undefined;
  beforeAll(async () => {
    llm = await startScriptedLlmServer({
      scenario: {
        rules: [
          {
            match: { role: 'planner' },
            reply: { summary: 'one slow task', tasks: [{ id: 'slow', role: 'backend', title: 'Slow', description: 'sleep=6000', dependsOn: [], acceptanceCriteria: [] }] },
          },
        ],
      },
    });
  });
  afterAll(() => llm.close());
  afterEach(async () => {
    await child?.kill('SIGKILL');
  });

  it('guards its private Redis with a password on no command line, and its dashboard with a token it prints as a sign-in link', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'codegod-local-'));
    const closed = await freePort();
    const { CODEGOD_HTTP_PORT: _port, CODEGOD_API_TOKEN: _token, ...env } = configEnv(testConfig());
    child = startCli(['build', 'one slow task', '--local', '--workspace', 'ws'], { ...env, REDIS_URL: `redis://127.0.0.1:${closed}`, VLLM_API_URL: llm.url, CODEGOD_EXECUTOR: 'scripted' }, cwd);
    const cli = child;

    const port = Number(
      (await waitFor(() => /started a private redis-server at redis:\/\/127\.0\.0\.1:(\d+) /.exec(cli.text) ?? undefined, 'the private Redis', 30_000))[1],
    );
    const link = (await waitFor(() => /codegod: dashboard at (http:\/\/127\.0\.0\.1:\d+)\/\?token=([A-Za-z0-9_-]{32,})\n/.exec(cli.text) ?? undefined, 'the dashboard link', 30_000)) as RegExpExecArray;
    const [, base, token] = link as unknown as [string, string, string];
    await waitFor(() => cli.text.includes('running'), 'the task to start', 30_000);

    // Redis: a client without the password is refused; the password is on no command line
    // (neither redis-server's nor anyone's), and not in the CLI's environment.
    expect(await anonymousPing(port)).toMatch(/^-NOAUTH/);
    const lines = allCommandLines();
    expect(lines.filter((l) => /requirepass|--requirepass/.test(l))).toEqual([]);
    const serverLine = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.includes(`redis-server 127.0.0.1:${port}`));
    expect(serverLine?.trim()).toBe(`redis-server 127.0.0.1:${port}`);
    const environ = readFileSync(`/proc/${cli.pid}/environ`, 'utf8').split('\0');
    expect(environ.filter((v) => v.startsWith('REDIS_PASSWORD') || v.startsWith('CODEGOD_API_TOKEN') || /^REDIS_URL=.*@/.test(v))).toEqual([]);
    expect(lines.filter((l) => l.includes(token))).toEqual([]);

    // Dashboard: nothing without the token; the printed link signs a browser in.
    expect((await fetch(`${base}/api/builds`)).status).toBe(401);
    expect((await fetch(`${base}/`, { headers: { Accept: 'text/html' } })).status).toBe(401);
    expect((await fetch(`${base}/api/builds`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    const signIn = await fetch(`${base}/?token=${token}`, { redirect: 'manual' });
    expect(signIn.status).toBe(303);
    const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0]!;
    expect((await fetch(`${base}/`, { headers: { cookie, Accept: 'text/html' } })).status).toBe(200);

    const { code } = await cli.exited;
    expect(code, cli.text).toBe(0);
    expect(cli.text).toMatch(/build b-\S+ succeeded in/);
    expect(await anonymousPing(port)).toMatch(/^error: connect ECONNREFUSED/);
  });

  it('keeps the token the user gives, and does not print it', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'codegod-local-'));
    const closed = await freePort();
    const token = 'users-own-token-0123456789abcdef';
    const { CODEGOD_HTTP_PORT: _port, ...env } = configEnv(testConfig());
    child = startCli(['build', 'one slow task', '--local'], { ...env, REDIS_URL: `redis://127.0.0.1:${closed}`, VLLM_API_URL: llm.url, CODEGOD_EXECUTOR: 'scripted', CODEGOD_API_TOKEN: token }, cwd);
    const cli = child;
    const base = (await waitFor(() => /codegod: dashboard at (http:\/\/127\.0\.0\.1:\d+) \(sign in with CODEGOD_API_TOKEN\)\n/.exec(cli.text) ?? undefined, 'the dashboard line', 30_000))[1]!;
    expect((await fetch(`${base}/api/builds`)).status).toBe(401);
    expect((await fetch(`${base}/api/builds`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    const { code } = await cli.exited;
    expect(code, cli.text).toBe(0);
    expect(cli.text).not.toContain(token);
  });
});
