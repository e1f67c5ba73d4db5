import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, type Stats, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { CodegodError } from '../../domain/errors.js';
import type { Logger } from '../../logger.js';
import type { Isolation } from './isolation.js';

type NamespaceIsolation = Extract<Isolation, { tier: 'namespaces' }>;

/** How long the holder and pasta may take to come up. */
const START_MS = 10_000;

/** Directories every command gets as its own empty tmpfs: no host files, no host sockets. */
const PRIVATE_DIRS = ['/tmp', '/var/tmp', '/run', '/var/run', '/dev/shm'];

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

function lstatIf(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The mount arguments shared by a task's holder and its commands: the whole file system
 * read-only, private /tmp-like directories, every build's workspace hidden except this one
 * (bound writable), and codegod's secrets hidden.
 */
export function mountArgs(workspaceRoot: string, workspace: string, hide: readonly string[]): string[] {
  const args = ['--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev'];
  const covered: string[] = [];
  for (const dir of PRIVATE_DIRS) {
    // /var/run is usually a link to /run, already covered.
    if (lstatIf(dir)?.isDirectory() !== true && dir !== '/dev/shm') continue;
    args.push('--tmpfs', dir);
    covered.push(dir);
  }
  for (const path of hide.map((p) => resolve(p))) {
    if (covered.some((c) => under(path, c)) || under(workspace, path)) continue;
    const stats = lstatIf(path);
    if (stats === undefined) continue;
    // A directory becomes empty; a file becomes /dev/null (empty, and unwritable).
    if (stats.isDirectory()) args.push('--tmpfs', path);
    else args.push('--ro-bind', '/dev/null', path);
    covered.push(path);
  }
  // Other builds' workspaces: the root becomes an empty tmpfs with only this build's in it.
  args.push('--tmpfs', workspaceRoot, '--bind', workspace, workspace);
  // The workspace's repository is read-only: git runs a repository's config and hooks
  // (core.fsmonitor, core.hooksPath) for whoever later runs git in it, a person included.
  const repository = join(workspace, '.git');
  if (lstatIf(repository)?.isSymbolicLink() === false) args.push('--ro-bind', repository, repository);
  return args;
}

/**
 * The namespaces of one task: a holder process owns the task's network namespace (with
 * pasta attached when the network is on) and a mount namespace where only the workspace is
 * writable; commands join that network and get their own mount and pid namespaces, file
 * actions run inside the holder's mount namespace. When the holder goes (task end, worker
 * death), pasta goes with it; commands die with their bubblewrap, which dies with its caller.
 */
export class TaskNamespace {
  private closed = false;

  private constructor(
    private readonly isolation: NamespaceIsolation,
    private readonly mounts: string[],
    private readonly holder: ChildProcess,
    /** The holder's sandboxed process, whose /proc/<pid>/ns/* commands and file actions join. */
    readonly pid: number,
    private readonly pasta: ChildProcess | undefined,
    private readonly cgroup: string | null,
    private readonly scratch: string,
    private readonly logger: Logger | undefined,
  ) {}

  /** The workspace's repository when the task found one, bound read-only for its commands. */
  get readOnlyRepository(): string | null {
    // mountArgs binds it last, after the workspace.
    const [flag, path] = this.mounts.slice(-3);
    return flag === '--ro-bind' && path !== undefined && path.endsWith(`${sep}.git`) ? path : null;
  }

  static async start(isolation: NamespaceIsolation, dirs: { root: string; workspace: string }, logger?: Logger): Promise<TaskNamespace> {
    const { programs, settings } = isolation;
    const mounts = mountArgs(dirs.root, dirs.workspace, settings.hide);
    const scratch = await mkdtemp(join(tmpdir(), 'codegod-ns-'));
    let cgroup: string | null = null;
    let holder: ChildProcess | undefined;
    let pasta: ChildProcess | undefined;
    let holderSandbox: number | undefined;
    try {
      if (isolation.pidsCgroup !== null) {
        cgroup = join(isolation.pidsCgroup, `task-${randomBytes(6).toString('hex')}`);
        mkdirSync(cgroup);
        writeFileSync(join(cgroup, 'pids.max'), String(settings.pids));
      }
      // PR_SET_PDEATHSIG (setpriv): the holder and pasta die with this process, however it ends.
      holder = spawn(
        programs.setpriv,
        ['--pdeathsig', 'KILL', '--', programs.bwrap, '--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session', ...mounts, '--info-fd', '3', '--', 'sleep', 'infinity'],
        { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } },
      );
      const pid = await holderPid(holder);
      holderSandbox = pid;
      await sandboxReady(pid, holder);
      if (settings.network === 'on' && programs.pasta) pasta = await startPasta(programs, pid, scratch);
      return new TaskNamespace(isolation, mounts, holder, pid, pasta, cgroup, scratch, logger);
    } catch (err) {
      pasta?.kill('SIGKILL');
      holder?.kill('SIGKILL');
      if (holderSandbox !== undefined) killQuietly(holderSandbox);
      if (cgroup) await removeCgroup(cgroup);
      rmSync(scratch, { recursive: true, force: true });
      const why = err instanceof Error ? err.message : String(err);
      throw new CodegodError('SANDBOX_UNAVAILABLE', `the task's isolated executor did not start: ${why}`);
    }
  }

  private get asRoot(): boolean {
    return process.getuid?.() === 0;
  }

  /** Joining the holder's namespaces: as non-root, its user namespace first. */
  private join(kinds: Array<'net' | 'mnt'>): string[] {
    const args = [this.isolation.programs.nsenter];
    if (!this.asRoot) args.push(`--user=/proc/${this.pid}/ns/user`, '--preserve-credentials');
    for (const kind of kinds) args.push(kind === 'net' ? `--net=/proc/${this.pid}/ns/net` : `--mount=/proc/${this.pid}/ns/mnt`);
    return args;
  }

  /**
   * The argv that runs `argv` as a command of this task in `cwd`: in the task's pids cgroup,
   * the task's network, with per-process limits, in fresh mount and pid namespaces that end
   * with it (setsid'd daemons included).
   */
  commandArgv(argv: readonly string[], cwd: string): string[] {
    const { programs, settings } = this.isolation;
    // One shell sets what every process of the command inherits — the task's pids cgroup, the
    // heap and CPU limits (ulimit -d and -t read alike in dash, bash and busybox) — and then
    // becomes the rest: an exec fewer than prlimit, which only a count without a cgroup needs.
    const setup = [this.cgroup === null ? ':' : 'echo 0 > "$0"', `ulimit -d ${settings.memoryMb * 1024}`, `ulimit -t ${settings.cpuSeconds}`, 'exec "$@"'].join(' && ');
    const nproc = this.cgroup === null ? [programs.prlimit, `--nproc=${settings.pids}`, '--'] : [];
    const bwrap = [
      programs.bwrap, '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session',
      ...this.mounts, '--chdir', cwd, '--',
    ];
    return ['/bin/sh', '-c', setup, this.cgroup === null ? 'sh' : join(this.cgroup, 'cgroup.procs'), ...this.join(['net']), '--', ...nproc, ...bwrap, ...argv];
  }

  /** The argv that runs a fixed script inside the task's mount namespace (file actions). */
  fileArgv(script: string, args: readonly string[]): string[] {
    return [...this.join(['mnt']), '--', '/bin/sh', '-c', script, 'sh', ...args];
  }

  /** Ends the holder (and so pasta) and removes the task's cgroup. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const ended = (child: ChildProcess | undefined) =>
      child === undefined || child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((done) => child.once('exit', () => done()));
    this.pasta?.kill('SIGKILL');
    this.holder.kill('SIGKILL');
    // Its pid 1 too: killing it ends the whole pid namespace, whatever state bubblewrap was in.
    killQuietly(this.pid);
    await Promise.all([ended(this.pasta), ended(this.holder)]);
    if (this.cgroup) await removeCgroup(this.cgroup, this.logger);
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/**
 * Waits until the sandbox's pid 1 has started its program: its mounts are in place and its
 * parent-death signal is set (before that, pasta cannot open its namespace, and a holder whose
 * bubblewrap is killed could outlive it).
 */
async function sandboxReady(pid: number, holder: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_MS;
  for (;;) {
    try {
      if (readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim() !== '') return;
    } catch {
      /* not there yet, or gone: decided below */
    }
    if (holder.exitCode !== null || holder.signalCode !== null) throw new Error('bubblewrap ended while starting');
    if (Date.now() > deadline) throw new Error('bubblewrap did not start its sandbox in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The holder's sandboxed pid, from bubblewrap's info fd. */
function holderPid(holder: ChildProcess): Promise<number> {
  return new Promise((resolvePid, reject) => {
    let info = '';
    let stderr = '';
    const timer = setTimeout(() => reject(new Error('bubblewrap did not report its sandbox in time')), START_MS);
    holder.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const infoFd = holder.stdio[3] as NodeJS.ReadableStream | null;
    infoFd?.on('data', (chunk: Buffer) => {
      info += chunk.toString();
      const pid = Number(/"child-pid"\s*:\s*(\d+)/.exec(info)?.[1]);
      if (pid > 0) {
        clearTimeout(timer);
        resolvePid(pid);
      }
    });
    holder.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    holder.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`bubblewrap ended (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n')[0] ?? ''}`));
    });
  });
}

