import { TaskResultSchema } from '../../shared/domain/agent-phases.js';
import { DataCorruptError } from '../../shared/domain/errors.js';
import { HANDOFF_LIMITS, HandoffSchema, type Handoff } from '../../shared/domain/handoff.js';
import type { DagStore } from '../../shared/engine/dag-store.js';
import { parseTaskSpec } from '../../shared/engine/dag-store.js';
import type { LoopState } from '../../shared/memory/loop-state.js';
import { estimateTokens } from '../../shared/llm/tokens.js';
import { CUT, clipToTokens } from './budget.js';

/**
 * Handoff between tasks: what a task tells the tasks that depend on it (built from its trace
 * when it succeeds), and what a task is told by its dependencies (read from their results,
 * rendered into its prompt within a share of the prompt budget).
 */

/** Results larger than this are not read at all: only their size is reported. */
export const MAX_RESULT_BYTES = 1024 * 1024;

/** One dependency as the dependent's prompt shows it. */
export interface DependencyHandoff {
  id: string;
  role: string;
  title: string;
  /** Null when nothing usable was delivered; `note` says why. */
  handoff: Handoff | null;
  note?: string;
}

function clipChars(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function checkLine(c: { kind: string; target: string; args: string[]; contains: string | null }): string {
  const what = c.kind === 'command' ? [c.target, ...c.args].join(' ') : c.target;
  return clipChars(`${c.kind}: ${what}${c.contains !== null ? ` (output contains ${JSON.stringify(c.contains)})` : ''}`, HANDOFF_LIMITS.commandChars);
}

/**
 * The handoff of a task that just succeeded, from its trace: the summary of its validation,
 * every file any iteration wrote, the commands and checks that passed in the last one, and
 * the team knowledge it recorded.
 */
export function buildHandoff(state: LoopState, summary: string): Handoff {
  const files: string[] = [];
  const knowledge: Record<string, string> = {};
  for (const it of state.iterations) {
    for (const step of it.act?.steps ?? []) {
      for (const f of step.files ?? []) if (!files.includes(f)) files.push(f);
      Object.assign(knowledge, step.knowledge ?? {});
    }
  }
  const last = state.iterations[state.iterations.length - 1];
  const commands = [...new Set((last?.act?.steps ?? []).filter((s) => s.ok).flatMap((s) => s.commands ?? []))];
  const checks = (last?.validate?.checks ?? []).filter((c) => c.ok).map(checkLine);
  return {
    summary: clipChars(summary, HANDOFF_LIMITS.summaryChars),
    files: files.slice(0, HANDOFF_LIMITS.files).map((f) => clipChars(f, HANDOFF_LIMITS.pathChars)),
    filesTotal: files.length,
    commands: commands.slice(0, HANDOFF_LIMITS.commands).map((c) => clipChars(c, HANDOFF_LIMITS.commandChars)),
    checks: checks.slice(0, HANDOFF_LIMITS.commands),
    knowledge: Object.fromEntries(
      Object.entries(knowledge)
        .slice(0, HANDOFF_LIMITS.knowledgeKeys)
        .map(([k, v]) => [k, clipChars(v, HANDOFF_LIMITS.valueChars)]),
    ),
  };
}

function corrupt(key: string, taskId: string, detail: string): DataCorruptError {
  return new DataCorruptError(key, `the result of dependency ${taskId} is malformed (${detail}); re-run that task (codegod retry) or fix the key`);
}

/**
 * What each of `taskIds` (a task's dependencies) delivered, in that order. A result that is
 * not a task result, or a handoff that breaks its schema, throws DataCorruptError: the
 * dependent task fails with that reason rather than run on garbage. A result too large to
 * read, or none at all, is shown as such.
 */
export async function readDependencyHandoffs(dag: DagStore, buildId: string, taskIds: readonly string[]): Promise<DependencyHandoff[]> {
  if (taskIds.length === 0) return [];
  const stored = await dag.readResults(buildId, taskIds, MAX_RESULT_BYTES);
  return stored.map((s): DependencyHandoff => {
    const spec = s.spec === null ? null : parseTaskSpec(s.spec);
    if (spec && !spec.ok) throw corrupt(s.key, s.taskId, `spec: ${spec.problem}`);
    const base = { id: s.taskId, role: s.role ?? '?', title: spec?.ok ? spec.spec.title : s.taskId };
    if (s.resultBytes > MAX_RESULT_BYTES) {
      return { ...base, handoff: null, note: `its result (${s.resultBytes} bytes) is over the ${MAX_RESULT_BYTES}-byte read limit and was not read` };
    }
    if (s.result === null) return { ...base, handoff: null, note: 'it recorded no result' };
    let json: unknown;
    try {
      json = JSON.parse(s.result);
    } catch {
      throw corrupt(s.key, s.taskId, 'not JSON');
    }
    const parsed = TaskResultSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw corrupt(s.key, s.taskId, `${issue?.path.join('.') || 'result'}: ${issue?.message ?? 'invalid'}`);
    }
    const result = parsed.data;
    if (result.handoff) return { ...base, handoff: result.handoff };
    // A result without a handoff (written by something other than the agent loop): its output is the summary.
    const derived = HandoffSchema.parse({
      summary: clipChars(result.output, HANDOFF_LIMITS.summaryChars),
      files: [],
      filesTotal: 0,
      commands: [],
      checks: [],
      knowledge: {},
    });
    return { ...base, handoff: derived };
  });
}

