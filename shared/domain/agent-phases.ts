import { z } from 'zod';
import { FollowupSchema } from './followup.js';
import { HandoffSchema } from './handoff.js';

/**
 * What the LLM must answer in each phase, as zod schemas (the JSON schema sent as
 * `response_format` is derived from them). Shapes follow the product design; every string
 * and array is bounded so a runaway reply is a validation failure, not a 1 MB memory entry.
 * Observe and Act are code, not LLM calls.
 */
const text = (max: number) => z.string().max(max);

export const ReasonSchema = z.object({
  problem_analysis: text(4_000),
  root_causes: z.array(text(500)).max(10),
  approach: text(2_000),
  risks: z.array(text(500)).max(10),
  success_criteria: text(2_000),
  conclusion: text(2_000),
});
export type Reasoning = z.infer<typeof ReasonSchema>;

export const MAX_PLAN_STEPS = 12;

export const PlanStepSchema = z.object({
  action: z.string().max(64),
  params: z.record(z.string(), z.unknown()),
  expected: text(1_000),
});
export type PlanStep = z.infer<typeof PlanStepSchema>;

export const PlanOutputBase = z.object({
  steps: z.array(PlanStepSchema).min(1).max(MAX_PLAN_STEPS),
  estimated_duration: text(200),
  confidence: z.number().min(0).max(1),
});
export type PlanOutput = z.infer<typeof PlanOutputBase>;

export const CHECK_KINDS = ['command', 'file_exists', 'file_contains'] as const;

/** A success check the Validate phase asks for; codegod runs it, the LLM does not judge it. */
export const CheckSchema = z.object({
  kind: z.enum(CHECK_KINDS),
  /** The command for `command`, else the file path. */
  target: text(500),
  args: z.array(text(1_000)).max(30),
  /** Text the file (file_contains) or the command's output (command) must contain; null for none. */
  contains: text(1_000).nullable(),
});
export type Check = z.infer<typeof CheckSchema>;

export const ValidatePlanSchema = z.object({
  checks: z.array(CheckSchema).min(1).max(10),
  summary: text(1_000),
});
export type ValidatePlan = z.infer<typeof ValidatePlanSchema>;

/** Token ceilings per phase: tight, because guided decoding can run away in whitespace. */
export const PHASE_MAX_TOKENS = { reason: 1_024, plan: 4_096, validate: 768 } as const;

/** The task result in the product's shape, stored as the task's result. */
export const TaskResultSchema = z.object({
  success: z.boolean(),
  output: z.string(),
  reasoning: z.array(z.string()),
  actions_taken: z.array(
    z.object({ step: z.number(), action: z.string(), success: z.boolean(), output: z.string(), exitCode: z.number().nullable().optional() }),
  ),
  validation: z.object({ valid: z.boolean(), output: z.string() }),
  followups: z.array(FollowupSchema).default([]),
  iterations: z.number().int(),
  wiped: z.boolean(),
  /** What dependents are told; absent in results of failed tasks. */
  handoff: HandoffSchema.optional(),
});
export type TaskResult = z.infer<typeof TaskResultSchema>;
