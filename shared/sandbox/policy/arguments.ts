import type { Word } from '../shell/syntax.js';

/** Reading a command's options the way most programs parse them. */

/** Positional arguments, given the options that take a separate value. */
export function positionals(args: readonly Word[], valueOpts: readonly string[] = []): Word[] {
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
export function optionValues(args: readonly Word[], names: readonly string[]): Word[] {
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

export function hasFlag(args: readonly Word[], short: string, long?: string): boolean {
  for (const w of args) {
    const t = w.text;
    if (t === '--') return false;
    if (long !== undefined && t === long) return true;
    if (/^-[A-Za-z]+$/.test(t) && t.includes(short)) return true;
  }
  return false;
}
