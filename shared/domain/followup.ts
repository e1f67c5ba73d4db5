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

/**
 * A follow-up as the reporting task's result carries it: the request, and the failure that
 * caused it (the failing command and its output), which the follow-up task is shown.
 */
export const FollowupSchema = FollowupRequestSchema.extend({
  evidence: z.string().max(4_000).optional(),
});
export type Followup = z.infer<typeof FollowupSchema>;
