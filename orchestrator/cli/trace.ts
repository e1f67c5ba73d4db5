import type { TaskView } from '../../shared/engine/dag-store.js';
import { DataCorruptError } from '../../shared/domain/errors.js';
import { LoopStateStore, type Iteration, type LoopState } from '../../shared/memory/loop-state.js';
import { withSession, type CliContext, type Session } from './context.js';
import { EXIT } from './exit-codes.js';
import { clip, formatCount, formatDuration, table } from './format.js';

export interface TraceOptions {
  json?: boolean;
  /** Whole outputs instead of their last lines. */
  full?: boolean;
}

type Usage = NonNullable<Iteration['reason']>['usage'];

/** Tokens the LLM phases of a trace used (Observe and Act are code and use none). */
export function traceTokens(state: LoopState): number {
  let n = 0;
  for (const it of state.iterations) {
    for (const u of [it.reason?.usage, it.plan?.usage, it.validate?.usage]) if (u) n += u.promptTokens + u.completionTokens;
  }
  return n;
}

function tokens(u: Usage | undefined): string {
  if (!u) return '';
  const cut = u.prompt?.cut.length ? ` (prompt cut to fit its budget: ${u.prompt.cut.join(', ')})` : '';
  return `${formatCount(u.promptTokens + u.completionTokens)} tokens${cut}`;
}

function params(p: Record<string, unknown>): string {
  return clip(
    Object.entries(p)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' '),
    160,
  );
}

/**
 * The last `lines` non-blank lines of an output (everything with `full`), for showing under
 * its step: the end of a command's output is where its verdict usually is.
 */
function output(text: string, full: boolean, lines: number): string[] {
  if (full) return text.replace(/\s+$/, '').split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
  const all = text.split('\n').filter((l) => l.trim() !== '');
  const shown = all.slice(-lines);
  const cut = all.length - shown.length;
  // Per line, indentation kept (tracebacks read by it).
  const fit = (l: string) => {
    const line = l.replace(/\t/g, '  ').trimEnd();
    return line.length > 200 ? `${line.slice(0, 199)}…` : line;
  };
  return [...(cut > 0 ? [`… ${cut} earlier line(s)`] : []), ...shown.map(fit)];
}

function phase(name: string, ms: number | undefined, extra: string): string {
  return `  ${name.padEnd(9)}${(ms === undefined ? '' : formatDuration(ms)).padStart(7)}  ${extra}`.trimEnd();
}

function renderIteration(it: Iteration, full: boolean): string[] {
  const lines = [`iteration ${it.n}${it.failure ? '  (failed)' : ''}`];
  if (it.observe) {
    lines.push(phase('observe', it.observe.ms, `${it.observe.findings.length} finding(s)`));
    for (const f of it.observe.findings) lines.push(`      - ${clip(f, 200)}`);
    const facts = Object.entries(it.observe.facts);
    if (facts.length) lines.push(`      facts: ${clip(facts.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' '), 200)}`);
  }
  if (it.reason) {
    const r = it.reason.output;
    lines.push(phase('reason', it.reason.ms, tokens(it.reason.usage)));
    lines.push(`      conclusion: ${clip(r.conclusion, 300)}`);
    lines.push(`      approach: ${clip(r.approach, 300)}`);
    if (r.root_causes.length) lines.push(`      root causes: ${clip(r.root_causes.join('; '), 300)}`);
  }
  if (it.plan) {
    lines.push(phase('plan', it.plan.ms, `${tokens(it.plan.usage)} · confidence ${it.plan.confidence} · estimated ${clip(it.plan.estimated_duration, 40)}`));
    it.plan.steps.forEach((s, i) => lines.push(`      ${i + 1}. ${s.action} ${params(s.params)}`));
  }
  if (it.act) {
    lines.push(phase('act', it.act.ms, it.act.done ? 'all steps ran' : 'stopped early'));
    for (const s of it.act.steps) {
      const exit = s.exitCode === undefined || s.exitCode === null ? '' : ` exit ${s.exitCode}`;
      lines.push(`      ${s.index + 1}. ${s.action} ${s.ok ? 'ok' : 'FAILED'}${exit} in ${formatDuration(s.ms)}  ${params(s.params)}`);
      // A failed step shows more of its output: the error is rarely on the last line alone.
      lines.push(...output(s.output, full, s.ok ? 3 : 12).map((l) => `           ${l}`));
    }
  }
  if (it.validate) {
    lines.push(phase('validate', it.validate.ms, `${tokens(it.validate.usage)} · ${it.validate.valid ? 'valid' : 'NOT valid'}`));
    for (const c of it.validate.checks) {
      const target = [c.target, ...c.args].join(' ');
      const contains = c.contains === null ? '' : ` contains "${clip(c.contains, 60)}"`;
      lines.push(`      ${c.ok ? 'ok  ' : 'FAIL'} ${c.kind} ${clip(target, 120)}${contains}`);
      if (!c.ok) lines.push(...output(c.output, full, 6).map((l) => `           ${l}`));
    }
    if (it.validate.output) lines.push(`      verdict: ${clip(it.validate.output, 300)}`);
  }
  if (it.failure) lines.push(`  failure: ${full ? it.failure : clip(it.failure, 400)}`);
  return lines;
}

