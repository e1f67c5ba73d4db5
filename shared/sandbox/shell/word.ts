import type { Script, Word } from './syntax.js';

/** Builds a word while the parser reads it, then says what about it the policy must know. */
export interface WordBuilder {
  text: string;
  /** The word as the shell sees it for expansion: quoted characters are replaced by `q`. */
  skeleton: string;
  dynamic: boolean;
  quoted: boolean;
  subs: Script[];
}

export const newWord = (): WordBuilder => ({ text: '', skeleton: '', dynamic: false, quoted: false, subs: [] });

export function appendQuoted(w: WordBuilder, s: string): void {
  w.text += s;
  w.skeleton += 'q'.repeat(s.length);
  w.quoted = true;
}

export function appendExpansion(w: WordBuilder, shown: string, sub?: Script): void {
  w.text += shown;
  w.skeleton += '$';
  w.dynamic = true;
  if (sub) w.subs.push(sub);
}

export function finishWord(w: WordBuilder): Word {
  return {
    text: w.text,
    dynamic: w.dynamic,
    tilde: w.skeleton.startsWith('~'),
    glob: /[*?[]/.test(w.skeleton),
    brace: /\{[^{}]*(,|\.\.)[^{}]*\}/.test(w.skeleton),
  };
}

/** A word taken literally (argv mode), flagged as if unquoted so `~` or `$HOME` still count. */
export function literalWord(text: string): Word {
  return finishWord({ text, skeleton: text, dynamic: /[$`]/.test(text), quoted: false, subs: [] });
}
