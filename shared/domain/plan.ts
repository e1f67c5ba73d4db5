import { z } from 'zod';
import { PlanValidationError } from './errors.js';
import { ROLES, RoleSchema } from './roles.js';

/**
 * A plan is the DAG the orchestrator gets from the LLM: tasks with a role and dependencies.
 * `PlanInputSchema` is deliberately loose (plain strings) so that one pass of
 * `validatePlan` can report every problem at once — an unknown role next to a cycle next to
 * a dangling dependency — which is what the planner sends back to the LLM.
 */
export const PLAN_LIMITS = {
  idMaxChars: 48,
  titleMaxChars: 200,
  descriptionMaxChars: 4_000,
  criterionMaxChars: 500,
  criteriaMax: 20,
  // A final fan-in may wait on every other task; the task limit per build bounds it.
  dependsOnMax: 100_000,
} as const;

export const TASK_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export const TaskSpecSchema = z.object({
  id: z.string().regex(TASK_ID_PATTERN).max(PLAN_LIMITS.idMaxChars),
  role: RoleSchema,
  title: z.string().min(1).max(PLAN_LIMITS.titleMaxChars),
  description: z.string().min(1).max(PLAN_LIMITS.descriptionMaxChars),
  dependsOn: z.array(z.string()).max(PLAN_LIMITS.dependsOnMax).default([]),
  acceptanceCriteria: z.array(z.string().max(PLAN_LIMITS.criterionMaxChars)).max(PLAN_LIMITS.criteriaMax).default([]),
});
export type TaskSpec = z.infer<typeof TaskSpecSchema>;

export const PlanSchema = z.object({
  summary: z.string().max(2_000).default(''),
  tasks: z.array(TaskSpecSchema).min(1),
});
export type Plan = z.infer<typeof PlanSchema>;

/** What the LLM is asked to produce (the shape is the same; validation is ours). */
export const PlanInputSchema = z.object({
  summary: z.string().optional(),
  tasks: z.array(
    z.object({
      id: z.string(),
      role: z.string(),
      title: z.string(),
      description: z.string(),
      dependsOn: z.array(z.string()).optional(),
      acceptanceCriteria: z.array(z.string()).optional(),
    }),
  ),
});
export type PlanInput = z.infer<typeof PlanInputSchema>;

export interface PlanLimits {
  maxTasks: number;
}

export type PlanValidation = { ok: true; plan: Plan } | { ok: false; problems: string[] };

function describeZodIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.length ? issue.path.join('.') : 'plan';
  return `${path}: ${issue.message}`;
}

/**
 * Finds cycles among `deps` (task → its dependencies) and returns each as a closed path,
 * e.g. ['a', 'b', 'c', 'a']. One cycle is reported per strongly connected component, which
 * names every independent loop without listing exponentially many variants.
 */
export function findCycles(deps: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's SCC, iterative so a 100k-task chain cannot overflow the stack.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const sccs: string[][] = [];
  for (const root of deps.keys()) {
    if (idx.has(root)) continue;
    const edgesOf = (node: string) => (deps.get(node) ?? []).filter((d) => deps.has(d));
    const work: Array<{ node: string; next: number; edges: string[] }> = [{ node: root, next: 0, edges: edgesOf(root) }];
    idx.set(root, index);
    low.set(root, index++);
    stack.push(root);
    onStack.add(root);
    while (work.length) {
      const frame = work[work.length - 1]!;
      if (frame.next < frame.edges.length) {
        const to = frame.edges[frame.next++]!;
        if (!idx.has(to)) {
          idx.set(to, index);
          low.set(to, index++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, next: 0, edges: edgesOf(to) });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, idx.get(to)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === idx.get(frame.node)) {
        const comp: string[] = [];
        let n: string;
        do {
          n = stack.pop()!;
          onStack.delete(n);
          comp.push(n);
        } while (n !== frame.node);
        if (comp.length > 1) sccs.push(comp);
      }
    }
  }
  return sccs.map((comp) => {
    const members = new Set(comp);
    // Walk dependencies inside the component until a node repeats: that walk is a cycle.
    const start = [...comp].sort()[0]!;
    const path = [start];
    const seen = new Map([[start, 0]]);
    let cur = start;
    for (;;) {
      const next = (deps.get(cur) ?? []).find((d) => members.has(d) && d !== cur)!;
      const at = seen.get(next);
      if (at !== undefined) return [...path.slice(at), next];
      seen.set(next, path.length);
      path.push(next);
      cur = next;
    }
  });
}

