import { z } from 'zod';
import { CodegodError, errorMessage } from '../../shared/domain/errors.js';
import type { ActionContext, ActionDef, ActionResult } from './action.js';

export interface PlannedStep {
  action: string;
  params: unknown;
}

export type StepCheck = { ok: true; action: ActionDef; params: unknown } | { ok: false; problem: string };

/**
 * The typed actions of one role. An unknown action or parameters that do not match the
 * action's schema is a validation problem reported back to the LLM, never an exception.
 */
export class ActionRegistry {
  private readonly byName: Map<string, ActionDef>;

  constructor(readonly actions: readonly ActionDef[]) {
    this.byName = new Map(actions.map((a) => [a.name, a]));
    if (this.byName.size !== actions.length) throw new CodegodError('ACTION_INVALID', 'duplicate action names in a role');
  }

  get names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  check(step: PlannedStep): StepCheck {
    const action = this.byName.get(step.action);
    if (!action) return { ok: false, problem: `unknown action '${String(step.action).slice(0, 60)}' (allowed: ${this.names.join(', ')})` };
    const parsed = action.params.safeParse(step.params ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || 'params'}: ${i.message}`);
      return { ok: false, problem: `action '${action.name}': ${issues.join('; ')}` };
    }
    return { ok: true, action, params: parsed.data };
  }

  /** Runs a checked step; an unexpected exception becomes a failed result the agent can read. */
  async run(step: PlannedStep, ctx: ActionContext): Promise<ActionResult> {
    const checked = this.check(step);
    if (!checked.ok) return { ok: false, output: checked.problem };
    try {
      return await checked.action.run(checked.params, ctx);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      return { ok: false, output: errorMessage(err) };
    }
  }

  /** The catalogue for the role's system prompt: stable text, so the prompt prefix is too. */
  describe(): string {
    return this.actions
      .map((a) => `- ${a.name}: ${a.description}\n  params: ${JSON.stringify(z.toJSONSchema(a.params, { io: 'input', unrepresentable: 'any' }))}`)
      .join('\n');
  }
}
