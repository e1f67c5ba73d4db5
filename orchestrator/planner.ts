import { CodegodError, PlanValidationError } from '../shared/domain/errors.js';
import type { ChatMessage, LlmClient } from '../shared/llm/client.js';
import { PlanInputSchema, validatePlan, type Plan } from '../shared/domain/plan.js';
import { ROLE_CATALOGUE } from '../shared/domain/role-catalogue.js';
import { ROLES } from '../shared/domain/roles.js';

/**
 * Goal → validated DAG. The LLM gets the role catalogue (each role's specialization and
 * actions), the rules of a good decomposition and the goal, and answers with the plan schema.
 * The engine's validation then checks it; an invalid plan goes back with every problem
 * listed, a bounded number of times, before the build fails with PLAN_INVALID.
 */
export const PLANNER_MAX_TOKENS = 6_000;

let catalogue: string | undefined;

/** Stable text (the planner's prompt prefix is identical for every goal). */
export function roleCatalogue(): string {
  catalogue ??= ROLES.map((role) => {
    const card = ROLE_CATALOGUE[role];
    return `- ${role}: ${card.specialization}. Actions: ${card.actions.join(', ')}.`;
  }).join('\n');
  return catalogue;
}

export function plannerSystemPrompt(maxTasks: number): string {
  return [
    'You are the master orchestrator of codegod, a team of coding agents. You break a goal into a plan: a dependency DAG of tasks, each done by one agent of one role in a shared workspace.',
    '',
    'Roles:',
    roleCatalogue(),
    '',
    'Rules of a good plan:',
    '- Atomic tasks: one concern each, small enough for one agent to finish and verify.',
    '- Explicit dependencies: a task lists in dependsOn the ids of every task whose output it needs.',
    '- Parallel where possible: tasks that do not need each other do not depend on each other.',
    '- Tests come after the code they test (a testing task depends on the tasks that wrote that code).',
    '- Every task has acceptance criteria that a command or a file check can verify.',
    `- Ids are short, unique, lowercase words with '-' (e.g. "backend-api"). At most ${maxTasks} tasks.`,
    '- The description says exactly what to build: files, commands, frameworks. Agents see only their own task and the workspace.',
    '',
    'Answer with one JSON object: {"summary": string, "tasks": [{"id", "role", "title", "description", "dependsOn": [ids], "acceptanceCriteria": [strings]}]}.',
  ].join('\n');
}

export interface PlanOutcome {
  plan: Plan;
  /** LLM answers needed, 1 when the first plan was valid. */
  attempts: number;
}

export class Planner {
  constructor(
    private readonly llm: LlmClient,
    private readonly maxAttempts: number,
  ) {}

  async plan(input: { buildId: string; goal: string; maxTasks: number; model?: string | undefined; signal?: AbortSignal; onReject?: (problems: string[], attempt: number) => Promise<void> }): Promise<PlanOutcome> {
    const messages: ChatMessage[] = [
      { role: 'system', content: plannerSystemPrompt(input.maxTasks) },
      { role: 'user', content: `Goal: ${input.goal}` },
    ];
    let problems: string[] = [];
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const res = await this.llm.structured({
        role: 'planner',
        phase: 'plan-dag',
        schema: PlanInputSchema,
        messages,
        maxTokens: PLANNER_MAX_TOKENS,
        signal: input.signal,
        model: input.model,
        taskContext: { buildId: input.buildId },
      });
      const checked = validatePlan(res.data, { maxTasks: input.maxTasks });
      if (checked.ok) return { plan: checked.plan, attempts: attempt };
      problems = checked.problems;
      await input.onReject?.(problems, attempt);
      messages.push(
        { role: 'assistant', content: JSON.stringify(res.data) },
        {
          role: 'user',
          content: `That plan was rejected:\n${problems.map((p) => `- ${p}`).join('\n')}\nFix every problem and answer with the complete plan again.`,
        },
      );
    }
    throw new PlanValidationError([`still invalid after ${this.maxAttempts} attempts`, ...problems]);
  }
}

/** Exit-code family of a planning failure, stored on the build as its failureCode. */
export function planningFailureCode(err: unknown): string {
  if (err instanceof CodegodError) {
    if (err.code === 'PLAN_INVALID') return 'PLAN_INVALID';
    if (err.code === 'LLM_MODEL_UNKNOWN') return 'LLM_MODEL_UNKNOWN';
    if (err.code === 'LLM_STRUCTURED_OUTPUT_REFUSED') return 'LLM_STRUCTURED_OUTPUT_REFUSED';
    if (err.code === 'LLM_BUDGET') return 'LLM_BUDGET';
    if (err.code === 'LLM_BAD_RESPONSE') return 'PLAN_INVALID';
  }
  return 'LLM_UNREACHABLE';
}
