/** The names and patterns the policy knows: programs, wrappers, protected paths, raw patterns. */

/** Checks on the raw text, wherever in a command these appear. */
export const RAW_RULES: Array<[RegExp, string]> = [
  [/docker\.sock/, 'refused: the docker socket is off limits'],
  [/\/run\/secrets/, "refused: /run/secrets holds codegod's own secrets"],
  [/\/proc\/\S*environ/, "refused: reading a process's environment (/proc/*/environ)"],
];

export const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'ash', 'mksh', 'fish', 'rbash']);
export const INTERPRETERS = new Set([...SHELLS, 'python', 'perl', 'ruby', 'node', 'nodejs', 'php', 'lua', 'tclsh']);
export const DOWNLOADERS = new Set(['curl', 'wget', 'fetch', 'aria2c', 'http', 'https']);
/** Flags that give an interpreter its program inline, so it does not read one from stdin. */
export const INLINE_CODE_FLAGS = new Set(['-c', '-m', '-e', '-E', '-p', '-r', '--eval', '--print', '--command']);

/** Programs refused whatever their arguments, grouped by the reason an agent is given. */
export const REFUSED_GROUPS: Array<[reason: string, names: string[]]> = [
  ['privilege escalation is not available in the sandbox', ['sudo', 'su', 'doas', 'pkexec', 'runuser', 'run0']],
  [
    'disk and filesystem tools are off limits',
    ['mke2fs', 'mkswap', 'fdisk', 'sfdisk', 'cfdisk', 'gdisk', 'sgdisk', 'parted', 'wipefs', 'blkdiscard'],
  ],
  [
    'disk and filesystem tools are off limits',
    ['swapon', 'swapoff', 'losetup', 'cryptsetup'],
  ],
  ['power control is off limits', ['shutdown', 'reboot', 'halt', 'poweroff', 'kexec']],
  [
    'system administration is off limits',
    ['mount', 'umount', 'chroot', 'nsenter', 'unshare', 'pivot_root', 'insmod', 'rmmod', 'modprobe'],
  ],
  ['firewall rules are off limits', ['iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore', 'nft', 'ebtables']],
  ['user accounts are off limits', ['useradd', 'userdel', 'usermod', 'passwd', 'chpasswd', 'groupadd', 'groupdel', 'visudo']],
  ['scheduled jobs would outlive the task', ['crontab', 'at']],
  ['runlevel changes are off limits', ['telinit']],
  ['it can hit processes outside the sandbox, the worker itself included; kill the PID you started', ['killall', 'pkill']],
  ['it would let a process outlive its command', ['setsid', 'start-stop-daemon', 'daemonize']],
];
export const REFUSED_PROGRAMS = new Map(REFUSED_GROUPS.flatMap(([reason, names]) => names.map((n) => [n, reason] as const)));

export const DOCKER_CLIS = new Set(['docker', 'podman', 'nerdctl', 'docker-compose']);
export const SYSTEMCTL_REFUSED = new Set([
  'poweroff', 'reboot', 'halt', 'kexec', 'suspend', 'hibernate', 'rescue', 'emergency', 'isolate', 'default',
]);

/** python3.12 → python. */
export function baseInterpreter(name: string): string {
  return /^python[0-9.]*$/.test(name) ? 'python' : name;
}

/** How a wrapper takes its own options before the command it runs. */
export interface WrapperSpec {
  /** Options that take a separate value. */
  valueOpts?: string[];
  /** Positional arguments before the wrapped command (timeout's duration, taskset's mask). */
  positional?: number;
  xargs?: boolean;
}

export const WRAPPERS: Record<string, WrapperSpec> = {
  env: { valueOpts: ['-u', '--unset', '-C', '--chdir'] },
  nice: { valueOpts: ['-n', '--adjustment'] },
  nohup: {},
  time: { valueOpts: ['-o', '--output', '-f', '--format'] },
  timeout: { valueOpts: ['-s', '--signal', '-k', '--kill-after'], positional: 1 },
  stdbuf: { valueOpts: ['-i', '-o', '-e', '--input', '--output', '--error'] },
  ionice: { valueOpts: ['-c', '--class', '-n', '--classdata', '-p', '--pid', '-P', '--pgid', '-u', '--uid'] },
  chrt: { positional: 1 },
  taskset: { positional: 1 },
  exec: { valueOpts: ['-a'] },
  command: {},
  builtin: {},
  busybox: {},
  unbuffer: {},
  flock: { valueOpts: ['-w', '--timeout', '-E', '--conflict-exit-code'], positional: 1 },
  watch: { valueOpts: ['-n', '--interval', '-d', '--differences', '-q', '--equexit'] },
  strace: { valueOpts: ['-o', '-e', '-p', '-s', '-u', '-E', '-a', '-b', '-I', '-O', '-S', '-X', '-P'] },
  ltrace: { valueOpts: ['-o', '-e', '-p', '-s', '-u', '-a', '-n'] },
  xargs: {
    valueOpts: [
      '-a', '--arg-file', '-d', '--delimiter', '-E', '-I', '-L', '-n', '--max-args', '-P', '--max-procs', '-s', '--max-chars',
      '--process-slot-var',
    ],
    xargs: true,
  },
};

export const RESERVED = new Set(['if', 'then', 'elif', 'else', 'fi', 'do', 'done', 'while', 'until', '!', '{', '}', 'esac']);
/** Compound commands whose own words are data, not a command (their bodies are separate commands). */
export const DATA_KEYWORDS = new Set(['for', 'select', 'case']);

export const PROTECTED = [
  '/etc', '/boot', '/proc', '/sys', '/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/root', '/run', '/var/run',
  '/var/spool/cron', '/dev',
];
export const HARMLESS_DEVICES = new Set(['/dev/null', '/dev/zero', '/dev/stdout', '/dev/stderr', '/dev/stdin', '/dev/tty']);

/** Redirections that write to their target. */
export const OUTPUT_OPS = new Set(['>', '>>', '>|', '&>', '&>>', '<>', '>&']);
