import { posix } from 'node:path';
import type { SimpleCommand, Word } from '../shell/syntax.js';
import { literalWord } from '../shell/word.js';
import { hasFlag, optionValues, positionals } from './arguments.js';
import type { Ctx, State } from './context.js';
import type { Invocation } from './invocation.js';
import { inside, targetProblem, writeProblem } from './paths.js';
import { DOCKER_CLIS, SYSTEMCTL_REFUSED } from './tables.js';

/** Per-command rules: what a program's arguments may touch (removal targets, write destinations, docker flags). */

/** Checks a simple command nested in another one (`find -exec`); the checker passes itself. */
export type CheckNested = (cmd: SimpleCommand, c: Ctx, state: State) => string | null;

export type Rule = (inv: Invocation, c: Ctx, state: State, checkNested: CheckNested) => string | null;

export const removal: Rule = ({ name, program, args, viaXargs }, c, state) => {
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

const find: Rule = ({ args }, c, state, checkNested) => {
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
        const r = checkNested({ words, redirects: [], subs: [] }, c, { cwd: state.cwd, depth: state.depth + 1 });
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

export const RULES: Record<string, Rule> = {
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
