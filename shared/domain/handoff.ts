import { z } from 'zod';

/**
 * What a finished task hands on to the tasks that depend on it: a summary, the files it wrote
 * or changed, the commands and checks that passed (how to run and test what it built) and the
 * team knowledge it recorded. It is part of the task's result; a dependent's prompt carries it,
 * cut to the prompt budget.
 */
export const HANDOFF_LIMITS = {
  summaryChars: 2_000,
  files: 200,
  pathChars: 300,
  commands: 40,
  commandChars: 600,
  knowledgeKeys: 50,
  valueChars: 2_000,
} as const;

export const HandoffSchema = z.object({
  summary: z.string().max(HANDOFF_LIMITS.summaryChars),
  /** Workspace-relative paths, in the order they were first written. */
  files: z.array(z.string().max(HANDOFF_LIMITS.pathChars)).max(HANDOFF_LIMITS.files),
  /** Files written in all (more than `files` lists when it hit its limit). */
  filesTotal: z.number().int().min(0),
  /** Command lines the task ran that exited 0, e.g. `.venv/bin/python -m unittest`. */
  commands: z.array(z.string().max(HANDOFF_LIMITS.commandChars)).max(HANDOFF_LIMITS.commands),
  /** Validation checks that passed, e.g. `command: python3 -m py_compile app.py`. */
  checks: z.array(z.string().max(HANDOFF_LIMITS.commandChars)).max(HANDOFF_LIMITS.commands),
  /** Team knowledge the task recorded (key → value). */
  knowledge: z.record(z.string(), z.string().max(HANDOFF_LIMITS.valueChars)),
});
export type Handoff = z.infer<typeof HandoffSchema>;
