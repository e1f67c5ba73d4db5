import { z } from 'zod';

/** Messages on the control channel (Redis pub/sub, keys.control) from orchestrator to workers. */
export const ControlMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cancel'), buildId: z.string(), reason: z.string() }),
]);
export type ControlMessage = z.infer<typeof ControlMessageSchema>;

export function parseControlMessage(raw: string): ControlMessage | undefined {
  try {
    const parsed = ControlMessageSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
