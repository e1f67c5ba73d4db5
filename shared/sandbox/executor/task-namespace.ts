import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, type Stats, readFileSync, realpathSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { CodegodError } from '../../domain/errors.js';
import type { Logger } from '../../logger.js';
import { DnsRelay, loopbackResolver, readResolvConf, sandboxResolvConf } from './dns-relay.js';
import type { Isolation } from './isolation.js';
import { outboundInterface } from './outbound-interface.js';

type NamespaceIsolation = Extract<Isolation, { tier: 'namespaces' }>;

/** How long the holder and pasta may take to come up. */
const START_MS = 10_000;

/** Directories every command gets as its own empty tmpfs: no host files, no host sockets. */
const PRIVATE_DIRS = ['/tmp', '/var/tmp', '/run', '/var/run', '/dev/shm'];

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

function realPathIf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
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
 * (bound writable), codegod's secrets hidden, `files` bound read-only over their targets, and
 * /proc fresh or, where it is masked, an empty tmpfs.
 */
export function mountArgs(
  workspaceRoot: string,
  workspace: string,
  hide: readonly string[],
  files: ReadonlyArray<readonly [source: string, target: string]> = [],
  proc: 'fresh' | 'hidden' = 'fresh',
): string[] {
  const args = ['--ro-bind', '/', '/', ...(proc === 'fresh' ? ['--proc', '/proc'] : ['--tmpfs', '/proc']), '--dev', '/dev'];
  const covered: string[] = [];
  for (const dir of PRIVATE_DIRS) {
    // /var/run is usually a link to /run, already covered.
    if (lstatIf(dir)?.isDirectory() !== true && dir !== '/dev/shm') continue;
    args.push('--tmpfs', dir);
    covered.push(dir);
  }
  // Through links (/var/run → /run): a tmpfs or /dev/null goes where the file really is.
  for (const path of hide.map((p) => realPathIf(resolve(p)))) {
    if (covered.some((c) => under(path, c)) || under(workspace, path)) continue;
    const stats = lstatIf(path);
    if (stats === undefined) continue;
    // A directory becomes empty; a file becomes /dev/null (empty, and unwritable).
    if (stats.isDirectory()) args.push('--tmpfs', path);
    else args.push('--ro-bind', '/dev/null', path);
    covered.push(path);
  }
  // Files of the task's own (its resolv.conf), read-only; after the tmpfs mounts, where a
  // target that is a link into /run resolves.
  for (const [source, target] of files) args.push('--ro-bind', source, target);
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
    private readonly relay: DnsRelay | undefined,
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
    const { settings } = isolation;
    const scratch = await mkdtemp(join(tmpdir(), 'codegod-ns-'));
    const rootless = process.getuid?.() !== 0;
    let relay: DnsRelay | undefined;
    let mounts = mountArgs(dirs.root, dirs.workspace, settings.hide, [], isolation.proc);
    let cgroup: string | null = null;
    let started: Holder | undefined;
    try {
      if (isolation.pidsCgroup !== null) {
        cgroup = join(isolation.pidsCgroup, `task-${randomBytes(6).toString('hex')}`);
        mkdirSync(cgroup);
        writeFileSync(join(cgroup, 'pids.max'), String(settings.pids));
      }
      if (!rootless) {
        started = await startAsRoot(isolation, mounts, scratch);
      } else {
        let egress: Egress | undefined;
        if (settings.network === 'on') {
          const resolvConf = readResolvConf();
          const resolver = loopbackResolver(resolvConf);
          if (resolver !== null) {
            relay = await DnsRelay.start(resolver);
            const file = join(scratch, 'resolv.conf');
            writeFileSync(file, sandboxResolvConf(resolvConf));
            mounts = mountArgs(dirs.root, dirs.workspace, settings.hide, [[file, '/etc/resolv.conf']], isolation.proc);
          }
          const iface = await outboundInterface(settings.outbound);
          const template = settings.outbound === undefined ? undefined : await outboundInterface(undefined).catch(() => undefined);
          egress = { iface, template: template === iface ? undefined : template, dnsPort: relay?.port };
        }
        started = await startRootless(isolation, mounts, egress);
      }
      return new TaskNamespace(isolation, mounts, started.holder, started.pid, started.pasta, relay, cgroup, scratch, logger);
    } catch (err) {
      started?.pasta?.kill('SIGKILL');
      started?.holder.kill('SIGKILL');
      if (started !== undefined) killQuietly(started.pid);
      relay?.close();
      if (cgroup) await removeCgroup(cgroup);
      rmSync(scratch, { recursive: true, force: true });
      const why = err instanceof Error ? err.message : String(err);
      throw new CodegodError('SANDBOX_UNAVAILABLE', `the task's isolated executor did not start: ${why}`);
    }
  }

  private get asRoot(): boolean {
    return process.getuid?.() === 0;
  }

  /**
   * Joining the holder's namespaces. As non-root, its user namespace too: the one that owns
   * its network and mount namespaces (the holder's bubblewrap runs as that namespace's root
   * and nests none of its own).
   */
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
    // As non-root the caller's /proc belongs to a pid namespace of another user namespace,
    // which bubblewrap (root of the task's user namespace) may not read: a pid namespace and a
    // /proc of the task's own come first. There every capability is dropped for the command.
    // With /proc masked no fresh one can be mounted; bubblewrap then runs in the caller's pid
    // namespace, whose /proc it reads.
    const rootless = this.asRoot || this.isolation.proc === 'hidden' ? [] : [programs.unshare, '--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--'];
    const bwrap = [
      programs.bwrap, '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session',
      ...(this.asRoot ? [] : ['--cap-drop', 'ALL']),
      ...this.mounts, '--chdir', cwd, '--',
    ];
    return ['/bin/sh', '-c', setup, this.cgroup === null ? 'sh' : join(this.cgroup, 'cgroup.procs'), ...this.join(['net']), '--', ...nproc, ...rootless, ...bwrap, ...argv];
  }

  /** The argv that runs a fixed script inside the task's mount namespace (file actions). */
  fileArgv(script: string, args: readonly string[]): string[] {
    return [...this.join(['mnt']), '--', '/bin/sh', '-c', script, 'sh', ...args];
  }

  /** Ends the holder (and so pasta), the DNS relay, and removes the task's cgroup. Idempotent. */
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
    this.relay?.close();
    if (this.cgroup) await removeCgroup(this.cgroup, this.logger);
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

