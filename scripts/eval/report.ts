import { formatCount, formatDuration, table } from '../../orchestrator/cli/format.js';
import type { GoalResult } from './runner.js';

/**
 * What an evaluation reports: one row per goal (build outcome, the project's own tests, the
 * suite's independent checks, time, LLM calls and tokens) and a JSON summary with every
 * result and the totals, to compare models and settings run against run.
 */
export interface EvalSummary {
  suite: string;
  startedAt: string;
  finishedAt: string;
  endpoint: string;
  model: string;
  promptBudgetTokens: number;
  goals: GoalResult[];
  totals: {
    goals: number;
    buildsSucceeded: number;
    projectTestsPassed: number;
    /** Goals whose every independent check passed. */
    checksAllPassed: number;
    checksPassed: number;
    checks: number;
    ms: number;
    llmCalls: number;
    promptTokens: number;
    completionTokens: number;
  };
}

export function summarize(base: Omit<EvalSummary, 'totals'>): EvalSummary {
  const g = base.goals;
  const sum = (f: (r: GoalResult) => number) => g.reduce((n, r) => n + f(r), 0);
  return {
    ...base,
    totals: {
      goals: g.length,
      buildsSucceeded: g.filter((r) => r.outcome === 'succeeded').length,
      projectTestsPassed: g.filter((r) => r.projectTests.passed).length,
      checksAllPassed: g.filter((r) => r.checksPassed === r.checks.length).length,
      checksPassed: sum((r) => r.checksPassed),
      checks: sum((r) => r.checks.length),
      ms: sum((r) => r.ms),
      llmCalls: sum((r) => r.llmCalls),
      promptTokens: sum((r) => r.promptTokens),
      completionTokens: sum((r) => r.completionTokens),
    },
  };
}

function testsCell(r: GoalResult): string {
  if (!r.projectTests.ran) return 'none';
  return r.projectTests.passed ? 'pass' : 'FAIL';
}

/** The per-goal table and a totals line, for a terminal. */
export function renderSummary(s: EvalSummary): string[] {
  const rows = s.goals.map((r) => [
    r.id,
    r.outcome,
    testsCell(r),
    `${r.checksPassed}/${r.checks.length}`,
    formatDuration(r.ms),
    String(r.llmCalls),
    formatCount(r.promptTokens + r.completionTokens),
  ]);
  const t = s.totals;
  return [
    `suite ${s.suite} · model ${s.model} at ${s.endpoint} · prompt budget ${s.promptBudgetTokens} tokens`,
    ...table(['GOAL', 'BUILD', 'TESTS', 'CHECKS', 'TIME', 'CALLS', 'TOKENS'], rows),
    `${t.buildsSucceeded}/${t.goals} builds succeeded · own tests passed in ${t.projectTestsPassed} · all checks passed in ${t.checksAllPassed} (${t.checksPassed}/${t.checks} checks) · ${formatDuration(t.ms)} · ${t.llmCalls} LLM calls · ${formatCount(t.promptTokens + t.completionTokens)} tokens`,
    ...s.goals.flatMap((r) => [
      ...(r.reason && r.outcome !== 'succeeded' ? [`${r.id}: ${r.outcome}: ${r.reason.split('\n')[0]!.slice(0, 200)}`] : []),
      ...r.checks.filter((c) => !c.passed).map((c) => `${r.id}: check "${c.name}" failed: ${(c.detail ?? '').split('\n')[0]!.slice(0, 200)}`),
    ]),
  ];
}
