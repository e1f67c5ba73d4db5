import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { IsolationOptions } from '../../options.js';

/**
 * Which isolation the kernel gives agent commands here, found once per process by trying it.
 *
 *   namespaces        every command in fresh mount, pid, ipc and uts namespaces (bubblewrap);
 *                     the network of a task through pasta (egress, no host loopback)
 *   namespaces, network off   the same, with only a loopback interface
 *   host              no isolation beyond the policy and path checks (CODEGOD_SANDBOX=host)
 *   unavailable       the kernel refused; agent commands are refused, with the reason and its fix
 */


/** The programs a namespace tier runs, as absolute paths. */
export interface IsolationPrograms {
  bwrap: string;
  nsenter: string;
  prlimit: string;
  setpriv: string;
  unshare: string;
  /** Absent with the network off. */
  pasta?: string;
}

export type Isolation =
  | {
      tier: 'namespaces';
      settings: IsolationOptions;
      programs: IsolationPrograms;
      pidsCgroup: string | null;
      /** `hidden`: /proc is masked here (docker-compose v1, Kubernetes' default procMount), so commands get an empty one, not a fresh one. */
      proc: 'fresh' | 'hidden';
      description: string;
    }
  | { tier: 'host'; settings: IsolationOptions; description: string; warning: string }
  | { tier: 'unavailable'; settings: IsolationOptions; description: string; reason: string };

/** `name` as an executable path: itself when it holds a slash, else the first match on PATH. */
export function findProgram(name: string, path = process.env.PATH ?? ''): string | null {
  const executable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (name.includes('/')) return executable(name) ? name : null;
  for (const dir of path.split(delimiter)) {
    if (dir === '' || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    if (executable(candidate)) return candidate;
  }
  return null;
}

const FIX_HOST = 'or set CODEGOD_SANDBOX=host to run agent commands without isolation';

function run(file: string, args: string[]): Promise<{ ok: boolean; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 10_000, env: { PATH: process.env.PATH ?? '' } }, (err, _stdout, stderr) => {
      resolve({ ok: !err, stderr: String(stderr).trim() || (err ? err.message : '') });
    });
  });
}

/**
 * A pids cgroup codegod may create task groups under: cgroup v2 with the pids controller
 * delegated to the root group, or v1's pids hierarchy. Null where neither is writable; the
 * limit then falls back to RLIMIT_NPROC, which the kernel does not apply to root.
 */
function pidsCgroupBase(): string | null {
  const candidates: string[] = [];
  try {
    if (existsSync('/sys/fs/cgroup/cgroup.subtree_control')) candidates.push('/sys/fs/cgroup/codegod-sandbox');
  } catch {
    /* not v2 */
  }
  if (existsSync('/sys/fs/cgroup/pids/cgroup.procs')) candidates.push('/sys/fs/cgroup/pids/codegod-sandbox');
  for (const base of candidates) {
    try {
      mkdirSync(base, { recursive: true });
      const probe = join(base, `probe-${process.pid}`);
      mkdirSync(probe);
      try {
        writeFileSync(join(probe, 'pids.max'), '16');
      } finally {
        rmdirSync(probe);
      }
      return base;
    } catch {
      /* not writable here */
    }
  }
  return null;
}

function describeNamespaces(s: IsolationOptions, pidsCgroup: string | null, proc: 'fresh' | 'hidden'): string {
  const net = s.network === 'on' ? 'network through pasta (egress, no host loopback)' : 'network off (loopback only)';
  const pids = pidsCgroup !== null ? `${s.pids} processes per task (cgroup)` : process.getuid?.() === 0 ? 'no process limit (root without a writable pids cgroup)' : `${s.pids} processes (RLIMIT_NPROC)`;
  return `namespaces${s.network === 'off' ? ', network off' : ''}: bubblewrap mount/pid/ipc/uts namespaces, ${net}, ${pids}, ${s.memoryMb} MiB heap and ${s.cpuSeconds} CPU s per process${proc === 'hidden' ? ', /proc hidden (masked here, no fresh one)' : ''}`;
}

