import { z } from 'zod';
import { RoleSchema } from './roles.js';

/**
 * Follow-up work a task asks for ("backend: install flask, then re-run my checks"). An
 * action returns it (testing's report_followup), the task result carries it, and the engine
 * grows the build's DAG from it before the reporter's completion releases anything.
 */
export const FollowupRequestSchema = z.object({
  role: RoleSchema,
  title: z.string().min(1).max(200),
  description: z.string().min(1).max(2_000),
  /** Re-run the reporting task's checks once the follow-up is done. */
  rerun: z.boolean(),
});
export type FollowupRequest = z.infer<typeof FollowupRequestSchema>;
