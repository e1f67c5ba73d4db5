import { posix } from 'node:path';

/**
 * The command policy: decides, before anything is spawned, whether a command an agent asked
 * for may run. Pure functions, no I/O. It is the inner wall (the container is the outer one),
 * so it is deliberately conservative: what it cannot follow (a `cd` into a variable, a
 * removal target built from `$VAR`) is refused with a reason an agent can act on, never
 * guessed at.
 *
 * Shell strings are parsed the way bash splits them (quotes, `;` `&&` `||` `|` `&`, newlines,
 * subshells, `$(...)`, backticks, process substitution, here-documents); every simple command
 * found anywhere in them is checked, and wrappers (`env`, `nice`, `xargs`, `timeout`,
 * `bash -c`, `eval`, `find -exec`, ...) are looked through.
 */

export interface PolicyContext {
  /** Whether `command` is a shell script (run by bash) or a program run with `args` as argv. */
  shell: boolean;
  /** Absolute real path of the build's workspace. */
  workspace: string;
  /** Absolute directory the command starts in; the workspace when unset. */
  cwd?: string;
  /** Whether docker commands may run at all (a docker endpoint is configured). */
  allowDocker?: boolean;
}

export type PolicyDecision = { allowed: true } | { allowed: false; reason: string };

/** Longest command (script plus arguments) the policy will read. */
export const MAX_COMMAND_CHARS = 100_000;
/** Nesting of substitutions, subshells and `bash -c` layers the policy follows. */
const MAX_DEPTH = 12;

/** The bash script the sandbox runs for `shell: true`: the command and its arguments joined. */
export function shellScript(command: string, args: readonly string[]): string {
  return [command, ...args].join(' ');
}

export function checkCommand(command: string, args: readonly string[], ctx: PolicyContext): PolicyDecision {
  const workspace = posix.resolve(ctx.workspace);
  const c: Ctx = { workspace, allowDocker: ctx.allowDocker ?? false };
  const state: State = { cwd: ctx.cwd === undefined ? workspace : posix.resolve(workspace, ctx.cwd), depth: 0 };
  let reason: string | null;
  try {
    reason = ctx.shell ? checkShell(shellScript(command, args), c, state) : checkArgv(command, args, c, state);
  } catch (err) {
    if (!(err instanceof ParseError)) throw err;
    reason = `refused: cannot parse the shell command (${err.message})`;
  }
  return reason === null ? { allowed: true } : { allowed: false, reason };
}

/**
 * Refuses environment values that aim a command at what the policy protects (the docker
 * socket, /run/secrets): `DOCKER_HOST=unix:///var/run/docker.sock docker ps` in another form.
 */
export function checkEnvironment(env: Readonly<Record<string, string>>): PolicyDecision {
  for (const [name, value] of Object.entries(env)) {
    const reason = rawProblem(value);
    if (reason) return { allowed: false, reason: `${reason} (environment variable ${name})` };
  }
  return { allowed: true };
}

// ---------------------------------------------------------------------------------------------
// Shell parsing

interface Word {
  /** The word after quote removal; substitutions stay as written (`$HOME`, `$(…)`). */
  text: string;
  /** Contains an unquoted or double-quoted expansion: `$VAR`, `${…}`, `$(…)`, backticks, `<(…)`. */
  dynamic: boolean;
  /** Begins with an unquoted `~`. */
  tilde: boolean;
  /** Contains an unquoted glob character. */
  glob: boolean;
  /** Contains an unquoted brace expansion (`{a,b}`, `{1..3}`). */
  brace: boolean;
}

interface Redirect {
  op: string;
  target: Word;
  /** Body of a here-document. */
  heredoc?: string;
}

interface SimpleCommand {
  words: Word[];
  redirects: Redirect[];
  /** Scripts run to produce this command's words or redirections (substitutions, here-docs). */
  subs: Script[];
}

type Pipeline = SimpleCommand[];
type Script = Pipeline[];

class ParseError extends Error {}

interface WordBuilder {
  text: string;
  /** The word as the shell sees it for expansion: quoted characters are replaced by `q`. */
  skeleton: string;
  dynamic: boolean;
  quoted: boolean;
  subs: Script[];
}

const newWord = (): WordBuilder => ({ text: '', skeleton: '', dynamic: false, quoted: false, subs: [] });

function appendQuoted(w: WordBuilder, s: string): void {
  w.text += s;
  w.skeleton += 'q'.repeat(s.length);
  w.quoted = true;
}

function appendExpansion(w: WordBuilder, shown: string, sub?: Script): void {
  w.text += shown;
  w.skeleton += '$';
  w.dynamic = true;
  if (sub) w.subs.push(sub);
}

