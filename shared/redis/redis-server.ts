import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A free TCP port on 127.0.0.1 (asks the OS, then releases it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface RedisServerOptions {
  appendonly?: boolean;
  dir?: string;
  port?: number;
}

/** A config file value in double quotes (redis.conf's quoting: backslash escapes). */
function confValue(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * A private redis-server owned by its caller (the test harness, benchmarks, `build --local`):
 * it can be killed (SIGKILL) and restarted on the same port and data directory, which is how
 * the fault tests prove that an AOF-backed Redis loses nothing acknowledged.
 *
 * It refuses every client without its password, a random one only its owner holds: any local
 * process can open a socket to 127.0.0.1, agents' commands included. The password reaches
 * redis-server as configuration on its stdin (`redis-server -`), never as an argument, since
 * every process may read every other's command line in /proc.
 */
export class RedisServer {
  private proc: ChildProcess | undefined;
  readonly dir: string;
  readonly password = randomBytes(24).toString('base64url');
  port = 0;

  constructor(private readonly opts: RedisServerOptions = {}) {
    this.dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'codegod-redis-'));
  }

  /** Where it listens, without credentials (for messages). */
  get address(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The URL clients connect with: it carries the password. */
  get url(): string {
    return `redis://:${this.password}@127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    if (!this.port) this.port = this.opts.port ?? (await freePort());
    const conf = [
      `port ${this.port}`,
      'bind 127.0.0.1',
      `dir ${confValue(this.dir)}`,
      'save ""',
      'maxmemory-policy noeviction',
      `appendonly ${this.opts.appendonly ? 'yes' : 'no'}`,
      'appendfsync everysec',
      `requirepass ${confValue(this.password)}`,
    ];
    const proc = spawn('redis-server', ['-'], { stdio: ['pipe', 'ignore', 'ignore'] });
    this.proc = proc;
    proc.on('error', () => undefined);
    proc.stdin?.on('error', () => undefined);
    proc.stdin?.end(`${conf.join('\n')}\n`);
    // A private server must never outlive its owner, however the owner ends.
    const reap = () => proc.kill('SIGKILL');
    process.once('exit', reap);
    proc.once('exit', () => process.removeListener('exit', reap));
    await this.waitReady();
    return this;
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        // With AOF, LOADING answers until the file is replayed.
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        if (Date.now() > deadline || this.proc?.exitCode != null) throw new Error(`redis-server on port ${this.port} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        probe.disconnect();
      }
    }
  }

  /** Kills the server (SIGKILL by default) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(signal);
    });
  }

  async stop(): Promise<void> {
    await this.kill('SIGTERM');
  }
}
