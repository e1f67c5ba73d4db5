import { posix } from 'node:path';
import { ParseError, ShellParser } from '../shell/parser.js';
import { shellScript } from '../shell/script.js';
import type { Script, SimpleCommand } from '../shell/syntax.js';
import { literalWord } from '../shell/word.js';
import { hasFlag, positionals } from './arguments.js';
import type { Ctx, PolicyContext, PolicyDecision, State } from './context.js';
import { containsDownloader, readsProgramFromStdin, shellCScript } from './interpreters.js';
import { type Invocation, unwrap } from './invocation.js';
import { absolute, writeProblem } from './paths.js';
import { rawProblem } from './raw.js';
import { RULES, removal } from './rules.js';
import { baseInterpreter, DOWNLOADERS, INTERPRETERS, OUTPUT_OPS, REFUSED_PROGRAMS, SHELLS } from './tables.js';

/**
 * The command policy: decides, before anything is spawned, whether a command an agent asked
 * for may run. Pure functions, no I/O. It is the inner wall (the container is the outer one),
 * so it is deliberately conservative: what it cannot follow (a `cd` into a variable, a
 * removal target built from `$VAR`) is refused with a reason an agent can act on, never
 * guessed at.
 *
 * Shell strings are parsed the way bash splits them (`../shell/`); every simple command found
 * anywhere in them is checked against the tables and the per-command rules, and wrappers
 * (`env`, `nice`, `xargs`, `timeout`, `bash -c`, `eval`, `find -exec`, ...) are looked through.
 */

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
  const r = rule ? rule(inv, c, here, checkSimple) : null;
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
