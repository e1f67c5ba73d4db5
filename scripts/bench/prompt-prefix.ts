import { estimateMessagesTokens, estimateTokens } from '../../shared/llm/tokens.js';

/**
 * How much of each prompt vLLM's prefix cache can reuse: the share of a call's prompt that is a
 * prefix it shares with the previous call of the same task, in codegod's token estimate. The
 * messages are compared as the chat template lays them out — role, then content, in order —
 * so a prefix stops at the first differing character of the first differing message.
 */

export interface PromptCall {
  task: string;
  phase: string;
  messages: ReadonlyArray<{ role: string; content: string }>;
}

export interface PhaseStats {
  calls: number;
  meanPromptTokens: number;
  /** Σ shared / Σ prompt over the calls that had a previous call of their task. */
  reusableShare: number | null;
}

export interface PrefixReport {
  calls: number;
  tasks: number;
  promptTokens: number;
  meanPromptTokensPerTask: number;
  /** Over calls with a previous call of the same task: the target measure. */
  reusableShare: number;
  /** Over every call, the first call of each task counting as nothing reused. */
  reusableShareAllCalls: number;
  byPhase: Record<string, PhaseStats>;
  byTask: Record<string, { calls: number; promptTokens: number }>;
}

function layout(messages: PromptCall['messages']): string {
  return messages.map((m) => `<|${m.role}|>\n${m.content}\n`).join('');
}

/** Estimated tokens of the longest common prefix of two prompts. */
export function sharedPrefixTokens(a: PromptCall['messages'], b: PromptCall['messages']): number {
  const x = layout(a);
  const y = layout(b);
  let i = 0;
  const n = Math.min(x.length, y.length);
  while (i < n && x.charCodeAt(i) === y.charCodeAt(i)) i++;
  // Both layouts wrap each message the same way; the estimate of the shared text, capped by
  // the prompt's own estimate (which counts its framing per message).
  return Math.min(estimateTokens(x.slice(0, i)), estimateMessagesTokens(b));
}

export function prefixReport(calls: readonly PromptCall[]): PrefixReport {
  const previous = new Map<string, PromptCall>();
  const phases = new Map<string, { calls: number; prompt: number; shared: number; comparable: number }>();
  const byTask: PrefixReport['byTask'] = {};
  let prompt = 0;
  let shared = 0;
  let comparable = 0;
  for (const call of calls) {
    const tokens = estimateMessagesTokens(call.messages);
    const before = previous.get(call.task);
    const reused = before ? sharedPrefixTokens(before.messages, call.messages) : 0;
    previous.set(call.task, call);
    const p = phases.get(call.phase) ?? { calls: 0, prompt: 0, shared: 0, comparable: 0 };
    p.calls += 1;
    p.prompt += tokens;
    if (before) {
      p.shared += reused;
      p.comparable += tokens;
      shared += reused;
      comparable += tokens;
    }
    phases.set(call.phase, p);
    prompt += tokens;
    const t = (byTask[call.task] ??= { calls: 0, promptTokens: 0 });
    t.calls += 1;
    t.promptTokens += tokens;
  }
  const tasks = Object.keys(byTask).length;
  return {
    calls: calls.length,
    tasks,
    promptTokens: prompt,
    meanPromptTokensPerTask: tasks ? prompt / tasks : 0,
    reusableShare: comparable ? shared / comparable : 0,
    reusableShareAllCalls: prompt ? shared / prompt : 0,
    byPhase: Object.fromEntries(
      [...phases].map(([phase, p]) => [phase, { calls: p.calls, meanPromptTokens: p.prompt / p.calls, reusableShare: p.comparable ? p.shared / p.comparable : null }]),
    ),
    byTask,
  };
}
