import type { z } from 'zod';
import { ReasonSchema, ValidatePlanSchema } from '../../shared/domain/agent-phases.js';
import { PlanInputSchema } from '../../shared/domain/plan.js';
import { ROLES, type Role } from '../../shared/domain/roles.js';
import { planSchemaFor } from '../../workers/agent/plan-schema.js';
import { roleDefinition } from '../../workers/roles/index.js';

export interface SentSchema {
  /** `role/phase` as the request headers name it. */
  name: string;
  schema: z.ZodType;
}

/** The schema a request for `role`/`phase` carries (the planner's role is `planner`, its phase `plan-dag`). */
export function schemaOf(role: string, phase: string): z.ZodType {
  if (phase === 'plan-dag') return PlanInputSchema;
  if (phase === 'reason') return ReasonSchema;
  if (phase === 'validate') return ValidatePlanSchema;
  if (phase === 'plan' && (ROLES as readonly string[]).includes(role)) return planSchemaFor(roleDefinition(role as Role).actions);
  throw new Error(`codegod sends no schema for ${role}/${phase}`);
}

/**
 * Every schema codegod sends as `response_format`: the planner's, and each role's reason,
 * plan and validate (reason and validate are one schema shared by all roles).
 */
export function sentSchemas(): SentSchema[] {
  const out: SentSchema[] = [{ name: 'planner/plan-dag', schema: schemaOf('planner', 'plan-dag') }];
  for (const role of ROLES) for (const phase of ['reason', 'plan', 'validate']) out.push({ name: `${role}/${phase}`, schema: schemaOf(role, phase) });
  return out;
}
