import { createHash } from 'node:crypto';
import type { TaskState } from '../domain/build.js';
import type { GrowRequest, TaskView } from './dag-store.js';
import { PLAN_LIMITS, type TaskSpec } from '../domain/plan.js';
import type { Followup } from '../domain/followup.js';
import type { Scheduler } from './scheduler.js';

/**
 * Follow-up work reported by a task ("backend: install flask; then re-run these tests")
 * becomes new tasks in the running DAG: one task per follow-up, plus — when asked — a re-run
 * of the reporting task that waits for them. Tasks that were waiting on the reporter now also
 * wait on that re-run, so nothing downstream runs before the fix.
 *
 * It is applied before the reporter's completion is recorded (while its dependents are still
 * pending), and it is idempotent: ids are derived from the request, so a retried completion
 * adds nothing twice, and identical follow-ups from several tasks merge into one task.
 */
export interface FollowupPlan {
  request: GrowRequest;
  /** Follow-ups that were not added, with the reason (depth limit). */
  refused: string[];
}

function shortHash(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 8);
}

export function followupId(f: Followup): string {
  const slug = f.title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 24) || 'task';
  return `fu-${f.role}-${slug}-${shortHash(`${f.role}\n${f.title.trim().toLowerCase()}`)}`.slice(0, PLAN_LIMITS.idMaxChars);
}

function rerunId(reporter: TaskView): string {
  return `${reporter.id.slice(0, 30)}-rerun-${shortHash(`${reporter.id}:${reporter.depth + 1}`)}`;
}

/**
 * The follow-up's description, and after it the failure that caused it (the reporter's
 * failing command and its output), so the agent that takes it starts from the evidence.
 */
function followupDescription(reporterId: string, f: Followup): string {
  if (!f.evidence) return f.description;
  const head = `${f.description}\n\nWhat task ${reporterId} saw fail:\n`;
  const room = PLAN_LIMITS.descriptionMaxChars - head.length;
  const evidence = f.evidence.length <= room ? f.evidence : `${f.evidence.slice(0, Math.max(0, room - 40))}\n…[evidence cut to fit]`;
  return `${head}${evidence}`;
}

export function planFollowups(
  reporter: TaskView,
  followups: readonly Followup[],
  states: ReadonlyMap<string, TaskState>,
  maxDepth: number,
): FollowupPlan {
  const depth = reporter.depth + 1;
  if (depth > maxDepth) {
    return { request: { tasks: [] }, refused: followups.map((f) => `${f.role}: ${f.title} (follow-up depth limit ${maxDepth} reached)`) };
  }
  const origin = `followup:${reporter.id}`;
  const tasks: GrowRequest['tasks'] = [];
  const ids: string[] = [];
  for (const f of followups) {
    const id = followupId(f);
    if (ids.includes(id)) continue;
    ids.push(id);
    // An identical follow-up already in the build (from this reporter's earlier delivery or
    // another task) is reused, not added again.
    if (states.has(id)) continue;
    const spec: TaskSpec = { id, role: f.role, title: f.title, description: followupDescription(reporter.id, f), dependsOn: [], acceptanceCriteria: [] };
    tasks.push({ spec, depth, origin });
  }
  let waitFor = ids;
  if (followups.some((f) => f.rerun)) {
    const id = rerunId(reporter);
    if (!states.has(id)) {
      const spec: TaskSpec = {
        ...reporter.spec,
        id,
        title: `Re-run: ${reporter.spec.title}`.slice(0, PLAN_LIMITS.titleMaxChars),
        description: `${reporter.spec.description}\n\nThis is a re-run after follow-up work: ${followups.map((f) => `${f.role}: ${f.title}`).join('; ')}.`.slice(
          0,
          PLAN_LIMITS.descriptionMaxChars,
        ),
        dependsOn: ids,
      };
      tasks.push({ spec, depth, origin });
    }
    waitFor = [id];
  }
  const blocks = reporter.dependents
    .filter((d) => states.get(d) === 'pending')
    .map((taskId) => ({ taskId, waitFor }));
  return { request: { tasks, blocks: tasks.length ? blocks : [] }, refused: [] };
}

/** Applies a reporter's follow-ups to its build; returns what was refused (for the result and logs). */
export async function applyFollowups(scheduler: Scheduler, buildId: string, taskId: string, followups: readonly Followup[]): Promise<string[]> {
  if (followups.length === 0) return [];
  const [reporter, states] = await Promise.all([scheduler.dag.getTask(buildId, taskId), scheduler.dag.getTaskStates(buildId)]);
  const { request, refused } = planFollowups(reporter, followups, states, scheduler.options.maxFollowupDepth);
  if (request.tasks.length > 0) await scheduler.grow(buildId, request);
  return refused;
}