/** Tries the isolation the settings ask for; never throws. */
export async function detectIsolation(settings: IsolationOptions): Promise<Isolation> {
  if (settings.mode === 'host') {
    return {
      tier: 'host',
      settings,
      description: 'host: agent commands run without namespaces (CODEGOD_SANDBOX=host); only the command policy and path checks stand between them and this machine',
      warning: 'CODEGOD_SANDBOX=host: agent commands run WITHOUT kernel isolation; they can read this machine and reach its services',
    };
  }
  const unavailable = (reason: string): Isolation => ({ tier: 'unavailable', settings, reason, description: `unavailable: ${reason}` });
  const bwrap = findProgram(settings.bwrap);
  if (bwrap === null) return unavailable(`bubblewrap (${settings.bwrap}) not found: install it (apt-get install bubblewrap), ${FIX_HOST}`);
  const tools = { nsenter: findProgram('nsenter'), prlimit: findProgram('prlimit'), setpriv: findProgram('setpriv'), unshare: findProgram('unshare') };
  const missing = Object.entries(tools).filter(([, p]) => p === null).map(([n]) => n);
  if (missing.length > 0) return unavailable(`${missing.join(', ')} not found: install util-linux, ${FIX_HOST}`);
  let pasta: string | undefined;
  if (settings.network === 'on') {
    pasta = findProgram(settings.pasta) ?? undefined;
    if (pasta === undefined) {
      return unavailable(`pasta (${settings.pasta}) not found: install passt (apt-get install passt), or set CODEGOD_SANDBOX_NETWORK=off, ${FIX_HOST}`);
    }
  }
  const probe = (proc: string[]) => run(bwrap, ['--unshare-pid', '--unshare-net', '--die-with-parent', '--ro-bind', '/', '/', ...proc, '--dev', '/dev', '--tmpfs', '/tmp', '--', 'true']);
  let tried = await probe(['--proc', '/proc']);
  let proc: 'fresh' | 'hidden' = 'fresh';
  // A masked /proc (Docker's masked paths) refuses a fresh one; commands can do with an empty one.
  if (!tried.ok && /Can't mount proc/.test(tried.stderr)) {
    const hidden = await probe(['--tmpfs', '/proc']);
    if (hidden.ok) {
      tried = hidden;
      proc = 'hidden';
    }
  }
  if (!tried.ok) {
    const why = tried.stderr.split('\n')[0]?.replace(/^bwrap: /, '') ?? 'failed';
    return unavailable(`bubblewrap cannot create namespaces here (${why}): allow user namespaces (sysctl kernel.unprivileged_userns_clone=1, or a seccomp profile that permits them in a container), ${FIX_HOST}`);
  }
  // pasta starts its command in a pid namespace of its own, whose /proc bubblewrap needs.
  if (proc === 'hidden' && settings.network === 'on' && process.getuid?.() !== 0) {
    return unavailable(`/proc is masked here, so pasta cannot start a task's network as non-root: set CODEGOD_SANDBOX_NETWORK=off, or unmask /proc (security_opt systempaths=unconfined), ${FIX_HOST}`);
  }
  const pidsCgroup = pidsCgroupBase();
  const programs: IsolationPrograms = { bwrap, nsenter: tools.nsenter!, prlimit: tools.prlimit!, setpriv: tools.setpriv!, unshare: tools.unshare!, ...(pasta ? { pasta } : {}) };
  return { tier: 'namespaces', settings, programs, pidsCgroup, proc, description: describeNamespaces(settings, pidsCgroup, proc) };
}

const detected = new Map<string, Promise<Isolation>>();

/** detectIsolation, once per process for the same settings. */
export function isolationFor(settings: IsolationOptions): Promise<Isolation> {
  const key = JSON.stringify(settings);
  let found = detected.get(key);
  if (!found) {
    found = detectIsolation(settings);
    detected.set(key, found);
  }
  return found;
}
