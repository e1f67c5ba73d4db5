import type { ChatMessage } from '../../shared/llm/client.js';
import type { TaskSpec } from '../../shared/domain/plan.js';
import type { RoleDefinition } from '../roles/role.js';

/**
 * Prompts keep a stable prefix so vLLM's prefix cache is reused: the role's system prompt
 * (identical for every call of the role), then the task block (identical for every phase of
 * the task), then the phase's own message. Nothing that varies — times, ids of attempts —
 * goes before the phase message.
 */
const systemCache = new WeakMap<RoleDefinition, string>();

export function systemPrompt(role: RoleDefinition): string {
  let prompt = systemCache.get(role);
  if (prompt) return prompt;
  prompt = [
    `You are the ${role.role} agent of codegod, a team of coding agents building a project in a shared workspace.`,
    `Your specialization: ${role.specialization}.`,
    '',
    'You work in phases: Observe (done for you: facts about the workspace), Reason, Plan, Act (codegod runs your plan), Validate.',
    'In every phase you answer with one JSON object matching the schema you are given, and nothing else.',
    '',
    'Your actions (the only ones you may plan; params must match each schema):',
    role.actions.describe(),
    '',
    'Rules:',
    '- Paths are relative to the workspace root. Absolute paths, "..", sudo and destructive commands are refused.',
    '- Prefer small, verifiable steps. Write complete files, not fragments.',
    '- Success criteria must be checkable by commands or file checks.',
    '- If the work needs another role (e.g. a missing dependency for the backend), say so; testing agents use report_followup.',
  ].join('\n');
  systemCache.set(role, prompt);
  return prompt;
}

export function taskBlock(task: TaskSpec, goal: string | undefined): string {
  return [
    goal ? `Project goal: ${goal}` : undefined,
    `Your task (${task.id}): ${task.title}`,
    task.description,
    task.acceptanceCriteria.length ? `Acceptance criteria:\n${task.acceptanceCriteria.map((c) => `- ${c}`).join('\n')}` : undefined,
  ]
    .filter((l) => l !== undefined)
    .join('\n');
}

/** [system, task, phase] — the first two are byte-identical across the phases of a task. */
export function phaseMessages(role: RoleDefinition, task: TaskSpec, goal: string | undefined, phase: string, body: string): ChatMessage[] {
  return [
    { role: 'system', content: systemPrompt(role) },
    { role: 'user', content: taskBlock(task, goal) },
    { role: 'user', content: `PHASE: ${phase.toUpperCase()}\n${body}` },
  ];
}

/** JSON for a prompt, bounded so a huge fact (a long file list) cannot crowd out the rest. */
export function promptJson(value: unknown, maxChars = 12_000): string {
  const json = JSON.stringify(value, null, 1);
  return json.length <= maxChars ? json : `${json.slice(0, maxChars)}\n…(${json.length - maxChars} more characters)`;
}
