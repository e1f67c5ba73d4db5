import { spawn, type ChildProcess } from 'node:child_process';
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

/**
 * A private redis-server owned by its caller (the test harness, benchmarks, `build --local`):
 * it can be killed (SIGKILL) and restarted on the same port and data directory, which is how
 * the fault tests prove that an AOF-backed Redis loses nothing acknowledged.
 */
export class RedisServer {
  private proc: ChildProcess | undefined;
  readonly dir: string;
  port = 0;

  constructor(private readonly opts: RedisServerOptions = {}) {
    this.dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'codegod-redis-'));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    if (!this.port) this.port = this.opts.port ?? (await freePort());
    const args = [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
      '--maxmemory-policy', 'noeviction',
      '--appendonly', this.opts.appendonly ? 'yes' : 'no', '--appendfsync', 'everysec',
    ];
    const proc = spawn('redis-server', args, { stdio: 'ignore' });
    this.proc = proc;
    proc.on('error', () => undefined);
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
