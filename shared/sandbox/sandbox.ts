import { randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readlink, realpath, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import type { AuditEntryInput, AuditSink } from '../telemetry/audit.js';
import { commandHost } from './command-host.js';
import type { CommandResult } from './command-runner.js';
import { checkCommand, checkEnvironment } from './policy/check.js';
import { shellScript } from './shell/script.js';
import { disarmRepositoriesOp, listOp, OP_EXIT, readOp, statOp, writeOp, type OpRunner } from './executor/file-ops.js';
import { isolationFor, type Isolation } from './executor/isolation.js';
import { TaskNamespace } from './executor/task-namespace.js';
import { ConfigSchema } from '../config.js';
import type { SandboxOptions } from '../options.js';
import { CodegodError } from '../domain/errors.js';
import type { Logger } from '../logger.js';

/**
 * The sandbox every agent action goes through: one workspace directory per build, every path
 * checked against it (no absolute paths, no `..` or symlink escapes: clear refusals the LLM
 * can learn from), every command checked by the command policy before anything is spawned,
 * run with a scrubbed environment, a timeout, cancellation and an output cap, and recorded in
 * the audit stream. Those checks are the first filter; the wall is the task's isolated
 * executor (executor/): with the `namespaces` tier every command and file action runs in
 * Linux namespaces where only this workspace is writable and nothing of codegod is visible.
 */

/** Largest file one write may create. */
export const MAX_WRITE_BYTES = 5 * 1024 * 1024;
/** What readFile returns at most unless asked for more. */
export const DEFAULT_READ_BYTES = 256 * 1024;
/** Where commands get their HOME and TMPDIR, inside the workspace. */
export const SANDBOX_DIR = '.codegod';
/** Directories listFiles shows but does not descend into unless asked. */
export const COLLAPSED_DIRS = new Set([
  'node_modules', '.git', 'venv', '.venv', '__pycache__', '.mypy_cache', '.pytest_cache', SANDBOX_DIR,
]);

const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
/** Bytes a listing may produce inside the executor before it is cut. */
const LIST_OUTPUT_BYTES = 8 * 1024 * 1024;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const BUILD_DIR_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** Longest command text kept in an audit entry. */
const AUDIT_TEXT_CHARS = 4_096;

const DEFAULT_TIMEOUT_MS = ConfigSchema.shape.CODEGOD_COMMAND_TIMEOUT_MS.parse(undefined);
const DEFAULT_OUTPUT_CAP = ConfigSchema.shape.CODEGOD_OUTPUT_CAP_BYTES.parse(undefined);

// ---------------------------------------------------------------------------------------------
// Environment

/** Variables whose names mark them as secrets; never passed to a command. */
const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|CREDENTIALS?|_KEY)$/i;
/** codegod's own connection settings (REDIS_URL may carry a password). */
const WORKER_SETTING = /^(REDIS_|LLM_)/i;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The variables codegod itself reads secrets from. */
export const SECRET_ENV_NAMES = ['REDIS_PASSWORD', 'LLM_API_KEY', 'CODEGOD_API_TOKEN'] as const;

export function isSecretEnvName(name: string): boolean {
  return SECRET_NAME.test(name) || SECRET_NAME.test(name.replace(/_FILE$/i, '')) || WORKER_SETTING.test(name);
}

/**
 * Deletes secret variables from this process's environment once the config has been loaded,
 * so nothing this process spawns later can inherit them. Returns the names it removed.
 *
 * It cannot hide them from /proc/<pid>/environ: that file shows the environment the process
 * was started with (the kernel's copy, which unsetenv does not touch), and any process of the
 * same user — an agent's command included — can read it. That is why deployments pass secrets
 * as REDIS_PASSWORD_FILE / LLM_API_KEY_FILE, which config.ts reads at start-up, and why the
 * command policy refuses commands that read a process's environ file.
 */