function finishWord(w: WordBuilder): Word {
  return {
    text: w.text,
    dynamic: w.dynamic,
    tilde: w.skeleton.startsWith('~'),
    glob: /[*?[]/.test(w.skeleton),
    brace: /\{[^{}]*(,|\.\.)[^{}]*\}/.test(w.skeleton),
  };
}

/** A word taken literally (argv mode), flagged as if unquoted so `~` or `$HOME` still count. */
function literalWord(text: string): Word {
  return finishWord({ text, skeleton: text, dynamic: /[$`]/.test(text), quoted: false, subs: [] });
}

const REDIRECT_OPS = ['<<<', '<<-', '<<', '<>', '<&', '<', '>>', '>&', '>|', '>'] as const;

class ShellParser {
  private i = 0;
  private nesting = 0;
  private readonly heredocs: Array<{ redirect: Redirect; cmd: SimpleCommand; quoted: boolean; stripTabs: boolean }> = [];

  private constructor(
    private readonly src: string,
    private readonly depth: number,
  ) {}

  static parse(src: string, depth: number): Script {
    if (depth > MAX_DEPTH) throw new ParseError('commands nested too deeply');
    return new ShellParser(src, depth).list(false);
  }

  /** Substitutions inside text that the shell expands like a double-quoted string (a here-doc body, `${…}`). */
  static expansionsIn(text: string, depth: number): Script[] {
    if (depth > MAX_DEPTH) throw new ParseError('commands nested too deeply');
    const parser = new ShellParser(text, depth);
    const w = newWord();
    parser.doubleQuoted(w, true);
    return w.subs;
  }

  private list(nested: boolean): Script {
    const src = this.src;
    const script: Script = [];
    let pipeline: Pipeline = [];
    let cmd: SimpleCommand = { words: [], redirects: [], subs: [] };
    let word = null as WordBuilder | null;
    let redirectOp = null as string | null;
    const cur = (): WordBuilder => (word ??= newWord());

    const endWord = (): void => {
      if (word === null) return;
      const w = word;
      word = null;
      cmd.subs.push(...w.subs);
      if (redirectOp === null) {
        cmd.words.push(finishWord(w));
        return;
      }
      const redirect: Redirect = { op: redirectOp, target: finishWord(w) };
      cmd.redirects.push(redirect);
      if (redirectOp === '<<' || redirectOp === '<<-') {
        this.heredocs.push({ redirect, cmd, quoted: w.quoted, stripTabs: redirectOp === '<<-' });
      }
      redirectOp = null;
    };
    const endCommand = (): void => {
      endWord();
      if (redirectOp !== null) throw new ParseError(`'${redirectOp}' without a target`);
      if (cmd.words.length > 0 || cmd.redirects.length > 0 || cmd.subs.length > 0) pipeline.push(cmd);
      cmd = { words: [], redirects: [], subs: [] };
    };
    const endPipeline = (): void => {
      endCommand();
      if (pipeline.length > 0) script.push(pipeline);
      pipeline = [];
    };
    const setRedirect = (op: string): void => {
      if (redirectOp !== null) throw new ParseError(`'${redirectOp}' without a target`);
      redirectOp = op;
    };

    while (this.i < src.length) {
      const c = src[this.i]!;
      const next = src[this.i + 1];
      if (c === ' ' || c === '\t' || c === '\r') {
        endWord();
        this.i++;
      } else if (c === '\\') {
        if (next === '\n') this.i += 2;
        else if (next === undefined) {
          appendQuoted(cur(), '\\');
          this.i++;
        } else {
          appendQuoted(cur(), next);
          this.i += 2;
        }
      } else if (c === '\n') {
        endPipeline();
        this.i++;
        this.readHeredocs();
      } else if (c === '#' && word === null) {
        const nl = src.indexOf('\n', this.i);
        this.i = nl < 0 ? src.length : nl;
      } else if (c === ';') {
        endPipeline();
        this.i += next === ';' || next === '&' ? 2 : 1;
      } else if (c === '&') {
        if (next === '>') {
          endWord();
          const op = src[this.i + 2] === '>' ? '&>>' : '&>';
          this.i += op.length;
          setRedirect(op);
        } else {
          endPipeline();
          this.i += next === '&' ? 2 : 1;
        }
      } else if (c === '|') {
        if (next === '|') endPipeline();
        else endCommand();
        this.i += next === '|' || next === '&' ? 2 : 1;
      } else if (c === '(' && next === '(' && word === null && this.arithmetic(cur)) {
        // consumed by arithmetic(): `(( i++ ))`
      } else if (c === '(') {
        endPipeline();
        if (next === ')') {
          // `name()` opens a function definition: its `{ … }` body is checked as a group.
          this.i += 2;
        } else {
          this.i++;
          script.push(...this.nestedList());
        }
      } else if (c === ')') {
        endPipeline();
        this.i++;
        if (nested) return script;
      } else if ((c === '<' || c === '>') && next === '(') {
        this.i += 2;
        appendExpansion(cur(), `${c}(…)`, this.nestedList());
      } else if (c === '<' || c === '>') {
        // A bare number before the operator is the file descriptor (`2>`), not a word.
        if (word !== null && /^\d+$/.test(word.skeleton)) word = null;
        else endWord();
        const op = REDIRECT_OPS.find((o) => src.startsWith(o, this.i))!;
        this.i += op.length;
        setRedirect(op);
      } else if (c === "'") {
        const end = src.indexOf("'", this.i + 1);
        if (end < 0) throw new ParseError('unterminated single quote');
        appendQuoted(cur(), src.slice(this.i + 1, end));
        this.i = end + 1;
      } else if (c === '"') {
        this.i++;
        this.doubleQuoted(cur(), false);
      } else if (c === '`') {
        this.i++;
        this.backtick(cur());
      } else if (c === '$' && this.dollar(cur(), false)) {
        // consumed by dollar()
      } else {
        const w = cur();
        w.text += c;
        w.skeleton += c;
        this.i++;
      }
    }
    if (nested) throw new ParseError("unterminated '(' or '$('");
    endPipeline();
    return script;
  }

  private nestedList(): Script {
    if (++this.nesting + this.depth > MAX_DEPTH) throw new ParseError('commands nested too deeply');
    const script = this.list(true);
    this.nesting--;
    return script;
  }

  private doubleQuoted(w: WordBuilder, untilEnd: boolean): void {
    const src = this.src;
    w.quoted = true;
    for (;;) {
      if (this.i >= src.length) {
        if (untilEnd) return;
        throw new ParseError('unterminated double quote');
      }
      const c = src[this.i]!;
      const next = src[this.i + 1];
      if (c === '"' && !untilEnd) {
        this.i++;
        return;
      }
      if (c === '\\' && next !== undefined && '$`"\\\n'.includes(next)) {
        if (next !== '\n') appendQuoted(w, next);
        this.i += 2;
      } else if (c === '`') {
        this.i++;
        this.backtick(w);
      } else if (!(c === '$' && this.dollar(w, true))) {
        appendQuoted(w, c);
        this.i++;
      }
    }
  }

  private backtick(w: WordBuilder): void {
    const src = this.src;
    let inner = '';
    for (;;) {
      if (this.i >= src.length) throw new ParseError('unterminated backtick');
      const c = src[this.i]!;
      const next = src[this.i + 1];
      if (c === '\\' && next !== undefined && '`\\$'.includes(next)) {
        inner += next;
        this.i += 2;
      } else if (c === '`') {
        this.i++;
        break;
      } else {
        inner += c;
        this.i++;
      }
    }
    appendExpansion(w, '`…`', ShellParser.parse(inner, this.depth + this.nesting + 1));
  }

  /** Handles a `$` at the cursor; false when it is a literal dollar sign. */
  private dollar(w: WordBuilder, inDouble: boolean): boolean {
    const src = this.src;
    const next = src[this.i + 1];
    if (next === '(') {
      this.i++;
      if (src[this.i + 1] === '(' && this.arithmetic(() => w)) return true;
      this.i++;
      appendExpansion(w, '$(…)', this.nestedList());
      return true;
    }
    if (next === '{') {
      let depth = 0;
      let end = this.i + 1;
      for (; end < src.length; end++) {
        if (src[end] === '{') depth++;
        else if (src[end] === '}' && --depth === 0) break;
      }
      if (end >= src.length) throw new ParseError("unterminated '${'");
      const inner = src.slice(this.i + 2, end);
      this.i = end + 1;
      appendExpansion(w, `\${${inner}}`);
      w.subs.push(...ShellParser.expansionsIn(inner, this.depth + this.nesting + 1));
      return true;
    }
    if (!inDouble && next === "'") {
      this.i += 2;
      for (;;) {
        if (this.i >= src.length) throw new ParseError("unterminated $'");
        const c = src[this.i]!;
        if (c === "'") break;
        if (c === '\\' && this.i + 1 < src.length) {
          appendQuoted(w, src[this.i + 1]!);
          this.i += 2;
        } else {
          appendQuoted(w, c);
          this.i++;
        }
      }
      this.i++;
      return true;
    }
    if (!inDouble && next === '"') {
      this.i++;
      return true;
    }
    if (next !== undefined && /[A-Za-z_]/.test(next)) {
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(this.i + 1))![0];
      this.i += 1 + name.length;
      appendExpansion(w, `$${name}`);
      return true;
    }
    if (next !== undefined && /[0-9@*#?$!-]/.test(next)) {
      this.i += 2;
      appendExpansion(w, `$${next}`);
      return true;
    }
    return false;
  }

  /**
   * Reads `((…))` at the cursor as arithmetic, whose only commands are the substitutions in it.
   * Parsing it as commands would be wrong: `1<<2` would open a here-document that swallows the
   * following lines. Returns false when the parentheses do not close as `))`, which bash reads
   * as nested subshells (`$((cmd) )`), so the caller parses it that way.
   */
  private arithmetic(word: () => WordBuilder): boolean {
    const src = this.src;
    let depth = 0;
    let end = this.i;
    for (; end < src.length; end++) {
      if (src[end] === '(') depth++;
      else if (src[end] === ')' && --depth === 0) break;
    }
    if (end >= src.length || src[end - 1] !== ')') return false;
    const inner = src.slice(this.i + 2, end - 1);
    this.i = end + 1;
    const w = word();
    appendExpansion(w, '((…))');
    w.subs.push(...ShellParser.expansionsIn(inner, this.depth + this.nesting + 1));
    return true;
  }

  private readHeredocs(): void {
    const src = this.src;
    for (const doc of this.heredocs.splice(0)) {
      const delimiter = doc.redirect.target.text;
      let body = '';
      while (this.i < src.length) {
        const nl = src.indexOf('\n', this.i);
        const line = src.slice(this.i, nl < 0 ? src.length : nl);
        this.i = nl < 0 ? src.length : nl + 1;
        if ((doc.stripTabs ? line.replace(/^\t+/, '') : line) === delimiter) break;
        body += `${line}\n`;
      }
      doc.redirect.heredoc = body;
      // An unquoted delimiter means the body's `$(…)` and backticks run.
      if (!doc.quoted) doc.cmd.subs.push(...ShellParser.expansionsIn(body, this.depth + this.nesting + 1));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Checks

interface Ctx {
  workspace: string;
  allowDocker: boolean;
}

interface State {
  /** Where the next command starts; null after a `cd` the policy cannot follow. */
  cwd: string | null;
  depth: number;
}

/** Checks on the raw text, wherever in a command these appear. */
const RAW_RULES: Array<[RegExp, string]> = [
  [/docker\.sock/, 'refused: the docker socket is off limits'],
  [/\/run\/secrets/, "refused: /run/secrets holds codegod's own secrets"],
  [/\/proc\/\S*environ/, "refused: reading a process's environment (/proc/*/environ)"],
];

function rawProblem(text: string): string | null {
  if (text.includes('\0')) return 'refused: contains a NUL byte';
  if (text.length > MAX_COMMAND_CHARS) return `refused: longer than ${MAX_COMMAND_CHARS} characters`;
  for (const [re, reason] of RAW_RULES) if (re.test(text)) return reason;
  return forkBomb(text) ? 'refused: fork bomb' : null;
}

/** A shell function whose body calls itself in a pipe or in the background: `:(){ :|:& };:`. */
function forkBomb(text: string): boolean {
  const defs = /(?:function\s+)?([^\s(){};|&<>]+)\s*\(\s*\)\s*\{([^}]*)\}|function\s+([^\s(){};|&<>]+)\s*\{([^}]*)\}/g;
  for (const m of text.matchAll(defs)) {
    const name = m[1] ?? m[3]!;
    const body = m[2] ?? m[4]!;
    if (/[|&]/.test(body) && body.split(/[\s|&;]+/).includes(name)) return true;
  }
  return false;
}

function checkArgv(command: string, args: readonly string[], c: Ctx, state: State): string | null {
  if (command.trim() === '') return 'refused: empty command';
  if (/\s/.test(command)) {
    return `refused: '${command}' is not a program name; put its arguments in args, or set shell: true`;
  }
  const raw = rawProblem(shellScript(command, args));
  if (raw) return raw;
  const words = [command, ...args].map(literalWord);
  return checkSimple({ words, redirects: [], subs: [] }, c, state);
}

function checkShell(script: string, c: Ctx, state: State): string | null {
  const raw = rawProblem(script);
  if (raw) return raw;
  return checkScript(ShellParser.parse(script, state.depth), c, state);
}

function checkScript(script: Script, c: Ctx, state: State): string | null {
  for (const pipeline of script) {
    let downloader: string | null = null;
    let previous: { cmd: SimpleCommand; inv: Invocation | null } | null = null;
    for (const cmd of pipeline) {
      for (const sub of cmd.subs) {
        const r = checkScript(sub, c, { cwd: state.cwd, depth: state.depth + 1 });
        if (r) return r;
      }
      const r = checkSimple(cmd, c, state);
      if (r) return r;
      const inv = unwrap(cmd.words);
      if (inv && INTERPRETERS.has(baseInterpreter(inv.name)) && readsProgramFromStdin(inv)) {
        if (downloader) {
          return `refused: piping a download (${downloader}) into ${inv.name}; download to a file, read it, then run it`;
        }
        // `echo 'rm -rf /' | sh` and `cat <<EOF | bash`: the script is right there, so check it.
        const piped = SHELLS.has(inv.name) && previous ? pipedText(previous.cmd, previous.inv) : null;
        if (piped !== null) {
          const n = checkShell(piped, c, { cwd: state.cwd, depth: state.depth + 1 });
          if (n) return n;
        }
      }
      if (inv && DOWNLOADERS.has(inv.name)) downloader = inv.name;
      previous = { cmd, inv };
    }
  }
  return null;
}

/** What a command writes to its stdout when that is plain to see: echo/printf arguments, a here-document. */
function pipedText(cmd: SimpleCommand, inv: Invocation | null): string | null {
  for (const r of cmd.redirects) {
    if (r.op === '<<<') return r.target.text;
    if (r.heredoc !== undefined) return r.heredoc;
  }
  if (inv && (inv.name === 'echo' || inv.name === 'printf')) {
    return inv.args.filter((w) => !/^-[neE]+$/.test(w.text)).map((w) => w.text).join(' ');
  }
  return null;
}

// --- command names ----------------------------------------------------------------------------

const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'ash', 'mksh', 'fish', 'rbash']);
const INTERPRETERS = new Set([...SHELLS, 'python', 'perl', 'ruby', 'node', 'nodejs', 'php', 'lua', 'tclsh']);
const DOWNLOADERS = new Set(['curl', 'wget', 'fetch', 'aria2c', 'http', 'https']);
/** Flags that give an interpreter its program inline, so it does not read one from stdin. */
const INLINE_CODE_FLAGS = new Set(['-c', '-m', '-e', '-E', '-p', '-r', '--eval', '--print', '--command']);

