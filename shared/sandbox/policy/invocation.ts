import { posix } from 'node:path';
import { ShellParser } from '../shell/parser.js';
import type { Word } from '../shell/syntax.js';
import { literalWord } from '../shell/word.js';
import { DATA_KEYWORDS, RESERVED, WRAPPERS, type WrapperSpec } from './tables.js';

/** The program a simple command really runs, found by looking through wrappers (`env`, `nice`, `xargs`, `timeout`, ...). */
export interface Invocation {
  name: string;
  /** The word naming the program (`$RM` when it comes from a variable). */
  program: Word;
  args: Word[];
  /** The command gets more arguments from xargs' stdin, which the policy cannot see. */
  viaXargs: boolean;
  /** Directory a wrapper moved it to (`env -C dir`). */
  chdir?: Word;
}

function programName(w: Word): string {
  return posix.basename(w.text);
}

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
export function unwrap(words: readonly Word[]): Invocation | null {
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
