import { z } from 'zod';
import { CodegodError } from '../../shared/domain/errors.js';
import { KNOWLEDGE_KEY_PATTERN, KNOWLEDGE_LIMITS } from '../../shared/memory/team-knowledge.js';
import { errorMessage } from '../../shared/domain/errors.js';
import { defineAction, type ActionContext } from './action.js';

/**
 * Records what an action found out (the venv, the image it built, the test command that
 * passed) in the build's team knowledge, for the other agents. The action did its work
 * whether or not this is written (the build may be at its cap of keys), so a refusal is
 * logged, never the action's failure.
 */
export async function shareKnowledge(ctx: Pick<ActionContext, 'knowledge' | 'logger'>, key: string, value: string): Promise<void> {
  try {
    await ctx.knowledge.set(key, value);
  } catch (err) {
    ctx.logger.warn({ key, err: errorMessage(err) }, 'could not record team knowledge');
  }
}

/**
 * Recording a fact in the build's team knowledge, for the other agents (a test command, an
 * entry point, a port). Each key has one owning role; a write to another role's key is
 * refused, and the refusal is the step's output, so the agent reads why on its next turn.
 */
export const recordKnowledgeAction = defineAction({
  name: 'record_knowledge',
  description:
    "Record a fact other agents of this build need in the team knowledge, e.g. {\"key\": \"test_command_unittest\", \"value\": \"python3 -m unittest\"}; only keys your role owns (see your context).",
  params: z.object({
    key: z.string().regex(KNOWLEDGE_KEY_PATTERN, 'lowercase letters, digits and _, starting with a letter (e.g. api_port)'),
    value: z.string().min(1).max(KNOWLEDGE_LIMITS.valueMaxChars),
  }),
  async run({ key, value }, ctx) {
    try {
      await ctx.knowledge.set(key, value);
    } catch (err) {
      if (err instanceof CodegodError && (err.code === 'KNOWLEDGE_DENIED' || err.code === 'KNOWLEDGE_INVALID')) return { ok: false, output: `refused: ${err.message}` };
      throw err;
    }
    return { ok: true, output: `team knowledge: ${key} = ${value}` };
  },
});