/** Programs refused whatever their arguments, grouped by the reason an agent is given. */
const REFUSED_GROUPS: Array<[reason: string, names: string[]]> = [
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
const REFUSED_PROGRAMS = new Map(REFUSED_GROUPS.flatMap(([reason, names]) => names.map((n) => [n, reason] as const)));

const DOCKER_CLIS = new Set(['docker', 'podman', 'nerdctl', 'docker-compose']);
const SYSTEMCTL_REFUSED = new Set([
  'poweroff', 'reboot', 'halt', 'kexec', 'suspend', 'hibernate', 'rescue', 'emergency', 'isolate', 'default',
]);

/** python3.12 → python. */
function baseInterpreter(name: string): string {
  return /^python[0-9.]*$/.test(name) ? 'python' : name;
}

function programName(w: Word): string {
  return posix.basename(w.text);
}

// --- unwrapping -------------------------------------------------------------------------------

interface Invocation {
  name: string;
  /** The word naming the program (`$RM` when it comes from a variable). */
  program: Word;
  args: Word[];
  /** The command gets more arguments from xargs' stdin, which the policy cannot see. */
  viaXargs: boolean;
  /** Directory a wrapper moved it to (`env -C dir`). */
  chdir?: Word;
}

interface WrapperSpec {
  /** Options that take a separate value. */
  valueOpts?: string[];
  /** Positional arguments before the wrapped command (timeout's duration, taskset's mask). */
  positional?: number;
  xargs?: boolean;
}

const WRAPPERS: Record<string, WrapperSpec> = {
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

const RESERVED = new Set(['if', 'then', 'elif', 'else', 'fi', 'do', 'done', 'while', 'until', '!', '{', '}', 'esac']);
/** Compound commands whose own words are data, not a command (their bodies are separate commands). */
const DATA_KEYWORDS = new Set(['for', 'select', 'case']);

function isAssignment(w: Word): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*\+?=/.test(w.text);
}

function takesValue(spec: WrapperSpec, opt: string): boolean {
  if (opt.startsWith('--')) return !opt.includes('=') && (spec.valueOpts ?? []).includes(opt);
  return opt.length === 2 && (spec.valueOpts ?? []).includes(opt);
}

const shellC = (script: string, viaXargs: boolean): Invocation => ({
  name: 'sh',
  program: literalWord('sh'),
  args: [literalWord('-c'), literalWord(script)],
  viaXargs,
});

/** Looks through assignments, reserved words and wrappers to the program that really runs; null when none does. */
function unwrap(words: readonly Word[]): Invocation | null {
  let rest = words.slice();
  let viaXargs = false;
  let chdir: Word | undefined;
  for (let layer = 0; layer < 32; layer++) {
    while (rest.length > 0 && (isAssignment(rest[0]!) || RESERVED.has(rest[0]!.text))) rest = rest.slice(1);
    if (rest[0]?.text === 'function') rest = rest.slice(2);
    const head = rest[0];
    if (!head || DATA_KEYWORDS.has(head.text)) return null;
    const name = programName(head);
    const spec = WRAPPERS[name];
    if (!spec) return { name, program: head, args: rest.slice(1), viaXargs, ...(chdir ? { chdir } : {}) };
    let i = 1;
    while (i < rest.length) {
      const t = rest[i]!.text;
      if (t === '--') {
        i++;
        break;
      }
      if (!t.startsWith('-') || t === '-') break;
      if (name === 'command' && (t === '-v' || t === '-V')) return null;
      // `env -S 'rm -rf /'` splits its argument into the command line.
      const split = name === 'env' ? /^(?:-[A-Za-z]*S|--split-string=?)(.*)$/.exec(t) : null;
      if (split) {
        const attached = split[1] !== '' || t.startsWith('--split-string=');
        const text = attached ? split[1]! : rest[i + 1]?.text ?? '';
        const words = ShellParser.parse(text, 0)[0]?.[0]?.words ?? [];
        rest = [head, ...words, ...rest.slice(attached ? i + 1 : i + 2)];
        i = 1;
        continue;
      }
      if (name === 'flock' && (t === '-c' || t === '--command')) return shellC(rest[i + 1]?.text ?? '', viaXargs);
      if (name === 'env' && (t === '-C' || t === '--chdir')) chdir = rest[i + 1];
      else if (name === 'env' && /^(-C|--chdir=)./.test(t)) chdir = { ...rest[i]!, text: t.replace(/^(-C|--chdir=)/, '') };
      i += takesValue(spec, t) ? 2 : 1;
    }
    if (name === 'env') while (i < rest.length && isAssignment(rest[i]!)) i++;
    i += spec.positional ?? 0;
    if (name === 'flock' && (rest[i]?.text === '-c' || rest[i]?.text === '--command')) {
      return shellC(rest[i + 1]?.text ?? '', viaXargs);
    }
    if (name === 'watch') return shellC(rest.slice(i).map((w) => w.text).join(' '), viaXargs);
    if (spec.xargs) viaXargs = true;
    rest = rest.slice(i);
  }
  return null;
}

// --- paths ------------------------------------------------------------------------------------

function inside(abs: string, ws: string): boolean {
  return abs === ws || abs.startsWith(ws === '/' ? '/' : `${ws}/`);
}

/** Absolute form of a path word, or null when it is relative to a directory the policy lost. */
function absolute(text: string, state: State): string | null {
  if (text.startsWith('/')) return posix.resolve(text);
  return state.cwd === null ? null : posix.resolve(state.cwd, text);
}

/**
 * Why a path may not be removed or modified (rm, chmod, find -delete), or null when it is fine.
 * A recursive operation must name its target literally; a single file may come from a
 * variable (`rm "$f"` in a loop), since a literal path outside the workspace is refused anyway.
 */
function targetProblem(w: Word, c: Ctx, state: State, recursive: boolean): string | null {
  if (recursive && w.dynamic) return 'it uses a variable or substitution the policy cannot check; write the path literally';
  if (recursive && w.tilde) return "'~' is the home directory, outside the workspace";
  if (recursive && w.brace) return 'brace expansion cannot be checked; list the paths';
  if (w.dynamic || w.tilde || w.text === '') return null;
  if (w.glob && /(^|\/)\.[*?[]/.test(w.text)) return "the pattern can match '..'";
  const abs = absolute(w.text, state);
  if (abs === null) {
    if (!recursive) return null;
    return 'it is relative to a directory the policy cannot follow (after cd); use a path inside the workspace';
  }
  if (!inside(abs, c.workspace)) return 'outside the workspace';
  if (recursive && abs === c.workspace && !w.glob) return 'that is the workspace itself';
  return null;
}

const PROTECTED = [
  '/etc', '/boot', '/proc', '/sys', '/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/root', '/run', '/var/run',
  '/var/spool/cron', '/dev',
];
const HARMLESS_DEVICES = new Set(['/dev/null', '/dev/zero', '/dev/stdout', '/dev/stderr', '/dev/stdin', '/dev/tty']);

/** Why writing to a path is refused (system directories, devices, ssh keys), or null. */
function writeProblem(w: Word, c: Ctx, state: State): string | null {
  const abs = w.dynamic || w.tilde ? null : absolute(w.text, state);
  const inWorkspace = abs !== null && inside(abs, c.workspace);
  if (!inWorkspace && /(^|\/)\.ssh(\/|$)/.test(w.text)) return `refused: writing to ssh keys ('${w.text}')`;
  if (abs === null || inWorkspace) return null;
  if (HARMLESS_DEVICES.has(abs) || /^\/dev\/(fd\/\d+|shm(\/|$))/.test(abs)) return null;
  if (abs === '/' || PROTECTED.some((p) => inside(abs, p))) return `refused: writing to ${abs} (a system path)`;
  return null;
}

// --- option helpers ---------------------------------------------------------------------------

/** Positional arguments, given the options that take a separate value. */
function positionals(args: readonly Word[], valueOpts: readonly string[] = []): Word[] {
  const out: Word[] = [];
  let optsDone = false;
  for (let i = 0; i < args.length; i++) {
    const w = args[i]!;
    if (!optsDone && w.text === '--') optsDone = true;
    else if (!optsDone && w.text.startsWith('-') && w.text !== '-') {
      if (valueOpts.includes(w.text)) i++;
    } else out.push(w);
  }
  return out;
}

/** Values of an option given as `-o V`, `--opt V` or `--opt=V`. */
function optionValues(args: readonly Word[], names: readonly string[]): Word[] {
  const out: Word[] = [];
  for (let i = 0; i < args.length; i++) {
    const t = args[i]!.text;
    if (t === '--') break;
    if (names.includes(t) && args[i + 1]) out.push(args[i + 1]!);
    for (const n of names) {
      if (n.startsWith('--') && t.startsWith(`${n}=`)) out.push({ ...args[i]!, text: t.slice(n.length + 1) });
    }
  }
  return out;
}

function hasFlag(args: readonly Word[], short: string, long?: string): boolean {
  for (const w of args) {
    const t = w.text;
    if (t === '--') return false;
    if (long !== undefined && t === long) return true;
    if (/^-[A-Za-z]+$/.test(t) && t.includes(short)) return true;
  }
  return false;
}

// --- per-command rules ------------------------------------------------------------------------

type Rule = (inv: Invocation, c: Ctx, state: State) => string | null;

const removal: Rule = ({ name, program, args, viaXargs }, c, state) => {
  if (args.some((w) => w.text === '--no-preserve-root')) return `refused: ${name} --no-preserve-root`;
  const recursive = (name === 'rm' || program.dynamic) && (hasFlag(args, 'r', '--recursive') || hasFlag(args, 'R'));
  const label = recursive ? `${name} -r` : name;
  if (viaXargs && recursive) {
    return `refused: ${label} through xargs (its targets cannot be checked); use find <dir> -delete inside the workspace`;
  }
  for (const t of positionals(args)) {
    const p = targetProblem(t, c, state, recursive);
    if (p) return `refused: ${label} '${t.text}': ${p}`;
  }
  return null;
};

const modeChange: Rule = ({ name, args, viaXargs }, c, state) => {
  const recursive = hasFlag(args, 'R', '--recursive');
  const label = recursive ? `${name} -R` : name;
  if (viaXargs && recursive) return `refused: ${label} through xargs (its targets cannot be checked)`;
  // chmod's symbolic modes may look like options (`-x`); everything else before the targets is an option.
  const modeLike = name === 'chmod' ? args.filter((w) => /^-[rwxXst]+$/.test(w.text)) : [];
  const rest = args.filter((w) => !modeLike.includes(w));
  const pos = positionals(rest, ['--from']);
  const hasReference = args.some((w) => w.text.startsWith('--reference'));
  const targets = modeLike.length > 0 || hasReference ? pos : pos.slice(1);
  for (const t of targets) {
    const p = targetProblem(t, c, state, recursive);
    if (p) return `refused: ${label} '${t.text}': ${p}`;
  }
  return null;
};

const find: Rule = ({ args }, c, state) => {
  let i = 0;
  while (i < args.length && /^-[HLP]$|^-O\d$/.test(args[i]!.text)) i++;
  if (args[i]?.text === '-D') i += 2;
  const starts: Word[] = [];
  while (i < args.length && !/^[-(!]/.test(args[i]!.text)) starts.push(args[i++]!);
  if (starts.length === 0) starts.push(literalWord('.'));
  const expr = args.slice(i);
  for (let k = 0; k < expr.length; k++) {
    const t = expr[k]!.text;
    if (t === '-delete') {
      for (const s of starts) {
        const p = targetProblem({ ...s, text: posix.join(s.text, '{}') }, c, state, true);
        if (p) return `refused: find '${s.text}' -delete: ${p}`;
      }
    }
    if (t === '-exec' || t === '-execdir' || t === '-ok' || t === '-okdir') {
      let end = k + 1;
      while (end < expr.length && expr[end]!.text !== ';' && expr[end]!.text !== '+') end++;
      const inner = expr.slice(k + 1, end);
      // Each `{}` stands for something below a start path.
      for (const s of starts) {
        const words = inner.map((w) =>
          w.text.includes('{}')
            ? {
                ...w,
                text: w.text.replaceAll('{}', posix.join(s.text, '{}')),
                dynamic: w.dynamic || s.dynamic,
                tilde: w.tilde || (w.text.startsWith('{}') && s.tilde),
                glob: w.glob || s.glob,
              }
            : w,
        );
        const r = checkSimple({ words, redirects: [], subs: [] }, c, { cwd: state.cwd, depth: state.depth + 1 });
        if (r) return r;
      }
      k = end;
    }
  }
  return null;
};

const kill: Rule = ({ args }) => {
  let i = 0;
  const first = args[0]?.text;
  if (first === '-l' || first === '-L') return null;
  if (first === '-s' || first === '-n') i = 2;
  else if (first !== undefined && first.startsWith('-') && first !== '--' && first.length > 1) i = 1;
  if (args[i]?.text === '--') i++;
  for (const w of args.slice(i)) {
    if (w.text === '-1') return 'refused: kill -1 signals every process';
    if (w.text === '1') return 'refused: kill 1 signals init';
  }
  return null;
};

const writeTargets =
  (valueOpts: string[]): Rule =>
  ({ name, args }, c, state) => {
    for (const t of positionals(args, valueOpts)) {
      const p = writeProblem(t, c, state);
      if (p) return `${p} with ${name}`;
    }
    return null;
  };

const copyLike: Rule = ({ name, args }, c, state) => {
  const explicit = optionValues(args, ['-t', '--target-directory']);
  const valueOpts = ['-t', '--target-directory', '-S', '--suffix', '-e', '--rsh', '-m', '--mode', '-o', '--owner', '-g'];
  const pos = positionals(args, valueOpts);
  const dests = explicit.length > 0 ? explicit : pos.slice(-1);
  // Moving a file away modifies its directory as much as writing into it.
  const checked = name === 'mv' ? [...dests, ...pos] : dests;
  for (const t of checked) {
    const p = writeProblem(t, c, state);
    if (p) return `${p} with ${name}`;
  }
  return null;
};

const dd: Rule = ({ args }, c, state) => {
  for (const w of args) {
    if (!w.text.startsWith('of=')) continue;
    const p = writeProblem({ ...w, text: w.text.slice(3), tilde: w.text.startsWith('of=~') }, c, state);
    if (p) return `${p} with dd`;
  }
  return null;
};

const downloader: Rule = ({ name, args }, c, state) => {
  if (args.some((w) => /^--(abstract-)?unix-socket/.test(w.text))) {
    return `refused: ${name} --unix-socket (local service sockets are off limits)`;
  }
  const outputs = name === 'wget' ? optionValues(args, ['-O', '--output-document']) : optionValues(args, ['-o', '--output']);
  for (const t of outputs) {
    const p = writeProblem(t, c, state);
    if (p) return `${p} with ${name}`;
  }
  return null;
};

const docker: Rule = ({ name, args }, c) => {
  if (!c.allowDocker) return `refused: ${name} is not available (no docker endpoint is configured)`;
  for (let i = 0; i < args.length; i++) {
    const t = args[i]!.text;
    if (t === '--privileged' || t.startsWith('--cap-add') || t.startsWith('--device') || t.startsWith('--security-opt')) {
      return `refused: ${name} ${t} (privileged containers are off limits)`;
    }
    const ns = /^--(pid|net|network|ipc|userns|uts)(=(.*))?$/.exec(t);
    if (ns && (ns[3] ?? args[i + 1]?.text) === 'host') return `refused: ${name} --${ns[1]}=host (host namespaces are off limits)`;
    const volume = /^(-v|--volume|--mount)(=(.*))?$/.exec(t);
    const spec = volume ? (volume[3] ?? args[i + 1]?.text) : undefined;
    if (spec === undefined) continue;
    const source = t === '--mount' || t.startsWith('--mount=') ? /(?:source|src)=([^,]+)/.exec(spec)?.[1] : spec.split(':')[0];
    if (source?.startsWith('/') && !inside(posix.resolve(source), c.workspace)) {
      return `refused: ${name} mounting '${source}' (host paths outside the workspace)`;
    }
  }
  return null;
};

const RULES: Record<string, Rule> = {
  rm: removal,
  rmdir: removal,
  unlink: removal,
  shred: removal,
  chmod: modeChange,
  chown: modeChange,
  chgrp: modeChange,
  find,
  kill,
  dd,
  tee: writeTargets([]),
  touch: writeTargets(['-d', '-t', '-r', '--date', '--reference']),
  truncate: writeTargets(['-s', '-r', '--size', '--reference']),
  cp: copyLike,
  mv: copyLike,
  install: copyLike,
  ln: copyLike,
  rsync: copyLike,
  curl: downloader,
  wget: downloader,
  init: ({ args }) => (args.length > 0 ? `refused: init ${args[0]!.text} (runlevel changes are off limits)` : null),
  systemctl: ({ args }) => {
    const verb = positionals(args).find((w) => SYSTEMCTL_REFUSED.has(w.text));
    return verb ? `refused: systemctl ${verb.text} (power control is off limits)` : null;
  },
  ...Object.fromEntries([...DOCKER_CLIS].map((n) => [n, docker])),
};

// --- interpreters -----------------------------------------------------------------------------

/** Whether an interpreter takes its program from stdin (nothing names a script or inline code). */
function readsProgramFromStdin(inv: Invocation): boolean {
  for (const w of inv.args) {
    const t = w.text;
    if (t === '-' || t === '-s') return true;
    if (INLINE_CODE_FLAGS.has(t)) return false;
    if (SHELLS.has(inv.name) && /^-[A-Za-z]*c[A-Za-z]*$/.test(t)) return false;
    if (!t.startsWith('-')) return false;
  }
  return true;
}

/** The script a shell runs with `-c` (`bash -ec 'script'`), or null. */
function shellCScript(args: readonly Word[]): string | null {
  let hasC = false;
  for (let i = 0; i < args.length; i++) {
    const t = args[i]!.text;
    if (t === '-o' || t === '+o' || t === '-O' || t === '+O') i++;
    else if (t.startsWith('--')) continue;
    else if (/^[-+][A-Za-z]+$/.test(t)) hasC ||= t.startsWith('-') && t.includes('c');
    else return hasC ? t : null;
  }
  return null;
}

function containsDownloader(script: Script): boolean {
  return script.some((pipeline) =>
    pipeline.some((cmd) => {
      const inv = unwrap(cmd.words);
      return (inv !== null && DOWNLOADERS.has(inv.name)) || cmd.subs.some(containsDownloader);
    }),
  );
}

// --- one simple command -----------------------------------------------------------------------

const OUTPUT_OPS = new Set(['>', '>>', '>|', '&>', '&>>', '<>', '>&']);

function checkSimple(cmd: SimpleCommand, c: Ctx, state: State): string | null {
  for (const r of cmd.redirects) {
    if (!OUTPUT_OPS.has(r.op)) continue;
    if (r.op === '>&' && /^(\d+|-)$/.test(r.target.text)) continue;
    const p = writeProblem(r.target, c, state);
    if (p) return p;
  }
  const inv = unwrap(cmd.words);
  if (!inv) return null;
  const { name } = inv;
  const chdir = inv.chdir;
  const here = chdir ? { cwd: chdir.dynamic || chdir.tilde ? null : absolute(chdir.text, state), depth: state.depth } : state;
  const refused = REFUSED_PROGRAMS.get(name);
  if (refused) return `refused: ${name} (${refused})`;
  if (/^mkfs(\..+)?$/.test(name)) return `refused: ${name} (disk and filesystem tools are off limits)`;
  // A program named by a variable (`$RM -rf /`) is judged as a removal when it recurses.
  const recursesUnknown = inv.program.dynamic && (hasFlag(inv.args, 'r', '--recursive') || hasFlag(inv.args, 'R'));
  const rule = RULES[name] ?? (recursesUnknown ? removal : undefined);
  const r = rule ? rule(inv, c, here) : null;
  if (r) return r;

  const runsCode = INTERPRETERS.has(baseInterpreter(name)) || name === 'source' || name === '.' || name === 'eval';
  if (runsCode && cmd.subs.some(containsDownloader)) {
    return `refused: running downloaded code (${name} with a curl/wget substitution); download to a file, read it, then run it`;
  }
  const nested = { cwd: here.cwd, depth: state.depth + 1 };
  if (SHELLS.has(name)) {
    const script = shellCScript(inv.args);
    if (script !== null) {
      const n = checkShell(script, c, nested);
      if (n) return n;
    }
    for (const redirect of cmd.redirects) {
      const body = redirect.op === '<<<' ? redirect.target.text : redirect.heredoc;
      if (body === undefined) continue;
      const n = checkShell(body, c, nested);
      if (n) return n;
    }
  }
  if (name === 'eval') return checkShell(inv.args.map((w) => w.text).join(' '), c, nested);
  if (name === 'cd' || name === 'pushd' || name === 'popd') changeDirectory(inv, state);
  return null;
}

/** Follows `cd` so later relative paths resolve where the shell will be; loses track on anything dynamic. */
function changeDirectory(inv: Invocation, state: State): void {
  const target = inv.name === 'popd' ? undefined : positionals(inv.args)[0];
  state.cwd = target === undefined || target.dynamic || target.tilde || target.text === '-' ? null : absolute(target.text, state);
}