export function renderTrace(task: TaskView, state: LoopState, full = false): string[] {
  const took = formatDuration(state.updatedAt - state.startedAt);
  const lines = [
    `task ${task.id} (${task.role}) ${task.state} · trace ${state.status} · generation ${state.gen} · ${state.iterations.length} iteration(s) · ${formatCount(traceTokens(state))} tokens · ${took}`,
    `  ${clip(task.spec.title, 200)}`,
  ];
  if (state.gen !== task.gen) lines.push(`  (this trace is of generation ${state.gen}; the task was retried and is at generation ${task.gen} now)`);
  if (state.outcome) lines.push(`  outcome: ${clip(state.outcome, 400)}`);
  if (state.wiped) lines.push(`  stuck: working memory was wiped at iteration ${state.wipedAt ?? '?'} and the task tried again with fresh reasoning`);
  for (const it of state.iterations) lines.push('', ...renderIteration(it, full));
  if (task.error) lines.push('', `error: ${full ? task.error : clip(task.error, 400)}`);
  return lines;
}

async function readTrace(session: Session, store: LoopStateStore, buildId: string, taskId: string): Promise<LoopState | undefined> {
  try {
    return await store.read(buildId, taskId);
  } catch (err) {
    throw new DataCorruptError(session.keys.loopState(buildId, taskId), err instanceof Error ? err.message : String(err));
  }
}

/** `codegod trace <build> [task]`: one task's ORPAV trace in full, or every task briefly. */
export async function traceCommand(ctx: CliContext, buildId: string, taskId: string | undefined, opts: TraceOptions): Promise<number> {
  return withSession(ctx, async (session) => {
    const { dag } = session.scheduler;
    const store = new LoopStateStore(session.redis, session.keys, session.logger);
    await dag.getBuild(buildId);
    if (taskId !== undefined) {
      const task = await dag.getTask(buildId, taskId);
      const state = await readTrace(session, store, buildId, taskId);
      if (opts.json) {
        ctx.json({ buildId, taskId, role: task.role, state: task.state, error: task.error ?? null, trace: state ?? null });
      } else if (!state) {
        ctx.out(`task ${taskId} (${task.role}) is ${task.state} and has no trace: it has not run, or ran without the agent executor`);
      } else ctx.out(...renderTrace(task, state, opts.full === true));
      return EXIT.OK;
    }
    const tasks = await dag.getTasks(buildId);
    const traces = await Promise.all(tasks.map((t) => readTrace(session, store, buildId, t.id)));
    if (opts.json) {
      ctx.json({
        buildId,
        tasks: tasks.map((t, i) => {
          const s = traces[i];
          return {
            id: t.id,
            role: t.role,
            state: t.state,
            trace: s ? { status: s.status, iterations: s.iterations.length, tokens: traceTokens(s), ms: s.updatedAt - s.startedAt, wiped: s.wiped, outcome: s.outcome ?? null } : null,
          };
        }),
      });
      return EXIT.OK;
    }
    if (tasks.length === 0) {
      ctx.out(`build ${buildId} has no tasks yet`);
      return EXIT.OK;
    }
    const rows = tasks.map((t, i) => {
      const s = traces[i];
      if (!s) return [t.id, t.role, t.state, '-', '-', '-', '-', clip(t.error ?? '', 60)];
      return [t.id, t.role, t.state, String(s.iterations.length), s.status + (s.wiped ? ' (wiped)' : ''), formatCount(traceTokens(s)), formatDuration(s.updatedAt - s.startedAt), clip(t.error ?? s.outcome ?? '', 60)];
    });
    ctx.out(...table(['TASK', 'ROLE', 'STATE', 'ITER', 'TRACE', 'TOKENS', 'TIME', 'OUTCOME'], rows));
    ctx.out('', `one task in full: codegod trace ${buildId} <task>`);
    return EXIT.OK;
  });
}
