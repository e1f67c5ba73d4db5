import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { shellScript } from './shell/script.js';

/**
 * Starting and watching one command: the part of the sandbox that forks. It runs in a small
 * helper process (command-host.ts), not in the worker: fork() copies the calling process's
 * page tables, so its cost grows with the caller's memory (about 1.4 ms at 44 MB, 7 ms at
 * 145 MB, 32 ms at 349 MB measured), and it blocks that process's event loop — in a worker,
 * every other task's LLM calls and checkpoints with it. The policy, path and environment
 * checks stay in the sandbox; requests arrive here already checked.
 */
const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';

/** A checked command, as plain data (it crosses a process boundary). */
export interface SpawnRequest {
  command: string;
  args: string[];
  shell: boolean;
  cwd: string;
  env: Record<string, string>;
  input?: string | undefined;
  timeoutMs: number;
  killGraceMs: number;
  outputCapBytes: number;
}

export interface CommandResult {
  /** Null when the process was ended by a signal. */
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
  /** Whether stdout or stderr was clipped to the output cap. */
  truncated: boolean;
}

export interface SpawnOutcome {
  result: CommandResult;
  stdoutBytes: number;
  stderrBytes: number;
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Keeps the first and last halves of a stream up to `cap` bytes, counting what falls between. */
class HeadTail {
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  private readonly tail: Buffer[] = [];
  private tailBytes = 0;
  total = 0;

  constructor(private readonly cap: number) {}

  private get headCap(): number {
    return Math.ceil(this.cap / 2);
  }

  private get tailCap(): number {
    return this.cap - this.headCap;
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const room = this.headCap - this.headBytes;
    if (room > 0) {
      const part = chunk.subarray(0, room);
      this.head.push(part);
      this.headBytes += part.length;
      chunk = chunk.subarray(part.length);
    }
    if (chunk.length === 0) return;
    this.tail.push(chunk);
    this.tailBytes += chunk.length;
    while (this.tail.length > 1 && this.tailBytes - this.tail[0]!.length >= this.tailCap) {
      this.tailBytes -= this.tail.shift()!.length;
    }
  }

  get clipped(): boolean {
    return this.total > this.cap;
  }

  text(): string {
    const head = Buffer.concat(this.head);
    const tail = Buffer.concat(this.tail);
    if (!this.clipped) return Buffer.concat([head, tail]).toString('utf8');
    const kept = tail.subarray(tail.length - this.tailCap);
    const skipped = this.total - head.length - kept.length;
    return `${head.toString('utf8')}\n…[clipped ${skipped} bytes]…\n${kept.toString('utf8')}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Process groups

/** Process groups of running commands → the run that owns them, so a stale kill never hits a reused id. */
const liveGroups = new Map<number, symbol>();
let exitHookInstalled = false;

/** Sends a signal to a whole process group; false when the group no longer exists. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Commands are detached (their own group), so they would outlive a worker that exits: take them along. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pgid of liveGroups.keys()) signalGroup(pgid, 'SIGKILL');
  });
}

/** Runs one command to its end: timeout and cancel stop its whole process group. */
export async function spawnCommand(req: SpawnRequest, signal?: AbortSignal): Promise<SpawnOutcome> {
  const opts = { ...req, signal };
  const { cwd, env } = req;
  const started = performance.now();
  if (opts.signal?.aborted) {
    const result: CommandResult = {
      exitCode: null,
      signal: null,
      stdout: '',
      stderr: '',
      timedOut: false,
      cancelled: true,
      durationMs: 0,
      truncated: false,
    };
    return { result, stdoutBytes: 0, stderrBytes: 0 };
  }

  const subprocess = execa(opts.shell ? shellScript(opts.command, opts.args) : opts.command, opts.shell ? [] : opts.args, {
    cwd,
    env,
    extendEnv: false,
    shell: opts.shell ? SHELL : false,
    detached: true,
    cleanup: false,
    reject: false,
    buffer: false,
    stripFinalNewline: false,
    ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input }),
  });
  const stdout = new HeadTail(req.outputCapBytes);
  const stderr = new HeadTail(req.outputCapBytes);
  subprocess.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  subprocess.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));

  const pid = subprocess.pid;
  const owner = Symbol('run');
  let stopping = false;
  let timedOut = false;
  let cancelled = false;
  const stopGroup = (): void => {
    if (pid === undefined || stopping) return;
    stopping = true;
    if (!signalGroup(pid, 'SIGTERM')) return;
    setTimeout(() => {
      if (liveGroups.get(pid) !== owner) return;
      signalGroup(pid, 'SIGKILL');
      liveGroups.delete(pid);
    }, req.killGraceMs).unref();
  };
  if (pid !== undefined) {
    installExitHook();
    liveGroups.set(pid, owner);
  }
  subprocess.once('exit', stopGroup);
  const timer = setTimeout(() => {
    timedOut = true;
    stopGroup();
  }, req.timeoutMs);
  const onAbort = (): void => {
    cancelled = true;
    stopGroup();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  let result: Awaited<typeof subprocess>;
  try {
    result = await subprocess;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    // A member that ignored SIGTERM is left to the pending SIGKILL; otherwise the group is gone.
    if (pid !== undefined && !signalGroup(pid, 0)) liveGroups.delete(pid);
  }

  let exitCode = result.exitCode ?? null;
  let stderrText = stderr.text();
  if (pid === undefined) {
    // The program could not be started at all; answer the way a shell would.
    const code = errnoCode(result);
    exitCode = code === 'ENOENT' ? 127 : 126;
    const why =
      code === 'ENOENT' ? 'command not found'
      : code === 'EACCES' ? 'permission denied'
      : (result.shortMessage ?? 'cannot start').split('\n')[0];
    stderrText += `${opts.command}: ${why}\n`;
  }
  return {
    result: {
      exitCode,
      signal: result.signal ?? null,
      stdout: stdout.text(),
      stderr: stderrText,
      timedOut,
      cancelled,
      durationMs: Math.round(performance.now() - started),
      truncated: stdout.clipped || stderr.clipped,
    },
    stdoutBytes: stdout.total,
    stderrBytes: stderr.total,
  };
}
