import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../shared/config.js';
import { configEnv } from './config.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A real child process (worker, orchestrator, CLI) with its output captured. */
export class ChildHandle {
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly proc: ChildProcess) {
    proc.stdout?.on('data', (d: Buffer) => this.output.push(d.toString()));
    proc.stderr?.on('data', (d: Buffer) => this.output.push(d.toString()));
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get text(): string {
    return this.output.join('');
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(signal);
    await this.exited;
  }
}

/** Runs a TypeScript entry of the project (through tsx) with exactly `env` plus PATH/HOME. */
export function spawnTs(entry: string, args: string[], env: Record<string, string>): ChildHandle {
  const proc = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new ChildHandle(proc);
}

/** Settings that make crash recovery quick in tests (a dead worker's job re-runs in ~1-2 s). */
export const FAST_RECOVERY = {
  CODEGOD_LOCK_DURATION_MS: '1500',
  CODEGOD_STALLED_INTERVAL_MS: '700',
  CODEGOD_HEARTBEAT_MS: '300',
  CODEGOD_RECONCILE_INTERVAL_MS: '500',
  CODEGOD_TASK_BACKOFF_MS: '100',
} as const;

export function startWorker(config: Config, role: string, extra: Record<string, string> = {}): ChildHandle {
  return spawnTs('workers/main.ts', [], configEnv(config, { CODEGOD_EXECUTOR: 'scripted', AGENT_ROLE: role, LOG_LEVEL: 'warn', ...extra }));
}

export function startOrchestrator(config: Config, extra: Record<string, string> = {}): ChildHandle {
  return spawnTs('orchestrator/main.ts', [], configEnv(config, { LOG_LEVEL: 'warn', CODEGOD_HTTP_PORT: '0', ...extra }));
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
