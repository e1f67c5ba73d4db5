import { RAW_RULES } from './tables.js';

/** Longest command (script plus arguments) the policy will read. */
export const MAX_COMMAND_CHARS = 100_000;

/** Why the text of a command (or an environment value) is refused wherever in it a pattern appears, or null. */
export function rawProblem(text: string): string | null {
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
