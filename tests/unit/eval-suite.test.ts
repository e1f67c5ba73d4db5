import { describe, expect, it } from 'vitest';
import { renderSummary, summarize } from '../../scripts/eval/report.js';
import type { GoalResult } from '../../scripts/eval/runner.js';
import { isCommandCheck, loadSuite, parseSuite, selectGoals } from '../../scripts/eval/suite.js';
import { CodegodError } from '../../shared/domain/errors.js';

describe('the shipped evaluation suite', () => {
  it('has about twenty goals of every kind, each with checks of its own', async () => {
    const suite = await loadSuite('scripts/eval/suites/standard.yaml');
    expect(suite.goals).toHaveLength(20);
    const ids = suite.goals.map((g) => g.id);
    for (const kind of ['cli', 'api', 'react', 'docker']) expect(ids.some((id) => id.includes(kind)), kind).toBe(true);
    for (const goal of suite.goals) {
      expect(goal.checks.length, goal.id).toBeGreaterThan(0);
      // Every goal has at least one check that runs the result, not only reads it.
      expect(goal.checks.some(isCommandCheck), goal.id).toBe(true);
    }
  });
});

describe('suite files', () => {
  const goal = { id: 'a', goal: 'Build something small.', checks: [{ name: 'runs', command: 'python3', args: ['a.py'] }] };

  it('fills defaults and refuses duplicates, paths out of the workspace and unknown keys', () => {
    const suite = parseSuite({ name: 's', goals: [goal] }, 'x.yaml');
    const [check] = suite.goals[0]!.checks;
    expect(check).toMatchObject({ exitCode: 0, stdout: [], files: {}, timeoutSec: 120 });
    const bad = (input: unknown) => {
      try {
        parseSuite(input, 'x.yaml');
      } catch (err) {
        expect(err).toBeInstanceOf(CodegodError);
        expect((err as CodegodError).exitCode).toBe(2);
        return (err as CodegodError).message;
      }
      throw new Error('accepted');
    };
    expect(bad({ name: 's', goals: [goal, goal] })).toContain('goal a appears twice');
    expect(bad({ name: 's', goals: [{ ...goal, checks: [{ name: 'x', file: '../etc/passwd' }] }] })).toContain('invalid suite x.yaml');
    expect(bad({ name: 's', goals: [{ ...goal, checks: [{ name: 'x', command: 'ls', files: { '/tmp/x': '' } }] }] })).toContain('goals.0.checks.0.files./tmp/x: Invalid key');
    expect(bad({ name: 's', goals: [{ ...goal, extra: 1 }] })).toContain('invalid suite');
    expect(() => selectGoals(suite, ['b'])).toThrow('suite s has no goal b (it has: a)');
    expect(selectGoals(suite, [])).toEqual(suite.goals);
  });
});

describe('the evaluation report', () => {
  const result = (id: string, over: Partial<GoalResult>): GoalResult => ({
    id,
    buildId: `b-${id}`,
    outcome: 'succeeded',
    reason: null,
    ms: 61_000,
    llmCalls: 10,
    promptTokens: 9_000,
    completionTokens: 1_000,
    tasks: { total: 2, succeeded: 2, failed: 0 },
    projectTests: { ran: true, passed: true, summary: 'tests passed: 3 passed, 0 failed' },
    checks: [{ name: 'runs', passed: true }],
    checksPassed: 1,
    ...over,
  });

  it('totals the goals and lists what failed', () => {
    const s = summarize({
      suite: 'standard',
      startedAt: 'a',
      finishedAt: 'b',
      endpoint: 'http://llm/v1',
      model: 'm',
      promptBudgetTokens: 4_096,
      goals: [
        result('one', {}),
        result('two', { outcome: 'failed', reason: 'task x failed', projectTests: { ran: false, passed: false, summary: 'no tests found' }, checks: [{ name: 'runs', passed: false, detail: 'exit 1' }], checksPassed: 0 }),
      ],
    });
    expect(s.totals).toEqual({ goals: 2, buildsSucceeded: 1, projectTestsPassed: 1, checksAllPassed: 1, checksPassed: 1, checks: 2, ms: 122_000, llmCalls: 20, promptTokens: 18_000, completionTokens: 2_000 });
    const lines = renderSummary(s);
    expect(lines[0]).toBe('suite standard · model m at http://llm/v1 · prompt budget 4096 tokens');
    expect(lines.some((l) => /^one +succeeded +pass +1\/1 +1m 01s +10 +10/.test(l))).toBe(true);
    expect(lines.some((l) => /^two +failed +none +0\/1 /.test(l))).toBe(true);
    expect(lines).toContain('two: failed: task x failed');
    expect(lines).toContain('two: check "runs" failed: exit 1');
  });
});