/** pasta on the holder's network namespace: outbound only (-T/-U none), host loopback and gateway not mapped. */
async function startPasta(programs: NamespaceIsolation['programs'], pid: number, scratch: string): Promise<ChildProcess> {
  const pidFile = join(scratch, 'pasta.pid');
  const args = ['--pdeathsig', 'KILL', '--', programs.pasta!, '-f', '-q', '--config-net', '-P', pidFile, '-T', 'none', '-U', 'none', '--no-map-gw'];
  if (process.getuid?.() === 0) args.push('--runas', '0', '--netns', `/proc/${pid}/ns/net`);
  else args.push('--userns', `/proc/${pid}/ns/user`, '--netns', `/proc/${pid}/ns/net`);
  const pasta = spawn(programs.setpriv, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  let stderr = '';
  pasta.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + START_MS;
  // pasta writes its pid file once the namespace's interface is configured.
  while (!existsSync(pidFile) || readFileSync(pidFile, 'utf8').trim() === '') {
    if (pasta.exitCode !== null || pasta.signalCode !== null) {
      const why = stderr.split('\n').filter((l) => l && !l.startsWith('Failed to send')).join('; ');
      throw new Error(`pasta ended (${pasta.signalCode ?? `exit ${pasta.exitCode}`})${why ? `: ${why}` : ''}`);
    }
    if (Date.now() > deadline) {
      pasta.kill('SIGKILL');
      throw new Error('pasta did not configure the network in time');
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return pasta;
}

async function removeCgroup(dir: string, logger?: Logger): Promise<void> {
  // The group empties as its last process is reaped; give stragglers a moment.
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      const procs = (() => {
        try {
          return readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim();
        } catch {
          return '';
        }
      })();
      for (const p of procs.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(p), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  logger?.warn({ cgroup: dir, parent: dirname(dir) }, 'task cgroup not removed');
}
