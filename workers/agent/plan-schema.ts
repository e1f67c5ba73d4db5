import { z } from 'zod';
import { MAX_PLAN_STEPS, PlanOutputBase, PlanStepSchema } from '../../shared/domain/agent-phases.js';
import type { ActionRegistry } from '../actions/registry.js';

/**
 * The plan schema of one role: `action` is an enum of the role's actions (guided decoding
 * can only produce valid names) and each step's params are checked against the action's own
 * schema, so a bad step goes back to the LLM through the repair loop with the exact problem.
 */
const planSchemas = new WeakMap<ActionRegistry, ReturnType<typeof buildPlanSchema>>();

export function planSchemaFor(registry: ActionRegistry) {
  let schema = planSchemas.get(registry);
  if (!schema) planSchemas.set(registry, (schema = buildPlanSchema(registry)));
  return schema;
}

function buildPlanSchema(registry: ActionRegistry) {
  const names = registry.names as [string, ...string[]];
  return PlanOutputBase.extend({
    steps: z.array(PlanStepSchema.extend({ action: z.enum(names) })).min(1).max(MAX_PLAN_STEPS),
  }).superRefine((plan, ctx) => {
    plan.steps.forEach((step, i) => {
      const checked = registry.check(step);
      if (!checked.ok) ctx.addIssue({ code: 'custom', path: ['steps', i, 'params'], message: checked.problem });
    });
  });
}