export function scrubProcessEnv(names: readonly string[] = SECRET_ENV_NAMES): string[] {
  const removed: string[] = [];
  for (const name of names) {
    if (name in process.env) {
      delete process.env[name];
      removed.push(name);
    }
  }
  return removed;
}

/** The environment a command runs with: an allowlist, plus the caller's variables minus secrets. */
function commandEnv(
  dirs: { home: string; tmp: string },
  extra: Readonly<Record<string, string>>,
  dockerHost: string | undefined,
): { env: Record<string, string>; dropped: string[] } {
  const env: Record<string, string> = {
    PATH: process.env.PATH || DEFAULT_PATH,
    HOME: dirs.home,
    TMPDIR: dirs.tmp,
    LANG: process.env.LANG || 'C.UTF-8',
    TERM: 'dumb',
    NO_COLOR: '1',
  };
  if (process.env.LC_ALL) env.LC_ALL = process.env.LC_ALL;
  if (dockerHost) env.DOCKER_HOST = dockerHost;
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(extra)) {
    if (!ENV_NAME.test(name) || isSecretEnvName(name)) dropped.push(name);
    else env[name] = value;
  }
  return { env, dropped };
}

// ---------------------------------------------------------------------------------------------
// Output capture

// ---------------------------------------------------------------------------------------------
// Paths

