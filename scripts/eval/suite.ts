import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CodegodError } from '../../shared/domain/errors.js';

/**
 * An evaluation suite: goals to build, each with checks that look at the produced project
 * independently of the agents' own tests (run a CLI on a fixture, import the API and call it,
 * read the Dockerfile). A suite is YAML or JSON:
 *
 * ```yaml
 * name: standard
 * goals:
 *   - id: wordcount-cli
 *     goal: Create a Python command-line tool wordcount.py that …
 *     timeoutSec: 900                   # default: --timeout, else 1800
 *     checks:
 *       - name: counts a file
 *         files: { .eval/sample.txt: "one two\n" }   # written into the workspace first
 *         command: python3
 *         args: [wordcount.py, .eval/sample.txt]
 *         stdin: ""                     # optional
 *         exitCode: 0                   # default 0
 *         stdout: ["1 2 8"]             # each must occur in stdout
 *       - name: has a non-root Dockerfile
 *         file: Dockerfile
 *         contains: ["USER "]
 * ```
 *
 * Checks run in the build's sandbox, like the agents' commands: the produced code is untrusted.
 */
const RelativePath = z
  .string()
  .min(1)
  .max(300)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'a path inside the workspace');

const CommandCheckSchema = z
  .object({
    name: z.string().min(1).max(200),
    files: z.record(RelativePath, z.string().max(1_000_000)).default({}),
    command: z.string().min(1).max(300),
    args: z.array(z.string().max(100_000)).max(100).default([]),
    cwd: RelativePath.optional(),
    stdin: z.string().max(1_000_000).optional(),
    exitCode: z.number().int().min(0).max(255).default(0),
    stdout: z.array(z.string().min(1)).default([]),
    timeoutSec: z.number().positive().max(3_600).default(120),
  })
  .strict();

const FileCheckSchema = z
  .object({
    name: z.string().min(1).max(200),
    file: RelativePath,
    contains: z.array(z.string().min(1)).default([]),
  })
  .strict();

export type CommandCheck = z.infer<typeof CommandCheckSchema>;
export type SuiteCheck = CommandCheck | z.infer<typeof FileCheckSchema>;

/** A check with `command` runs it; any other is a file check. Each is held to its own schema, so problems name its fields. */
export const CheckSchema = z.unknown().transform((value, ctx): SuiteCheck => {
  const schema = value !== null && typeof value === 'object' && 'command' in value ? CommandCheckSchema : FileCheckSchema;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  return z.NEVER;
});

export const GoalSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'lowercase letters, digits and -'),
    goal: z.string().min(10).max(4_000),
    timeoutSec: z.number().positive().max(24 * 3_600).optional(),
    checks: z.array(CheckSchema).min(1).max(50),
  })
  .strict();
export type SuiteGoal = z.infer<typeof GoalSchema>;

export const SuiteSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
    description: z.string().max(2_000).default(''),
    goals: z.array(GoalSchema).min(1).max(500),
  })
  .strict()
  .superRefine((suite, ctx) => {
    const seen = new Set<string>();
    suite.goals.forEach((g, i) => {
      if (seen.has(g.id)) ctx.addIssue({ code: 'custom', path: ['goals', i, 'id'], message: `goal ${g.id} appears twice` });
      seen.add(g.id);
    });
  });
export type Suite = z.infer<typeof SuiteSchema>;

export function isCommandCheck(check: SuiteCheck): check is CommandCheck {
  return 'command' in check;
}

function invalid(message: string): CodegodError {
  return new CodegodError('USAGE', message, { exitCode: 2 });
}

export function parseSuite(input: unknown, source: string): Suite {
  const parsed = SuiteSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.slice(0, 10).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw invalid(`invalid suite ${source}: ${problems.join('; ')}`);
}

export async function loadSuite(path: string): Promise<Suite> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw invalid(`cannot read suite ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw invalid(`suite ${path} is neither JSON nor YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return parseSuite(data, path);
}

/** The goals to run: all of them, or those named (every name must exist). */
export function selectGoals(suite: Suite, ids: readonly string[] | undefined): SuiteGoal[] {
  if (!ids || ids.length === 0) return suite.goals;
  const unknown = ids.filter((id) => !suite.goals.some((g) => g.id === id));
  if (unknown.length) throw invalid(`suite ${suite.name} has no goal ${unknown.join(', ')} (it has: ${suite.goals.map((g) => g.id).join(', ')})`);
  return suite.goals.filter((g) => ids.includes(g.id));
}
