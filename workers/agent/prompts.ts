import { CodegodError } from '../../shared/domain/errors.js';
import type { ChatMessage } from '../../shared/llm/client.js';
import { MESSAGE_OVERHEAD_TOKENS, estimateTokens } from '../../shared/llm/tokens.js';
import type { TaskSpec } from '../../shared/domain/plan.js';
import type { RoleDefinition } from '../roles/role.js';
import { fitJson, fitLines, shares } from './budget.js';
import { renderHandoffs, type DependencyHandoff } from './handoff.js';

/**
 * An agent's prompts: four messages, most stable first, so vLLM's prefix cache reuses as much
 * of each prompt as possible (every call of a task repeats the first two byte for byte, every
 * call of one iteration the first three):
 *
 *   1. system  — the role's system prompt (identical for every call of the role)
 *   2. task    — the goal, the task, and what its dependencies handed on (identical for the task)
 *   3. context — the agent's memory, the build's team knowledge, the workspace facts Observe
 *                found and the iterations that failed (identical within an iteration)
 *   4. phase   — the phase's own input (the reasoning to plan from, the actions to check) and
 *                what to answer
 *
 * The whole is held to a token budget (CODEGOD_PROMPT_BUDGET_TOKENS, by codegod's estimate).
 * A quarter of it is kept for the phase message; the task message may use half of the rest,
 * the context message what the task message left. Shares depend only on what the message
 * holds, never on the phase, so a message cut to fit is cut the same way in every call. What
 * does not fit is cut with a marker (JSON stays valid JSON), never dropped silently.
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
    '- Build on what the tasks you depend on handed on: their files, commands and checks.',
    '- If the work needs another role (e.g. a missing dependency for the backend), say so; testing agents use report_followup.',
  ].join('\n');
  systemCache.set(role, prompt);
  return prompt;
}

export function taskLines(task: TaskSpec, goal: string | undefined): string[] {
  return [
    ...(goal ? [`Project goal: ${goal}`] : []),
    `Your task (${task.id}): ${task.title}`,
    ...task.description.split('\n'),
    ...(task.acceptanceCriteria.length ? ['Acceptance criteria:', ...task.acceptanceCriteria.map((c) => `- ${c}`)] : []),
  ];
}

/** Share of the budget kept for the phase message. */
const PHASE_SHARE = 0.25;
/** Share of the rest the task message (task and handoff) may take. */
const TASK_SHARE = 0.5;
/** Least room the task and context messages must have together for prompts to make sense. */
const MIN_STABLE_TOKENS = 200;
const SEPARATOR = '\n\n';
const SEPARATOR_TOKENS = estimateTokens(SEPARATOR);

/** A budget too small for the role's system prompt and the least of everything else. */
export class PromptBudgetError extends CodegodError {
  constructor(budget: number, role: string, systemTokens: number, needed: number) {
    super(
      'CONFIG_INVALID',
      `CODEGOD_PROMPT_BUDGET_TOKENS=${budget} is too small: the ${role} agent's system prompt alone takes ~${systemTokens} tokens; give at least ${needed}`,
    );
  }
}

/** One message's text and what was cut to fit it. */
export interface BudgetedMessage {
  text: string;
  tokens: number;
  cut: string[];
}

/** What one iteration knows: memory lines, workspace facts, failed iterations. */
export interface IterationInput {
  memory: readonly string[];
  observations: Record<string, unknown>;
  history: readonly string[];
}

/** A phase's own input (shown under its label; JSON values as JSON) and what to answer. */
export interface PhaseInput {
  parts: ReadonlyArray<{ label: string; value: unknown }>;
  instructions: string;
}

export interface Prompt {
  messages: ChatMessage[];
  /** The whole prompt by codegod's estimate: never more than the budget. */
  estimate: number;
  /** Names of the parts cut to fit. */
  cut: string[];
}

/** Joins labelled parts; the empty ones are left out. */
function sections(parts: ReadonlyArray<readonly [string, string]>): string {
  return parts
    .filter(([, body]) => body !== '')
    .map(([label, body]) => (label ? `${label}\n${body}` : body))
    .join(SEPARATOR);
}

/**
 * The prompts of one task attempt. The task message is made once; `context` once per
 * iteration; `messages` once per phase call.
 */
export class PromptBuilder {
  readonly system: string;
  private readonly systemTokens: number;
  /** Room for the task and context messages together. */
  private readonly stableRoom: number;
  readonly task: BudgetedMessage;