function inside(abs: string, root: string): boolean {
  return abs === root || abs.startsWith(root.endsWith(sep) ? root : root + sep);
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Where `abs` really leads: symlinks in the part that exists are resolved (dangling ones too,
 * by following their target), the part that does not exist yet is appended as it is.
 */
async function realLocation(abs: string): Promise<string> {
  const tail: string[] = [];
  let cur = abs;
  for (let hops = 0; ; ) {
    try {
      return join(await realpath(cur), ...tail);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
    const isLink = await lstat(cur).then(
      (s) => s.isSymbolicLink(),
      () => false,
    );
    if (isLink) {
      if (++hops > 40) throw Object.assign(new Error('too many symlinks'), { code: 'ELOOP' });
      cur = resolve(dirname(cur), await readlink(cur));
      continue;
    }
    const parent = dirname(cur);
    if (parent === cur) return join(cur, ...tail);
    tail.unshift(basename(cur));
    cur = parent;
  }
}

/** A path as an agent wrote it, safe to put in a message. */
function shown(p: string): string {
  return JSON.stringify(p).slice(1, -1);
}

// ---------------------------------------------------------------------------------------------
// The sandbox

/** One build's sandbox; forBuild's argument. */
export interface BuildSandboxOptions {
  /** Directory holding every build's workspace (CODEGOD_WORKSPACE_ROOT). */
  root: string;
  buildId: string;
  sink: AuditSink;
  taskId?: string;
  agentId?: string;
  /** Default limit of one command (CODEGOD_COMMAND_TIMEOUT_MS). */
  commandTimeoutMs?: number;
  /** Bytes of stdout and of stderr kept per command (CODEGOD_OUTPUT_CAP_BYTES). */
  outputCapBytes?: number;
  /** Docker endpoint handed to commands as DOCKER_HOST (CODEGOD_DOCKER_HOST); without it docker is refused. */
  dockerHost?: string;
  /** Time between SIGTERM and SIGKILL when a command's process group is stopped. */
  killGraceMs?: number;
  /**
   * The isolation commands and file actions get (executor/isolation.ts). Without it they run
   * on the host, as CODEGOD_SANDBOX=host would: only for callers that isolate otherwise.
   */
  isolation?: Isolation;
  logger?: Logger;
}

export const RunOptionsSchema = z.object({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  /** Working directory relative to the workspace. */
  cwd: z.string().min(1).optional(),
  timeoutMs: z.number().int().positive().optional(),
  signal: z.instanceof(AbortSignal).optional(),
  env: z.record(z.string(), z.string()).default({}),
  /** Run `command` (and `args`, joined with spaces) as a bash script instead of a program. */
  shell: z.boolean().default(false),
  input: z.string().optional(),
});

export type RunOptions = z.input<typeof RunOptionsSchema>;

export interface RunResult extends CommandResult {
  /** Variables of `env` that were withheld because they name secrets. */
  droppedEnv: string[];
}

export type FileType = 'file' | 'dir' | 'symlink' | 'other';

export interface FileEntry {
  /** Relative to the workspace, `/`-separated. */
  path: string;
  type: FileType;
  size: number;
  /** A directory listed without its contents (node_modules, .git, virtualenvs). */
  collapsed?: true;
}

export interface FileStat {
  path: string;
  type: FileType;
  size: number;
  mtimeMs: number;
}

export interface ListOptions {
  /** Levels below the listed directory; 1 lists its entries only. */
  depth?: number;
  /** Most entries returned. */
  max?: number;
  /** Descend into node_modules, .git and the like too. */
  all?: boolean;
}

interface Limits {
  commandTimeoutMs: number;
  outputCapBytes: number;
  dockerHost: string | undefined;
  killGraceMs: number;
}

/** The task's executor, shared by the sandbox's forTask views; started on first use. */
class Executor {
  private started: Promise<TaskNamespace> | undefined;
  private closed = false;

  constructor(
    readonly isolation: Isolation | undefined,
    private readonly dirs: { root: string; workspace: string },
    private readonly logger: Logger | undefined,
  ) {}

  /** Null on the host tier; throws SANDBOX_UNAVAILABLE where isolation was asked for but cannot be had. */
  namespace(): Promise<TaskNamespace> | null {
    const iso = this.isolation;
    if (iso === undefined || iso.tier === 'host') return null;
    if (iso.tier === 'unavailable') throw new CodegodError('SANDBOX_UNAVAILABLE', `agent commands are refused: ${iso.reason}`);
    if (this.closed) throw new CodegodError('SANDBOX_UNAVAILABLE', "the task's isolated executor is closed");
    if (!this.started) {
      this.started = TaskNamespace.start(iso, this.dirs, this.logger);
      // A failed start is not cached: the next action tries again.
      this.started.catch(() => (this.started = undefined));
    }
    return this.started;
  }

  /** The task's namespace if it was started; never starts one. */
  get current(): Promise<TaskNamespace> | undefined {
    return this.started;
  }

  async close(): Promise<void> {
    this.closed = true;
    const started = this.started;
    this.started = undefined;
    if (started) await (await started.catch(() => null))?.close();
  }
}

function fileType(s: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): FileType {
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isDirectory()) return 'dir';
  return s.isFile() ? 'file' : 'other';
}

const clipText = (s: string): string => (s.length > AUDIT_TEXT_CHARS ? `${s.slice(0, AUDIT_TEXT_CHARS)}…` : s);

export class Sandbox {
  private constructor(
    /** Real path of this build's workspace. */
    readonly workspace: string,
    readonly buildId: string,
    private readonly sink: AuditSink,
    private readonly limits: Limits,
    private readonly context: { taskId?: string; agentId?: string },
    private readonly logger: Logger | undefined,
    private readonly executor: Executor,
  ) {}

  /** Creates (mkdir -p) and opens the workspace `<root>/<buildId>`. */
  static async forBuild(options: BuildSandboxOptions): Promise<Sandbox> {
    if (!BUILD_DIR_NAME.test(options.buildId)) {
      throw new CodegodError('SANDBOX_PATH', `${shown(options.buildId)}: not usable as a workspace directory name`);
    }
    const dir = resolve(options.root, options.buildId);
    await mkdir(dir, { recursive: true });
    const workspace = await realpath(dir);
    await mkdir(join(workspace, SANDBOX_DIR, 'home'), { recursive: true });
    await mkdir(join(workspace, SANDBOX_DIR, 'tmp'), { recursive: true });
    const limits: Limits = {
      commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      outputCapBytes: options.outputCapBytes ?? DEFAULT_OUTPUT_CAP,
      dockerHost: options.dockerHost,
      killGraceMs: options.killGraceMs ?? 2_000,
    };
    const context = { taskId: options.taskId, agentId: options.agentId };
    const root = await realpath(resolve(options.root));
    const executor = new Executor(options.isolation, { root, workspace }, options.logger);
    return new Sandbox(workspace, options.buildId, options.sink, limits, context, options.logger, executor);
  }

  /** The build's sandbox with the deployment's limits and isolation (detected once per process). */
  static async fromOptions(
    deployment: SandboxOptions,
    options: Pick<BuildSandboxOptions, 'buildId' | 'sink' | 'taskId' | 'agentId' | 'logger'>,
  ): Promise<Sandbox> {
    return Sandbox.forBuild({
      ...options,
      root: deployment.workspaceRoot,
      commandTimeoutMs: deployment.commandTimeoutMs,
      outputCapBytes: deployment.outputCapBytes,
      dockerHost: deployment.dockerHost,
      isolation: await isolationFor(deployment.isolation),
    });
  }

  /** The same workspace and executor, recording its actions under another task and agent. */
  forTask(context: { taskId?: string; agentId?: string }): Sandbox {
    return new Sandbox(this.workspace, this.buildId, this.sink, this.limits, context, this.logger, this.executor);
  }

  /** The Docker endpoint commands get as DOCKER_HOST; without one, docker is refused. */
  get dockerHost(): string | undefined {
    return this.limits.dockerHost;
  }

  /** The isolation in force, for logs and refusals. */
  get isolation(): Isolation | undefined {
    return this.executor.isolation;
  }

  /**
   * Stops the task's executor: nothing a command of this sandbox started survives it. Before
   * that, any git repository the task's commands made is disarmed (the workspace's own
   * .git, if it had one, was read-only to them).
   */
  async close(): Promise<void> {
    const current = this.executor.current;
    if (current) {
      try {
        const ns = await current;
        const ops = await this.nsOps();
        const disarmed = ops ? await disarmRepositoriesOp(ops, this.workspace, ns.readOnlyRepository) : [];
        if (disarmed.length > 0) this.logger?.warn({ ...this.definedContext(), disarmed: disarmed.map((p) => this.relative(p)) }, 'disarmed git repositories made by agent commands');
      } catch (err) {
        this.logger?.warn({ ...this.definedContext(), err: err instanceof Error ? err.message : String(err) }, 'could not check the workspace for repositories made by agent commands');
      }
    }
    return this.executor.close();
  }

  /** Runs a fixed file-action script inside the task's mount namespace. */
  private async nsOps(): Promise<OpRunner | null> {
    const pending = this.executor.namespace();
    if (pending === null) return null;
    const ns = await pending;
    return async (script, args, options = {}) => {
      const [command, ...rest] = ns.fileArgv(script, args);
      const { result } = await commandHost.run({
        command: command!,
        args: rest,
        shell: false,
        cwd: '/',
        env: { PATH: DEFAULT_PATH, LANG: 'C.UTF-8' },
        input: options.input,
        timeoutMs: this.limits.commandTimeoutMs,
        killGraceMs: this.limits.killGraceMs,
        outputCapBytes: options.capBytes ?? 64 * 1024,
      });
      return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
    };
  }

  private audit(entry: AuditEntryInput): Promise<void> {
    return this.sink.record({ ...entry, ...this.definedContext() });
  }

  private definedContext(): { taskId?: string; agentId?: string } {
    const out: { taskId?: string; agentId?: string } = {};
    if (this.context.taskId) out.taskId = this.context.taskId;
    if (this.context.agentId) out.agentId = this.context.agentId;
    return out;
  }

  /** Path relative to the workspace, for messages and audit entries. */
  relative(abs: string): string {
    return relative(this.workspace, abs).split(sep).join('/') || '.';
  }

  // --- paths -----------------------------------------------------------------------------------

  /**
   * The real absolute path of `rel`, a path relative to the workspace. Refused
   * (SANDBOX_PATH): empty, NUL bytes, absolute, `~`, `..` escapes, and anything whose existing
   * part leads outside the workspace through a symlink.
   */
  async resolvePath(rel: string): Promise<string> {
    const refuse = (reason: string) => new CodegodError('SANDBOX_PATH', `${shown(rel)}: ${reason}`);
    if (typeof rel !== 'string' || rel === '') throw refuse('empty path');
    if (rel.includes('\0')) throw refuse('contains a NUL byte');
    if (rel.startsWith('/')) throw refuse('absolute paths are not allowed; use a path relative to the workspace');
    if (rel.startsWith('~')) throw refuse("'~' is not expanded; use a path relative to the workspace");
    const lexical = resolve(this.workspace, rel);
    if (!inside(lexical, this.workspace)) throw refuse('escapes the workspace');
    let real: string;
    try {
      real = await realLocation(lexical);
    } catch (err) {
      throw refuse(`cannot be resolved (${errnoCode(err) ?? 'error'})`);
    }
    if (!inside(real, this.workspace)) throw refuse('leads outside the workspace through a symlink');
    return real;
  }

  async exists(rel: string): Promise<boolean> {
    return (await this.lookup(rel)) !== null;
  }

  async stat(rel: string): Promise<FileStat> {
    const found = await this.lookup(rel);
    if (found === null) throw this.fileError(rel, Object.assign(new Error('missing'), { code: 'ENOENT' }));
    return found;
  }

  /** The file's stat, or null when it does not exist (one look, inside the executor when there is one). */
  async lookup(rel: string): Promise<FileStat | null> {
    const abs = await this.resolvePath(rel);
    const ops = await this.nsOps();
    if (ops) {
      const s = await statOp(ops, abs).catch((err: unknown) => {
        throw this.fileError(rel, err);
      });
      return s && { path: this.relative(abs), type: s.type, size: s.size, mtimeMs: s.mtimeMs };
    }
    try {
      const s = await lstat(abs);
      return { path: this.relative(abs), type: fileType(s), size: s.size, mtimeMs: s.mtimeMs };
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw this.fileError(rel, err);
    }
  }

  /** A text file's contents, the first `maxBytes` of it with a note when it is longer. */
  async readFile(rel: string, options: { maxBytes?: number } = {}): Promise<string> {
    const maxBytes = options.maxBytes ?? DEFAULT_READ_BYTES;
    const abs = await this.resolvePath(rel);
    const clipNote = (size: number) => `\n…[clipped: showing the first ${maxBytes} of ${size} bytes]…\n`;
    const ops = await this.nsOps();
    if (ops) {
      const read = await readOp(ops, abs, maxBytes);
      if ('refused' in read) throw this.opRefusal(rel, read);
      return read.size > maxBytes ? `${read.text}${clipNote(read.size)}` : read.text;
    }
    // O_NOFOLLOW: a symlink swapped in after the check is refused; O_NONBLOCK: a FIFO never blocks.
    const handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: unknown) => {
      throw this.fileError(rel, err);
    });
    try {
      const s = await handle.stat();
      if (!s.isFile()) throw new CodegodError('SANDBOX_PATH', `${shown(rel)}: not a regular file`);
      const buf = Buffer.alloc(Math.min(s.size, maxBytes));
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      const text = buf.subarray(0, filled).toString('utf8');
      return s.size > maxBytes ? `${text}${clipNote(s.size)}` : text;
    } finally {
      await handle.close();
    }
  }

  /**
   * Writes a file (creating its directories), refusing escapes and anything over
   * MAX_WRITE_BYTES. The content goes to a temporary file beside the target, renamed over it
   * once complete: a process killed mid-write leaves the old file or the new one, never half
   * of it (a stray `.<name>.<id>.partial` at worst).
   */
  async writeFile(rel: string, content: string | Uint8Array): Promise<{ path: string; bytes: number }> {
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
    let path: string;
    try {
      path = await this.writeConfined(rel, data);
    } catch (err) {
      if (err instanceof CodegodError) {
        await this.audit({ type: 'file.refused', path: clipText(rel), reason: err.message });
      }
      throw err;
    }
    await this.audit({ type: 'file.write', path, bytes: data.length });
    return { path, bytes: data.length };
  }

  private async writeConfined(rel: string, data: Buffer): Promise<string> {
    if (data.length > MAX_WRITE_BYTES) {
      const reason = `${data.length} bytes is more than one write may hold (${MAX_WRITE_BYTES})`;
      throw new CodegodError('SANDBOX_POLICY', `${shown(rel)}: ${reason}`);
    }
    const abs = await this.resolvePath(rel);
    if (abs === this.workspace) throw new CodegodError('SANDBOX_PATH', `${shown(rel)}: is the workspace itself`);
    if (this.relative(abs).split('/').includes('.git')) {
      throw new CodegodError('SANDBOX_POLICY', `${shown(rel)}: files under .git/ are not written by agents (git's config and hooks run code); use git commands for history`);
    }
    const partName = `.${basename(abs)}.${randomBytes(4).toString('hex')}.partial`;
    const ops = await this.nsOps();
    if (ops) {
      const written = await writeOp(ops, dirname(abs), basename(abs), partName, data);
      if ('refused' in written) throw this.opRefusal(rel, written);
      const target = join(written.realDir, basename(abs));
      if (!inside(target, this.workspace)) throw new CodegodError('SANDBOX_PATH', `${shown(rel)}: leads outside the workspace through a symlink`);
      return this.relative(target);
    }
    const parent = await mkdir(dirname(abs), { recursive: true })
      .then(() => realpath(dirname(abs)))
      .catch((err: unknown) => {
        throw this.fileError(rel, err);
      });
    // Checked again after mkdir: a command running alongside may have swapped a directory for a symlink.
    if (!inside(parent, this.workspace)) {
      throw new CodegodError('SANDBOX_PATH', `${shown(rel)}: leads outside the workspace through a symlink`);
    }
    const target = join(parent, basename(abs));
    const existing = await lstat(target).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return null;
      throw this.fileError(rel, err);
    });
    if (existing?.isSymbolicLink()) throw this.fileError(rel, Object.assign(new Error('symlink'), { code: 'ELOOP' }));
    if (existing && !existing.isFile()) throw new CodegodError('SANDBOX_PATH', `${shown(rel)}: ${existing.isDirectory() ? 'is a directory' : 'not a regular file'}`);
    if (existing && existing.nlink > 1) throw this.opRefusal(rel, { refused: OP_EXIT.hardLink, stderr: '' });
    const partial = join(parent, partName);
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const handle = await open(partial, flags, 0o666).catch((err: unknown) => {
      throw this.fileError(rel, err);
    });
    try {
      try {
        await handle.writeFile(data);
      } finally {
        await handle.close();
      }
      // A rewritten script keeps its mode (an executable stays executable).
      if (existing) await chmod(partial, existing.mode & 0o7777);
      await rename(partial, target);
    } catch (err) {
      await unlink(partial).catch(() => undefined);
      throw err instanceof CodegodError ? err : this.fileError(rel, err);
    }
    return this.relative(target);
  }

  /** A file script's refusal, worded like the host path's. */
  private opRefusal(rel: string, op: { refused: number; stderr: string }): CodegodError {
    const reason =
      op.refused === OP_EXIT.missing ? 'no such file or directory'
      : op.refused === OP_EXIT.symlink ? 'is a symlink'
      : op.refused === OP_EXIT.notFile ? 'not a regular file'
      : op.refused === OP_EXIT.noDir ? 'a parent is not a directory'
      : op.refused === OP_EXIT.hardLink ? 'has other hard links; write a new file instead of one linked elsewhere'
      : /read-only|permission denied/i.test(op.stderr) ? 'permission denied (only the workspace is writable)'
      : `failed (${op.stderr.trim().split('\n').pop() || `exit ${op.refused}`})`;
    return new CodegodError('SANDBOX_PATH', `${shown(rel)}: ${reason}`);
  }

  private fileError(rel: string, err: unknown): CodegodError {
    const code = errnoCode(err);
    const reason =
      code === 'ENOENT' ? 'no such file or directory'
      : code === 'EISDIR' ? 'is a directory'
      : code === 'ENOTDIR' || code === 'EEXIST' ? 'a parent is not a directory'
      : code === 'ELOOP' ? 'is a symlink'
      : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
      : `cannot be opened (${code ?? 'error'})`;
    return new CodegodError('SANDBOX_PATH', `${shown(rel)}: ${reason}`, { cause: err });
  }

  /** Entries below a directory, depth first in name order; symlinks are listed, never followed. */
  async listFiles(rel = '.', options: ListOptions = {}): Promise<{ entries: FileEntry[]; truncated: boolean }> {
    const depth = options.depth ?? 3;
    const max = options.max ?? 500;
    const root = await this.resolvePath(rel);
    const ops = await this.nsOps();
    if (ops) {
      const listed = await listOp(ops, root, depth, options.all ? [] : [...COLLAPSED_DIRS], LIST_OUTPUT_BYTES);
      if ('refused' in listed) throw this.opRefusal(rel, listed);
      const entries = listed.slice(0, max).map((e) => {
        const entry: FileEntry = { path: this.relative(join(root, e.path)), type: e.type, size: e.size };
        if (e.type === 'dir' && !options.all && COLLAPSED_DIRS.has(e.name)) entry.collapsed = true;
        return entry;
      });
      return { entries, truncated: listed.length > max };
    }
    const entries: FileEntry[] = [];
    let truncated = false;
    const walk = async (dir: string, level: number): Promise<void> => {
      const names = (await readdir(dir)).sort();
      for (const name of names) {
        if (entries.length >= max) {
          truncated = true;
          return;
        }
        const abs = join(dir, name);
        const s = await lstat(abs).catch(() => null);
        if (!s) continue;
        const entry: FileEntry = { path: this.relative(abs), type: fileType(s), size: s.size };
        const collapse = entry.type === 'dir' && !options.all && COLLAPSED_DIRS.has(name);
        if (collapse) entry.collapsed = true;
        entries.push(entry);
        if (entry.type === 'dir' && !collapse && level < depth) await walk(abs, level + 1);
      }
    };
    try {
      await walk(root, 1);
    } catch (err) {
      throw this.fileError(rel, err);
    }
    return { entries, truncated };
  }

  // --- commands --------------------------------------------------------------------------------

  /**
   * Runs a command in the workspace. Refused commands throw SANDBOX_POLICY before anything is
   * spawned; everything else returns a result, whatever the exit code. The command leads its
   * own process group, and the whole group is stopped (SIGTERM, then SIGKILL after a grace) on
   * timeout, on `signal`, and when the command itself exits: nothing it started in the
   * background outlives it.
   */
  async run(options: RunOptions): Promise<RunResult> {
    const parsed = RunOptionsSchema.safeParse(options);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`);
      throw new CodegodError('ACTION_INVALID', `invalid command: ${problems.join('; ')}`);
    }
    const opts = parsed.data;
    const base = {
      command: clipText(opts.command),
      args: opts.args.map(clipText),
      shell: opts.shell,
      cwd: clipText(opts.cwd ?? '.'),
    };
    let cwd: string;
    let env: Record<string, string>;
    let dropped: string[];
    try {
      cwd = await this.resolvePath(opts.cwd ?? '.');
      const s = await lstat(cwd).catch(() => null);
      if (!s?.isDirectory()) throw new CodegodError('SANDBOX_PATH', `${shown(opts.cwd ?? '.')}: not a directory`);
      // Through resolvePath: an agent may have replaced the directory with a symlink.
      const dirs = { home: await this.resolvePath(`${SANDBOX_DIR}/home`), tmp: await this.resolvePath(`${SANDBOX_DIR}/tmp`) };
      await mkdir(dirs.home, { recursive: true });
      await mkdir(dirs.tmp, { recursive: true });
      ({ env, dropped } = commandEnv(dirs, opts.env, this.limits.dockerHost));
      const decision = checkCommand(opts.command, opts.args, {
        shell: opts.shell,
        workspace: this.workspace,
        cwd,
        allowDocker: this.limits.dockerHost !== undefined,
      });
      const envDecision = checkEnvironment(env);
      const refusal = !decision.allowed ? decision.reason : !envDecision.allowed ? envDecision.reason : null;
      if (refusal !== null) throw new CodegodError('SANDBOX_POLICY', refusal);
    } catch (err) {
      if (err instanceof CodegodError) {
        this.logger?.warn({ command: base.command, reason: err.message }, 'command refused');
        await this.audit({ type: 'command.refused', ...base, reason: err.message });
      }
      throw err;
    }
    if (dropped.length > 0) this.logger?.warn({ command: base.command, dropped }, 'secret variables withheld from command');
    // Refused before anything is recorded as started: where isolation was asked for and cannot
    // be had, no command runs unisolated.
    let spawnArgv: { command: string; args: string[]; shell: boolean } = { command: opts.command, args: opts.args, shell: opts.shell };
    try {
      const pending = this.executor.namespace();
      if (pending !== null) {
        const ns = await pending;
        const argv = opts.shell ? [SHELL, '-c', shellScript(opts.command, opts.args)] : [opts.command, ...opts.args];
        const [command, ...args] = ns.commandArgv(argv, cwd);
        spawnArgv = { command: command!, args, shell: false };
      }
    } catch (err) {
      if (err instanceof CodegodError) {
        this.logger?.warn({ command: base.command, reason: err.message }, 'command refused');
        await this.audit({ type: 'command.refused', ...base, reason: err.message });
      }
      throw err;
    }

    // Recorded as it starts (the write goes out with the spawn, adding no wait to it): a
    // command whose worker dies under it still leaves its trace. Its end is recorded after.
    const run = randomBytes(6).toString('hex');
    const started = (opts.signal?.aborted ? Promise.resolve() : this.audit({ type: 'command.started', ...base, run })).then(
      () => undefined,
      (err: unknown) => ({ err }),
    );
    const ran = commandHost.run(
      {
        ...spawnArgv,
        cwd,
        env,
        input: opts.input,
        timeoutMs: opts.timeoutMs ?? this.limits.commandTimeoutMs,
        killGraceMs: this.limits.killGraceMs,
        outputCapBytes: this.limits.outputCapBytes,
      },
      opts.signal,
    );
    const outcome = await ran;
    const startFailed = await started;
    if (startFailed) throw startFailed.err;
    const { stdoutBytes, stderrBytes } = outcome;
    const result: RunResult = { ...outcome.result, droppedEnv: dropped };
    // bubblewrap could not exec the program: answer as a shell would.
    if (result.exitCode === 1 && /^bwrap: execvp [^\n]*: No such file or directory\s*$/.test(result.stderr)) result.exitCode = 127;
    await this.audit({
      type: 'command',
      ...base,
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut: result.timedOut,
      cancelled: result.cancelled,
      durationMs: result.durationMs,
      stdoutBytes,
      stderrBytes,
      truncated: result.truncated,
      droppedEnv: dropped,
      run,
    });
    return result;
  }

}
