import { describe, expect, it } from 'vitest';
import { wireJsonSchema } from '../../shared/llm/wire-schema.js';
import { freshLoopState, LoopStateSchema } from '../../shared/memory/loop-state.js';
import { ReasonSchema, TaskResultSchema, ValidatePlanSchema } from '../../shared/domain/agent-phases.js';
import { planSchemaFor } from '../../workers/agent/plan-schema.js';
import { PromptBuilder, systemPrompt } from '../../workers/agent/prompts.js';
import { plannerSystemPrompt } from '../../orchestrator/planner.js';
import { roleDefinition } from '../../workers/roles/index.js';
import { ROLES } from '../../shared/domain/roles.js';

const backend = roleDefinition('backend');
const planSchema = planSchemaFor(backend.actions);
const step = (action: string, params: Record<string, unknown>) => ({ action, params, expected: 'ok' });
const planOf = (steps: unknown[]) => ({ steps, estimated_duration: '1m', confidence: 0.5 });
const task = (id: string) => ({ id, role: 'backend' as const, title: `t ${id}`, description: `do ${id}`, dependsOn: [], acceptanceCriteria: ['it works'] });

describe('phase schemas', () => {
  it('reason: the product shape, bounded', () => {
    const ok = { problem_analysis: 'a', root_causes: ['b'], approach: 'c', risks: [], success_criteria: 'd', conclusion: 'e' };
    expect(ReasonSchema.safeParse(ok).success).toBe(true);
    expect(ReasonSchema.safeParse({ ...ok, conclusion: 'x'.repeat(1_000_000) }).success).toBe(false);
    expect(ReasonSchema.safeParse({ ...ok, root_causes: 'one' }).success).toBe(false);
    expect(ReasonSchema.safeParse({ ...ok, approach: undefined }).success).toBe(false);
  });

  it('plan: actions must be the role\'s, params must match the action\'s schema', () => {
    expect(planSchema.safeParse(planOf([step('write_file', { path: 'a.py', content: 'x' })])).success).toBe(true);
    const unknown = planSchema.safeParse(planOf([step('launch_missiles', {})]));
    expect(unknown.success).toBe(false);
    const badParams = planSchema.safeParse(planOf([step('write_file', { path: 42 })]));
    expect(badParams.success).toBe(false);
    expect(JSON.stringify(badParams.error?.issues)).toMatch(/action 'write_file': path/);
    expect(planSchema.safeParse(planOf([])).success).toBe(false);
    expect(planSchema.safeParse(planOf(Array(13).fill(step('list_files', {})))).success).toBe(false);
    expect(planSchema.safeParse({ ...planOf([step('list_files', {})]), confidence: 7 }).success).toBe(false);
    expect(planSchema.safeParse(planOf([step('run_command', { command: 'x'.repeat(1_000_000), args: [] })])).success).toBe(false);
  });

  it('plan: the JSON schema sent to the LLM lists exactly the role\'s actions', () => {
    const json = JSON.stringify(wireJsonSchema(planSchema));
    for (const name of backend.actions.names) expect(json).toContain(`"${name}"`);
    expect(json).not.toContain('npm_install');
  });

  it('validate: checks of known kinds, at least one, at most ten', () => {
    const check = { kind: 'command', target: 'python3', args: ['-m', 'unittest'], contains: null };
    expect(ValidatePlanSchema.safeParse({ checks: [check], summary: 's' }).success).toBe(true);
    expect(ValidatePlanSchema.safeParse({ checks: [], summary: 's' }).success).toBe(false);
    expect(ValidatePlanSchema.safeParse({ checks: Array(11).fill(check), summary: 's' }).success).toBe(false);
    expect(ValidatePlanSchema.safeParse({ checks: [{ ...check, kind: 'vibes' }], summary: 's' }).success).toBe(false);
  });

  it('task result and loop state round-trip through JSON', () => {
    const result = { success: true, output: 'o', reasoning: ['r'], actions_taken: [{ step: 1, action: 'a', success: true, output: 'x', exitCode: 0 }], validation: { valid: true, output: 'v' }, followups: [], iterations: 1, wiped: false };
    expect(TaskResultSchema.parse(JSON.parse(JSON.stringify(result)))).toEqual(result);
    const state = freshLoopState(3);
    expect(LoopStateSchema.parse(JSON.parse(JSON.stringify(state)))).toEqual(state);
  });
});

describe('stable prompt prefix (vLLM prefix cache)', () => {
  it('the system prompt of a role is identical on every call and lists its actions', () => {
    for (const role of ROLES) {
      const def = roleDefinition(role);
      const a = systemPrompt(def);
      const b = systemPrompt(roleDefinition(role));
      expect(a).toBe(b);
      for (const name of def.actions.names) expect(a).toContain(`- ${name}:`);
      expect(a).not.toMatch(/\d{4}-\d\d-\d\dT/);
    }
  });

  const messagesOf = (id: string, goal: string, phase: string, body: string) => {
    const builder = new PromptBuilder(backend, task(id), goal, [], 4_096);
    const context = builder.context({ memory: ['Your core knowledge: none yet.'], observations: { files: [] }, history: ['none'] });
    return builder.messages(context, phase, { parts: [{ label: 'Input', value: body }], instructions: `answer the ${phase}` }).messages;
  };

  it('system, task and context messages are byte-identical across the phases of an iteration; only the phase message differs', () => {
    const phases = ['reason', 'plan', 'validate'].map((p) => messagesOf('api', 'Build a todo app', p, `body of ${p}`));
    for (const m of phases) {
      expect(m.slice(0, 3)).toEqual(phases[0]!.slice(0, 3));
    }
    expect(new Set(phases.map((m) => m[3]!.content)).size).toBe(3);
  });

  it('the system message is shared by different tasks of the role', () => {
    const a = messagesOf('a', 'goal one', 'reason', 'x');
    const b = messagesOf('b', 'goal two', 'reason', 'y');
    expect(a[0]).toEqual(b[0]);
    expect(a[1]).not.toEqual(b[1]);
  });

  it('the planner prompt names every role and its actions, the same for every goal', () => {
    const p = plannerSystemPrompt(50);
    for (const role of ROLES) {
      expect(p).toContain(`- ${role}:`);
      for (const name of roleDefinition(role).actions.names) expect(p).toContain(name);
    }
    expect(plannerSystemPrompt(50)).toBe(p);
  });
});