  constructor(
    role: RoleDefinition,
    spec: TaskSpec,
    goal: string | undefined,
    handoffs: readonly DependencyHandoff[],
    private readonly budget: number,
  ) {
    this.system = systemPrompt(role);
    this.systemTokens = MESSAGE_OVERHEAD_TOKENS + estimateTokens(this.system);
    const phaseRoom = Math.ceil(budget * PHASE_SHARE);
    this.stableRoom = budget - this.systemTokens - phaseRoom - 3 * MESSAGE_OVERHEAD_TOKENS;
    if (this.stableRoom < MIN_STABLE_TOKENS) {
      const needed = Math.ceil((this.systemTokens + 3 * MESSAGE_OVERHEAD_TOKENS + MIN_STABLE_TOKENS) / (1 - PHASE_SHARE));
      throw new PromptBudgetError(budget, role.role, this.systemTokens, needed);
    }
    this.task = this.taskMessage(taskLines(spec, goal), handoffs);
  }

  private taskMessage(lines: string[], handoffs: readonly DependencyHandoff[]): BudgetedMessage {
    const room = Math.floor(this.stableRoom * TASK_SHARE) - SEPARATOR_TOKENS;
    const full = lines.join('\n');
    const handoffFull = renderHandoffs(handoffs, Number.MAX_SAFE_INTEGER);
    const [taskRoom, handoffRoom] = shares([estimateTokens(full), estimateTokens(handoffFull)], room) as [number, number];
    const taskText = fitLines(lines, taskRoom, { keep: 'head', what: 'lines of the task' });
    const handoffText = handoffFull === '' ? '' : renderHandoffs(handoffs, handoffRoom);
    const text = sections([
      ['', taskText],
      ['', handoffText],
    ]);
    const cut = [...(taskText !== full ? ['task'] : []), ...(handoffText !== handoffFull ? ['handoff'] : [])];
    return { text, tokens: MESSAGE_OVERHEAD_TOKENS + estimateTokens(text), cut };
  }

  /** The context message of one iteration. */
  context(input: IterationInput): BudgetedMessage {
    const labels = ['MEMORY', 'OBSERVATIONS (facts about the workspace now, found by Observe)', 'PREVIOUS ATTEMPTS'] as const;
    const room = this.stableRoom - (this.task.tokens - MESSAGE_OVERHEAD_TOKENS) - 2 * SEPARATOR_TOKENS - labels.reduce((n, l) => n + estimateTokens(`${l}\n`), 0);
    const memoryFull = input.memory.join('\n');
    const factsFull = JSON.stringify(input.observations, null, 1);
    const historyFull = input.history.join('\n');
    const [memoryRoom, factsRoom, historyRoom] = shares([estimateTokens(memoryFull), estimateTokens(factsFull), estimateTokens(historyFull)], room) as [number, number, number];
    const memory = fitLines(input.memory, memoryRoom, { keep: 'head', what: 'memory lines' });
    const facts = fitJson(input.observations, factsRoom, 'the observations');
    const history = fitLines(input.history, historyRoom, { keep: 'tail', what: 'earlier failed iterations' });
    const text = sections([
      [labels[0], memory],
      [labels[1], facts],
      [labels[2], history],
    ]);
    const cut = [
      ...(memory !== memoryFull ? ['memory'] : []),
      ...(facts !== factsFull ? ['observations'] : []),
      ...(history !== historyFull ? ['history'] : []),
    ];
    return { text, tokens: MESSAGE_OVERHEAD_TOKENS + estimateTokens(text), cut };
  }

  /** The four messages of one phase call, within the budget. */
  messages(context: BudgetedMessage, phase: string, input: PhaseInput): Prompt {
    const head = `PHASE: ${phase.toUpperCase()}`;
    const fixed = estimateTokens(head) + SEPARATOR_TOKENS + estimateTokens(input.instructions);
    const labels = input.parts.map((p) => `${p.label}:\n`);
    const room =
      this.budget - this.systemTokens - this.task.tokens - context.tokens - MESSAGE_OVERHEAD_TOKENS - fixed -
      input.parts.length * SEPARATOR_TOKENS - labels.reduce((n, l) => n + estimateTokens(l), 0);
    const render = (value: unknown, max: number) =>
      typeof value === 'string' ? fitLines(value.split('\n'), max, { keep: 'head', what: 'lines' }) : fitJson(value, max, 'this input');
    const fulls = input.parts.map((p) => (typeof p.value === 'string' ? p.value : JSON.stringify(p.value, null, 1)));
    const rooms = shares(fulls.map(estimateTokens), room);
    const bodies = input.parts.map((p, i) => render(p.value, rooms[i]!));
    const phaseText = sections([
      ['', head],
      ...input.parts.map((p, i) => [`${p.label}:`, bodies[i]!] as const),
      ['', input.instructions],
    ]);
    const messages: ChatMessage[] = [
      { role: 'system', content: this.system },
      { role: 'user', content: this.task.text },
      { role: 'user', content: context.text },
      { role: 'user', content: phaseText },
    ];
    const cut = [...this.task.cut, ...context.cut, ...input.parts.filter((_, i) => bodies[i] !== fulls[i]).map((p) => p.label)];
    const estimate = this.systemTokens + this.task.tokens + context.tokens + MESSAGE_OVERHEAD_TOKENS + estimateTokens(phaseText);
    return { messages, estimate, cut };
  }
}
