import { describe, expect, it } from 'vitest';
import { PlanValidationError } from '../../shared/domain/errors.js';
import { findCycles, parsePlan, validatePlan } from '../../shared/domain/plan.js';

const task = (id: string, extra: Record<string, unknown> = {}) => ({ id, role: 'backend', title: `t ${id}`, description: 'do it', ...extra });
const limits = { maxTasks: 10 };

function problems(input: unknown, max = limits.maxTasks): string[] {
  const r = validatePlan(input, { maxTasks: max });
  if (r.ok) throw new Error('expected the plan to be rejected');
  return r.problems;
}

describe('plan validation', () => {
  it('accepts a valid DAG and fills defaults', () => {
    const r = validatePlan({ tasks: [task('a'), task('b', { dependsOn: ['a'], role: 'testing', acceptanceCriteria: ['tests pass'] })] }, limits);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.plan.tasks[0]!.dependsOn).toEqual([]);
      expect(r.plan.tasks[1]!.acceptanceCriteria).toEqual(['tests pass']);
      expect(r.plan.summary).toBe('');
    }
  });

  it('rejects duplicate ids', () => {
    expect(problems({ tasks: [task('a'), task('a')] })).toEqual(["task 'a': duplicate id"]);
  });

  it('rejects unknown dependencies', () => {
    expect(problems({ tasks: [task('a', { dependsOn: ['ghost'] })] })).toEqual(["task 'a': depends on unknown task 'ghost'"]);
  });

  it('rejects self-dependency', () => {
    expect(problems({ tasks: [task('a', { dependsOn: ['a'] })] })).toEqual(["task 'a': depends on itself"]);
  });

  it('rejects cycles and names them', () => {
    const p = problems({ tasks: [task('a', { dependsOn: ['c'] }), task('b', { dependsOn: ['a'] }), task('c', { dependsOn: ['b'] }), task('d')] });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^dependency cycle: /);
    const path = p[0]!.replace('dependency cycle: ', '').split(' → ');
    expect(path[0]).toBe(path[path.length - 1]);
    expect(new Set(path)).toEqual(new Set(['a', 'b', 'c']));
  });

  it('names each independent cycle', () => {
    const p = problems({ tasks: [task('a', { dependsOn: ['b'] }), task('b', { dependsOn: ['a'] }), task('x', { dependsOn: ['y'] }), task('y', { dependsOn: ['x'] })] });
    expect(p.filter((m) => m.startsWith('dependency cycle'))).toHaveLength(2);
  });

  it('rejects unknown roles', () => {
    expect(problems({ tasks: [task('a', { role: 'wizard' })] })).toEqual(["task 'a': unknown role 'wizard' (expected one of backend, frontend, devops, testing)"]);
  });

  it('enforces size limits: tasks per build and text lengths', () => {
    expect(problems({ tasks: Array.from({ length: 4 }, (_, i) => task(`t${i}`)) }, 3)).toEqual(['too many tasks: 4 (limit 3 per build)']);
    const p = problems({ tasks: [task('a', { title: 'x'.repeat(201), description: 'y'.repeat(4001), acceptanceCriteria: ['z'.repeat(501)] })] });
    expect(p).toEqual([
      "task 'a': title longer than 200 characters",
      "task 'a': description longer than 4000 characters",
      "task 'a': an acceptance criterion is longer than 500 characters",
    ]);
  });

  it('rejects bad ids and empty texts', () => {
    const p = problems({ tasks: [task('has space'), task('ok', { title: ' ', description: '' })] });
    expect(p).toContain("task 'has space': id must be 1-48 letters, digits, '_' or '-', starting with a letter or digit");
    expect(p).toContain("task 'ok': empty title");
    expect(p).toContain("task 'ok': empty description");
  });

  it('reports every problem at once', () => {
    const p = problems({
      tasks: [task('a', { role: 'chef', dependsOn: ['b', 'nope'] }), task('b', { dependsOn: ['a'] }), task('b'), task('c', { dependsOn: ['c'] })],
    });
    expect(p).toEqual(
      expect.arrayContaining([
        "task 'b': duplicate id",
        "task 'a': unknown role 'chef' (expected one of backend, frontend, devops, testing)",
        "task 'a': depends on unknown task 'nope'",
        "task 'c': depends on itself",
      ]),
    );
    expect(p.some((m) => m.startsWith('dependency cycle: '))).toBe(true);
    expect(p.length).toBeGreaterThanOrEqual(5);
  });

  it('rejects a wrong shape with a path to the problem', () => {
    expect(problems({ tasks: [{ id: 'a' }] })).toEqual(expect.arrayContaining([expect.stringMatching(/^tasks\.0\.role: /)]));
    expect(problems('not a plan')[0]).toMatch(/^plan: /);
    expect(problems({ tasks: [] })).toEqual(['the plan has no tasks']);
  });

  it('accepts dependencies on tasks that already exist (follow-ups)', () => {
    expect(validatePlan({ tasks: [task('fix', { dependsOn: ['old'] })] }, limits, new Set(['old'])).ok).toBe(true);
    expect(problems2()).toEqual(["task 'old': duplicate id"]);
    function problems2() {
      const r = validatePlan({ tasks: [task('old')] }, limits, new Set(['old']));
      return r.ok ? [] : r.problems;
    }
  });

  it('parsePlan throws one readable error listing all problems', () => {
    expect(() => parsePlan({ tasks: [task('a', { dependsOn: ['a'] }), task('a')] }, limits)).toThrow(PlanValidationError);
    expect(() => parsePlan({ tasks: [task('a', { dependsOn: ['a'] }), task('a')] }, limits)).toThrow(
      "invalid plan: task 'a': duplicate id; task 'a': depends on itself",
    );
  });

  it('finds cycles in a 100,000-task chain without overflowing the stack', () => {
    const deps = new Map<string, string[]>();
    for (let i = 0; i < 100_000; i++) deps.set(`t${i}`, i ? [`t${i - 1}`] : []);
    expect(findCycles(deps)).toEqual([]);
    deps.set('t0', ['t99999']);
    expect(findCycles(deps)[0]).toHaveLength(100_001);
  });
});