/** How much of each dependency is shown, from most to least. */
interface Detail {
  summaryChars: number;
  files: number;
  commands: number;
  knowledge: number;
  valueChars: number;
}

const DETAIL: readonly Detail[] = [
  { summaryChars: 1_000, files: 40, commands: 10, knowledge: 20, valueChars: 300 },
  { summaryChars: 300, files: 12, commands: 4, knowledge: 8, valueChars: 120 },
  { summaryChars: 120, files: 4, commands: 2, knowledge: 3, valueChars: 60 },
];

function listed(items: readonly string[], max: number, total = items.length): string {
  const shown = items.slice(0, max).join('; ');
  return total > max ? `${shown}; … (+${total - max} more)` : shown;
}

function renderOne(d: DependencyHandoff, detail: Detail): string {
  const lines = [`- ${d.id} (${d.role}): ${d.title}`];
  const h = d.handoff;
  if (!h) return [...lines, `  (${d.note ?? 'nothing handed on'})`].join('\n');
  lines.push(`  summary: ${clipChars(h.summary, detail.summaryChars) || '-'}`);
  if (h.filesTotal > 0) lines.push(`  files written (${h.filesTotal}): ${listed(h.files, detail.files, h.filesTotal)}`);
  if (h.commands.length > 0) lines.push(`  commands that passed: ${listed(h.commands, detail.commands)}`);
  if (h.checks.length > 0) lines.push(`  checks that passed: ${listed(h.checks, detail.commands)}`);
  const knowledge = Object.entries(h.knowledge).map(([k, v]) => `${k}=${clipChars(v, detail.valueChars)}`);
  if (knowledge.length > 0) lines.push(`  knowledge recorded: ${listed(knowledge, detail.knowledge)}`);
  return lines.join('\n');
}

/** A dependency in one line, for when many must share little room. */
function renderBrief(d: DependencyHandoff): string {
  const h = d.handoff;
  if (!h) return `- ${d.id} (${d.role}): ${clipChars(d.title, 60)} (${d.note ?? 'nothing handed on'})`;
  const counts = [h.filesTotal ? `${h.filesTotal} files` : '', h.checks.length ? `${h.checks.length} checks passed` : ''].filter(Boolean).join(', ');
  return `- ${d.id} (${d.role}): ${clipChars(h.summary || d.title, 100)}${counts ? ` [${counts}]` : ''}`;
}

export const HANDOFF_HEADING = 'What the tasks you depend on handed on:';

/**
 * The dependencies' handoffs as prompt text of at most `maxTokens`: in full when they fit,
 * else each with less detail, else one line each for as many as fit and a marker naming how
 * many (and which) were cut. '' when there are none or nothing fits.
 */
export function renderHandoffs(deps: readonly DependencyHandoff[], maxTokens: number): string {
  if (deps.length === 0 || maxTokens <= 0) return '';
  const fits = (text: string) => estimateTokens(text) <= maxTokens;
  for (const detail of DETAIL) {
    const text = [HANDOFF_HEADING, ...deps.map((d) => renderOne(d, detail))].join('\n');
    if (fits(text)) return text;
  }
  const marker = (rest: readonly DependencyHandoff[]) => {
    const ids = rest.slice(0, 20).map((d) => d.id).join(', ');
    return `${CUT}: ${rest.length} more dependencies did not fit the prompt budget: ${ids}${rest.length > 20 ? ', …' : ''}]`;
  };
  const lines = [HANDOFF_HEADING];
  let kept = 0;
  for (const d of deps) {
    const candidate = [...lines, renderBrief(d), marker(deps.slice(kept + 1))].join('\n');
    if (!fits(candidate)) break;
    lines.push(renderBrief(d));
    kept += 1;
  }
  const text = kept === deps.length ? lines.join('\n') : [...lines, marker(deps.slice(kept))].join('\n');
  return fits(text) ? text : clipToTokens(text, maxTokens, 'the handoff');
}
