import { CodegodError } from './errors.js';

/** Checks a user's goal before anything is stored: one readable line for what is wrong. */
export function validateGoal(raw: string, maxChars: number): string {
  const goal = raw.trim();
  if (!goal) throw new CodegodError('GOAL_INVALID', 'the goal is empty; say what to build, e.g. codegod build "Create a Flask + React todo app"', { exitCode: 2 });
  if (goal.length > maxChars) {
    throw new CodegodError('GOAL_INVALID', `the goal is ${goal.length} characters long; the limit is ${maxChars} (CODEGOD_MAX_GOAL_CHARS)`, { exitCode: 2 });
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(goal)) throw new CodegodError('GOAL_INVALID', 'the goal contains control characters', { exitCode: 2 });
  return goal;
}
