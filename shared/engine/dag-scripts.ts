import { z } from 'zod';
import { BuildStateSchema, TaskStateSchema } from '../domain/build.js';
import { RoleSchema } from '../domain/roles.js';
import { loadLuaScript } from '../redis/lua-loader.js';
import type { ReadyTask } from './queues.js';

/**
 * The DAG state machine of a build, as Lua scripts (`lua/<name>-3.lua`, their shared parts in
 * `lua/includes/`), each with the schema of its reply. Each transition (create, start,
 * complete, fail, cancel, retry, grow, re-plan, and ending a build whose record is corrupt)
 * must be atomic: a task is marked done exactly once, and the dependents whose last
 * dependency that was are released by the same script, together with the build's counters
 * and its event stream entry. Two workers finishing the two last dependencies of a task at
 * the same instant therefore release it exactly once, and a crash can never leave a
 * half-applied transition.
 *
 * Every script touches only keys of one build (one hash tag), so they run on Redis Cluster
 * too; all take the same three keys and first three arguments (lua/includes/dagContext.lua).
 * Invariant kept by all of them: a task's `remaining` equals the number of its dependencies
 * that have not succeeded; `open` counts tasks not in a terminal state.
 */
const script = <Reply>(file: string, reply: z.ZodType<Reply>) => loadLuaScript(new URL(`./lua/${file}.lua`, import.meta.url), reply);

/** Why a job may not start its task (lua/includes/cannotStart.lua). */
const StartRefusalSchema = z.union([z.enum(['missing', 'stale']), z.templateLiteral(['build-', BuildStateSchema]), TaskStateSchema]);
export type StartRefusal = z.infer<typeof StartRefusalSchema>;

/** What finishIfDone answers: the state a build just ended in, or '' (read as undefined) when it goes on. */
const FinishedSchema = z.enum(['', 'succeeded', 'failed']).transform((s) => s || undefined);

/** A generation as Redis stores it: a decimal string. */
const GenSchema = z.string().regex(/^\d+$/, 'not a generation').transform(Number);

/**
 * A flat reply of records of `width` values each (how a script returns a list of tasks),
 * each record parsed by `record`.
 */
function flatRecords<T>(width: number, record: z.ZodType<T, string[]>) {
  return z.array(z.string()).transform((flat, ctx): T[] => {
    const out: T[] = [];
    for (let i = 0; i < flat.length; i += width) {
      const parsed = record.safeParse(flat.slice(i, i + width));
      if (!parsed.success) {
        ctx.addIssue({ code: 'custom', message: `record at ${i}: ${parsed.error.issues[0]?.message ?? 'malformed'}` });
        return z.NEVER;
      }
      out.push(parsed.data);
    }
    return out;
  });
}

/** Tasks released by a script: id, role, gen, spec (lua/includes/release.lua). */
const ReleasedSchema = flatRecords(
  4,
  z.tuple([z.string().min(1), RoleSchema, GenSchema, z.string()]).transform(([taskId, role, gen, spec]): ReadyTask => ({ taskId, role, gen, spec })),
);

const ErrSchema = z.tuple([z.literal('err'), z.string()]).transform(([, message]) => ({ kind: 'err' as const, message }));
const OkReleasedSchema = z
  .tuple([z.literal('ok')], z.string())
  .transform(([, ...flat]) => flat)
  .pipe(ReleasedSchema)
  .transform((ready) => ({ kind: 'ok' as const, ready }));

export const createBuildScript = script('createBuild-3', z.enum(['ok', 'exists']));

export const startTaskScript = script(
  'startTask-3',
  z.union([
    z.tuple([z.literal('run'), z.string(), z.number().int()]).transform(([, spec, attempt]) => ({ kind: 'run' as const, spec, attempt })),
    z.tuple([StartRefusalSchema]).transform(([reason]) => ({ kind: 'skip' as const, reason })),
  ]),
);

/** One entry's outcome in completeTasks: recorded, already recorded, or why its unrecorded start may not happen. */
const CompletionStatusSchema = z.union([z.enum(['ok', 'noop']), StartRefusalSchema]);
type CompletionStatus = z.infer<typeof CompletionStatusSchema>;

/**
 * completeTasks answers one status per entry, then the released tasks; how many statuses
 * there are is the caller's to know, so the reply is split by `decodeCompletions`.
 */
export const completeTasksScript = script('completeTasks-3', z.tuple([FinishedSchema], z.string()));

export function decodeCompletions(
  reply: [finished: 'succeeded' | 'failed' | undefined, ...rest: string[]],
  entries: number,
): { finished: 'succeeded' | 'failed' | undefined; statuses: CompletionStatus[]; ready: ReadyTask[] } {
  const [finished, ...rest] = reply;
  const statuses = z.array(CompletionStatusSchema).length(entries).parse(rest.slice(0, entries));
  return { finished, statuses, ready: ReleasedSchema.parse(rest.slice(entries)) };
}

export const failTaskScript = script(
  'failTask-3',
  z.tuple([z.union([z.literal(0), z.literal(1)]), FinishedSchema]).transform(([applied, finished]) => ({ applied: applied === 1, finished })),
);

/** The tasks a cancel found with a job: id, role, gen, the state they had. */
const CancelledSchema = flatRecords(
  4,
  z.tuple([z.string().min(1), RoleSchema, GenSchema, TaskStateSchema]).transform(([taskId, role, gen, previous]) => ({ taskId, role, gen, previous })),
);

export const cancelBuildScript = script(
  'cancelBuild-3',
  z.union([
    ErrSchema,
    z
      .tuple([z.literal('ok')], z.string())
      .transform(([, ...flat]) => flat)
      .pipe(CancelledSchema)
      .transform((withJobs) => ({ kind: 'ok' as const, withJobs })),
  ]),
);

export const retryTaskScript = script('retryTask-3', z.union([ErrSchema, OkReleasedSchema]));

export const growBuildScript = script(
  'growBuild-3',
  z.union([ErrSchema, z.tuple([z.literal('conflict')]).transform(() => ({ kind: 'conflict' as const })), OkReleasedSchema]),
);

export const replanTaskScript = script(
  'replanTask-3',
  z.union([z.tuple([z.literal('no')]).transform(() => ({ kind: 'no' as const })), OkReleasedSchema]),
);

export const failCorruptBuildScript = script('failCorruptBuild-3', z.literal('failed'));
