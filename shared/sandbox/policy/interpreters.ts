import type { Script, Word } from '../shell/syntax.js';
import { type Invocation, unwrap } from './invocation.js';
import { DOWNLOADERS, INLINE_CODE_FLAGS, SHELLS } from './tables.js';

/** Whether an interpreter takes its program from stdin (nothing names a script or inline code). */
export function readsProgramFromStdin(inv: Invocation): boolean {
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
export function shellCScript(args: readonly Word[]): string | null {
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

export function containsDownloader(script: Script): boolean {
  return script.some((pipeline) =>
    pipeline.some((cmd) => {
      const inv = unwrap(cmd.words);
      return (inv !== null && DOWNLOADERS.has(inv.name)) || cmd.subs.some(containsDownloader);
    }),
  );
}