/**
 * Checks a plan as the LLM returned it. Reports all problems at once: schema problems,
 * duplicate ids, unknown roles, self-dependencies, unknown dependencies, cycles (named) and
 * size limits. `existing` lists task ids already in the build (for follow-ups that depend on
 * them).
 */
export function validatePlan(input: unknown, limits: PlanLimits, existing: ReadonlySet<string> = new Set()): PlanValidation {
  const problems: string[] = [];
  const shape = PlanInputSchema.safeParse(input);
  if (!shape.success) return { ok: false, problems: shape.error.issues.map(describeZodIssue) };
  const tasks = shape.data.tasks;
  if (tasks.length === 0) problems.push('the plan has no tasks');
  if (tasks.length + existing.size > limits.maxTasks) {
    problems.push(`too many tasks: ${tasks.length + existing.size} (limit ${limits.maxTasks} per build)`);
  }

  const seen = new Set<string>();
  tasks.forEach((t, i) => {
    const where = `task ${t.id ? `'${t.id}'` : `#${i + 1}`}`;
    if (!TASK_ID_PATTERN.test(t.id) || t.id.length > PLAN_LIMITS.idMaxChars) {
      problems.push(`${where}: id must be 1-${PLAN_LIMITS.idMaxChars} letters, digits, '_' or '-', starting with a letter or digit`);
    }
    if (seen.has(t.id) || existing.has(t.id)) problems.push(`${where}: duplicate id`);
    seen.add(t.id);
    if (!RoleSchema.safeParse(t.role).success) {
      problems.push(`${where}: unknown role '${t.role}' (expected one of ${ROLES.join(', ')})`);
    }
    if (!t.title.trim()) problems.push(`${where}: empty title`);
    if (t.title.length > PLAN_LIMITS.titleMaxChars) problems.push(`${where}: title longer than ${PLAN_LIMITS.titleMaxChars} characters`);
    if (!t.description.trim()) problems.push(`${where}: empty description`);
    if (t.description.length > PLAN_LIMITS.descriptionMaxChars) {
      problems.push(`${where}: description longer than ${PLAN_LIMITS.descriptionMaxChars} characters`);
    }
    const criteria = t.acceptanceCriteria ?? [];
    if (criteria.length > PLAN_LIMITS.criteriaMax) problems.push(`${where}: more than ${PLAN_LIMITS.criteriaMax} acceptance criteria`);
    if (criteria.some((c) => c.length > PLAN_LIMITS.criterionMaxChars)) {
      problems.push(`${where}: an acceptance criterion is longer than ${PLAN_LIMITS.criterionMaxChars} characters`);
    }
    const deps = t.dependsOn ?? [];
    if (deps.length > PLAN_LIMITS.dependsOnMax) problems.push(`${where}: more than ${PLAN_LIMITS.dependsOnMax} dependencies`);
    if (new Set(deps).size !== deps.length) problems.push(`${where}: lists a dependency twice`);
  });

  const ids = new Set([...tasks.map((t) => t.id), ...existing]);
  for (const t of tasks) {
    for (const d of t.dependsOn ?? []) {
      if (d === t.id) problems.push(`task '${t.id}': depends on itself`);
      else if (!ids.has(d)) problems.push(`task '${t.id}': depends on unknown task '${d}'`);
    }
  }
  // Duplicate ids merge their edges, so a cycle is still named next to the duplicate.
  const graph = new Map<string, string[]>();
  for (const t of tasks) graph.set(t.id, [...(graph.get(t.id) ?? []), ...(t.dependsOn ?? []).filter((d) => d !== t.id)]);
  for (const cycle of findCycles(graph)) problems.push(`dependency cycle: ${cycle.join(' → ')}`);

  if (problems.length > 0) return { ok: false, problems };
  const plan = PlanSchema.safeParse({ summary: shape.data.summary ?? '', tasks });
  if (!plan.success) return { ok: false, problems: plan.error.issues.map(describeZodIssue) };
  return { ok: true, plan: plan.data };
}

/** `validatePlan` for callers that want an exception. */
export function parsePlan(input: unknown, limits: PlanLimits, existing?: ReadonlySet<string>): Plan {
  const result = validatePlan(input, limits, existing);
  if (!result.ok) throw new PlanValidationError(result.problems);
  return result.plan;
}
