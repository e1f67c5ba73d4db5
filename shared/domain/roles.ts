import { z } from 'zod';

/** The worker roles of the product design; the planner may only assign tasks to these. */
export const ROLES = ['backend', 'frontend', 'devops', 'testing'] as const;
export const RoleSchema = z.enum(ROLES);
export type Role = z.infer<typeof RoleSchema>;

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}
