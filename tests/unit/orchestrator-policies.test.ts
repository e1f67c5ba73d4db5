import { describe, expect, it } from 'vitest';
import type { TaskState } from '../../shared/domain/build.js';
import type { TaskView } from '../../shared/engine/dag-store.js';
import { followupId, planFollowups } from '../../shared/engine/followups.js';
import { criticalPath } from '../../shared/engine/report.js';
import { validateGoal } from '../../shared/domain/goal.js';
import { taskView } from '../helpers/fixtures.js';

function view(id: string, extra: Partial<TaskView> = {}): TaskView {
  return taskView(id, {
    state: 'running',
    role: 'testing',
    spec: { id, role: 'testing', title: `title ${id}`, description: `run the tests of ${id}`, dependsOn: [], acceptanceCriteria: ['tests pass'] },
    ...extra,
  });
}

const install = { role: 'backend' as const, title: 'Install flask', description: 'pip install flask', rerun: true };

describe('follow-up planning', () => {
  it('adds the follow-up and a re-run that waits for it; pending dependents wait for the re-run', () => {
    const reporter = view('tests', { dependents: ['deploy', 'done-already'] });
    const states = new Map<string, TaskState>([['tests', 'running'], ['deploy', 'pending'], ['done-already', 'succeeded']]);
    const { request, refused } = planFollowups(reporter, [install], states, 2);
    expect(refused).toEqual([]);
    const [fu, rerun] = request.tasks;
    expect(fu!.spec).toMatchObject({ id: followupId(install), role: 'backend', title: 'Install flask', dependsOn: [] });
    expect(fu!.depth).toBe(1);
    expect(fu!.origin).toBe('followup:tests');
    expect(rerun!.spec.role).toBe('testing');
    expect(rerun!.spec.title).toBe('Re-run: title tests');
    expect(rerun!.spec.dependsOn).toEqual([fu!.spec.id]);
    expect(rerun!.spec.acceptanceCriteria).toEqual(['tests pass']);
    expect(request.blocks).toEqual([{ taskId: 'deploy', waitFor: [rerun!.spec.id] }]);
  });

  it('merges identical follow-ups (same role and title) and reuses one already in the build', () => {
    const reporter = view('tests');
    const twice = planFollowups(reporter, [install, { ...install, description: 'again', title: '  install FLASK' }], new Map([['tests', 'running']]), 2);
    expect(twice.request.tasks.filter((t) => t.spec.role === 'backend')).toHaveLength(1);
    const existing = planFollowups(reporter, [{ ...install, rerun: false }], new Map<string, TaskState>([['tests', 'running'], [followupId(install), 'queued']]), 2);
    expect(existing.request.tasks).toEqual([]);
  });

  it('a retried completion adds nothing twice (ids are derived from the request)', () => {
    const reporter = view('tests');
    const first = planFollowups(reporter, [install], new Map([['tests', 'running']]), 2);
    const states = new Map<string, TaskState>([['tests', 'running'], ...first.request.tasks.map((t) => [t.spec.id, 'pending'] as [string, TaskState])]);
    expect(planFollowups(reporter, [install], states, 2).request.tasks).toEqual([]);
  });

  it("carries the failure that caused it in the follow-up's description, cut to the description limit", () => {
    const reporter = view('tests');
    const evidence = "step 1 (run_tests) failed: $ python3 -m unittest\nModuleNotFoundError: No module named 'flask'";
    const { request } = planFollowups(reporter, [{ ...install, evidence }], new Map([['tests', 'running']]), 2);
    expect(request.tasks[0]!.spec.description).toBe(`pip install flask\n\nWhat task tests saw fail:\n${evidence}`);
    const huge = planFollowups(reporter, [{ ...install, evidence: 'e'.repeat(4_000) }], new Map([['tests', 'running']]), 2);
    const description = huge.request.tasks[0]!.spec.description;
    expect(description.length).toBeLessThanOrEqual(4_000);
    expect(description).toMatch(/…\[evidence cut to fit\]$/);
  });

  it('refuses follow-ups beyond the depth limit', () => {
    const deep = view('tests-rerun', { depth: 2 });
    const { request, refused } = planFollowups(deep, [install], new Map([['tests-rerun', 'running']]), 2);
    expect(request.tasks).toEqual([]);
    expect(refused).toEqual(['backend: Install flask (follow-up depth limit 2 reached)']);
  });

  it('follow-up ids are valid task ids of bounded length', () => {
    const id = followupId({ role: 'frontend', title: 'Fix the 💥 crash in a very long component name that goes on and on', description: 'x', rerun: false });
    expect(id).toMatch(/^fu-frontend-[a-z0-9-]+$/);
    expect(id.length).toBeLessThanOrEqual(48);
  });
});

describe('critical path', () => {
  it('is the longest chain of task durations', () => {
    const t = (id: string, start: number, end: number, deps: string[] = []) => view(id, { startedAt: start, finishedAt: end, deps });
    const tasks = [t('a', 0, 100), t('b', 100, 400, ['a']), t('c', 100, 150, ['a']), t('d', 400, 450, ['b', 'c'])];
    expect(criticalPath(tasks)).toBe(100 + 300 + 50);
    expect(criticalPath([view('never-ran')])).toBe(0);
  });
});

describe('goal validation', () => {
  it('trims, refuses empty, oversized and control characters with one line each', () => {
    expect(validateGoal('  build it  ', 100)).toBe('build it');
    expect(() => validateGoal('   ', 100)).toThrow(/^the goal is empty/);
    expect(() => validateGoal('x'.repeat(101), 100)).toThrow('the goal is 101 characters long; the limit is 100 (CODEGOD_MAX_GOAL_CHARS)');
    expect(() => validateGoal('a\u0000b', 100)).toThrow(/control characters/);
  });
});
