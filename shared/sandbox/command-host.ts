import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spawnCommand, type SpawnOutcome, type SpawnRequest } from './command-runner.js';
import { CodegodError } from '../domain/errors.js';

/**
 * Runs commands in a small helper process instead of the calling one. A worker forking its
 * own (large) process blocks its event loop for milliseconds per command, stalling every
 * other task it runs; the helper forks cheaply and off that loop. The helper starts with the
 * first command and is let go after a while without any, so an idle worker carries none.
 */
const IDLE_MS = 30_000;

// Compiled, the helper is the .js beside this file; from the sources (tsx, tests), the .ts.
const fromSources = import.meta.url.endsWith('.ts');
const CHILD = fileURLToPath(new URL(fromSources ? './command-host-child.ts' : './command-host-child.js', import.meta.url));

type Reply = { type: 'done'; id: number; outcome: SpawnOutcome } | { type: 'error'; id: number; message: string };

interface Pending {
  resolve: (outcome: SpawnOutcome) => void;
  reject: (err: Error) => void;
}

export class CommandHost {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private idleTimer: NodeJS.Timeout | undefined;

  run(request: SpawnRequest, signal?: AbortSignal): Promise<SpawnOutcome> {
    // Nothing to start: answered here exactly as the runner answers a cancelled request.
    if (signal?.aborted) return spawnCommand(request, signal);
    clearTimeout(this.idleTimer);
    const child = this.ensureChild();
    const id = this.nextId++;
    return new Promise<SpawnOutcome>((resolve, reject) => {
      const onAbort = () => {
        if (child.connected) child.send({ type: 'cancel', id });
      };
      const done = () => {
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(id);
        this.refresh();
      };
      this.pending.set(id, {
        resolve: (outcome) => {
          done();
          resolve(outcome);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.refresh();
      child.send({ type: 'run', id, request }, (err) => {
        if (err) this.pending.get(id)?.reject(new CodegodError('SANDBOX_RUNNER', `cannot hand the command to the command runner: ${err.message}`));
      });
    });
  }

  private ensureChild(): ChildProcess {
    if (this.child?.connected) return this.child;
    const child = fork(CHILD, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: fromSources ? ['--import', 'tsx'] : [],
    });
    child.on('message', (reply: Reply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      if (reply.type === 'done') waiting.resolve(reply.outcome);
      else waiting.reject(new CodegodError('SANDBOX_RUNNER', reply.message));
    });
    const lost = (why: string) => {
      if (this.child === child) this.child = undefined;
      for (const waiting of [...this.pending.values()]) waiting.reject(new CodegodError('SANDBOX_RUNNER', `the command runner stopped (${why})`));
    };
    child.on('exit', (code, sig) => lost(sig ?? `exit ${code}`));
    child.on('error', (err) => lost(err.message));
    this.child = child;
    return child;
  }

  /** Keeps the calling process alive only while commands run; lets the helper go when idle. */
  private refresh(): void {
    const child = this.child;
    if (!child) return;
    if (this.pending.size > 0) {
      child.ref();
      child.channel?.ref();
      return;
    }
    child.unref();
    child.channel?.unref();
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.release(), IDLE_MS);
    this.idleTimer.unref();
  }

  /** Lets the helper go (it exits on disconnect); the next command starts a new one. */
  release(): void {
    const child = this.child;
    this.child = undefined;
    if (child?.connected) child.disconnect();
  }
}

/** One helper per process: every sandbox of a worker shares it. */
export const commandHost = new CommandHost();
