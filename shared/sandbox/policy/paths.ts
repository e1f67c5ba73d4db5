import { posix } from 'node:path';
import type { Word } from '../shell/syntax.js';
import type { Ctx, State } from './context.js';
import { HARMLESS_DEVICES, PROTECTED } from './tables.js';

export function inside(abs: string, ws: string): boolean {
  return abs === ws || abs.startsWith(ws === '/' ? '/' : `${ws}/`);
}

/** Absolute form of a path word, or null when it is relative to a directory the policy lost. */
export function absolute(text: string, state: State): string | null {
  if (text.startsWith('/')) return posix.resolve(text);
  return state.cwd === null ? null : posix.resolve(state.cwd, text);
}

/**
 * Why a path may not be removed or modified (rm, chmod, find -delete), or null when it is fine.
 * A recursive operation must name its target literally; a single file may come from a
 * variable (`rm "$f"` in a loop), since a literal path outside the workspace is refused anyway.
 */
export function targetProblem(w: Word, c: Ctx, state: State, recursive: boolean): string | null {
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

/** Why writing to a path is refused (system directories, devices, ssh keys), or null. */
export function writeProblem(w: Word, c: Ctx, state: State): string | null {
  const abs = w.dynamic || w.tilde ? null : absolute(w.text, state);
  const inWorkspace = abs !== null && inside(abs, c.workspace);
  if (!inWorkspace && /(^|\/)\.ssh(\/|$)/.test(w.text)) return `refused: writing to ssh keys ('${w.text}')`;
  if (abs === null || inWorkspace) return null;
  if (HARMLESS_DEVICES.has(abs) || /^\/dev\/(fd\/\d+|shm(\/|$))/.test(abs)) return null;
  if (abs === '/' || PROTECTED.some((p) => inside(abs, p))) return `refused: writing to ${abs} (a system path)`;
  return null;
}