interface Holder {
  holder: ChildProcess;
  /** The holder's sandboxed process (bubblewrap's pid 1 in it). */
  pid: number;
  /** pasta started apart (as root); as non-root pasta is the holder. */
  pasta?: ChildProcess;
}

/** As root: bubblewrap holds the namespaces; pasta attaches to its network namespace. */
async function startAsRoot(isolation: NamespaceIsolation, mounts: string[], scratch: string): Promise<Holder> {
  const { programs, settings } = isolation;
  // PR_SET_PDEATHSIG (setpriv): the holder and pasta die with this process, however it ends.
  const holder = spawn(
    programs.setpriv,
    ['--pdeathsig', 'KILL', '--', programs.bwrap, '--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session', ...mounts, '--info-fd', '3', '--', 'sleep', 'infinity'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } },
  );
  let pid: number | undefined;
  try {
    pid = await holderPid(holder);
    await sandboxReady(pid, holder);
    const pasta = settings.network === 'on' && programs.pasta ? await startPasta(programs, pid, scratch) : undefined;
    return { holder, pid, ...(pasta ? { pasta } : {}) };
  } catch (err) {
    holder.kill('SIGKILL');
    if (pid !== undefined) killQuietly(pid);
    throw err;
  }
}

/** Where a non-root task's connections leave: one interface, and the DNS relay's port if any. */
interface Egress {
  iface: string;
  /** The default route's interface, whose addresses and routes the namespace copies, when it is another. */
  template: string | undefined;
  dnsPort: number | undefined;
}

/**
 * As non-root (the agent container: no capability, uid 10001), the process that creates the
 * user namespace must own the network namespace too, or joining them is refused: pasta starts
 * the holder in its own user and network namespaces (network on), or unshare does (off).
 * Inside, the holder's bubblewrap runs as that user namespace's root and adds the mount, pid,
 * ipc and uts namespaces (and, network off, a network namespace with only loopback up).
 * pasta binds its sockets to one interface (--outbound-if4): the agent container is also on
 * codegod's own networks, which commands must not reach.
 */
async function startRootless(isolation: NamespaceIsolation, mounts: string[], egress: Egress | undefined): Promise<Holder> {
  const { programs } = isolation;
  const unshare = isolation.proc === 'fresh' ? [programs.unshare, '--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--'] : [programs.unshare, '--mount', '--fork', '--kill-child', '--'];
  const bwrap = [programs.bwrap, '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session', ...mounts, '--', 'sleep', 'infinity'];
  let argv: string[];
  if (egress === undefined) {
    argv = [programs.unshare, '--user', '--map-root-user', ...unshare.slice(1, -1), '--', programs.bwrap, '--unshare-net', ...bwrap.slice(1)];
  } else {
    if (!programs.pasta) throw new Error('pasta not found');
    // IPv4 only: the binding to one interface is --outbound-if4's; IPv6 sockets would be unbound.
    const pasta = [
      programs.pasta, '-f', '-q', '--config-net', '-4', '-T', 'none', '-U', egress.dnsPort === undefined ? 'none' : `53:${egress.dnsPort}`,
      '--no-map-gw', '--outbound-if4', egress.iface, ...(egress.template === undefined ? [] : ['-i', egress.template]), '--',
    ];
    // pasta does not pass its death on: the holder gets its own parent-death signal.
    argv = [...pasta, programs.setpriv, '--pdeathsig', 'KILL', '--', ...unshare, ...bwrap];
  }
  const holder = spawn(programs.setpriv, ['--pdeathsig', 'KILL', '--', ...argv], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  let stderr = '';
  holder.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + START_MS;
  for (;;) {
    const pid = holder.pid === undefined ? undefined : sandboxBelow(holder.pid);
    // With the network on, ready once pasta has given the namespace its routes.
    if (pid !== undefined && (egress === undefined || hasDefaultRoute(pid))) return { holder, pid };
    if (holder.exitCode !== null || holder.signalCode !== null) {
      const why = stderr.split('\n').filter((l) => l && !/syslog|IPv6|nameserver/.test(l)).join('; ');
      throw new Error(`${egress === undefined ? 'unshare' : 'pasta'} ended (${holder.signalCode ?? `exit ${holder.exitCode}`})${why ? `: ${why}` : ''}`);
    }
    if (Date.now() > deadline) {
      holder.kill('SIGKILL');
      throw new Error('the holder did not start its sandbox in time');
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The pid of bubblewrap's sandbox below `root`: the parent of the holder's `sleep infinity`, once it runs. */
function sandboxBelow(root: number): number | undefined {
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    for (const child of children(pid)) {
      try {
        if (readFileSync(`/proc/${child}/cmdline`, 'utf8') === 'sleep\0infinity\0') return pid;
      } catch {
        /* gone */
      }
      queue.push(child);
    }
  }
  return undefined;
}

function hasDefaultRoute(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/net/route`, 'utf8').split('\n').some((l) => l.split(/\s+/)[1] === '00000000');
  } catch {
    return false;
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
