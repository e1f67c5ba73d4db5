import { describe, expect, it } from 'vitest';
import { prefixReport, sharedPrefixTokens } from '../../scripts/bench/prompt-prefix.js';
import type { Handoff } from '../../shared/domain/handoff.js';
import type { TaskSpec } from '../../shared/domain/plan.js';
import { estimateMessagesTokens, estimateTokens } from '../../shared/llm/tokens.js';
import { addObservation, addReasoning, emptyMemory, setBlockedOn, setKnowledge, startTask } from '../../shared/memory/reducers.js';
import { clipToTokens, CUT, fitJson, fitLines, shares } from '../../workers/agent/budget.js';
import { renderHandoffs, type DependencyHandoff } from '../../workers/agent/handoff.js';
import { memoryLines, taskTag } from '../../workers/agent/memory-view.js';
import { PromptBudgetError, PromptBuilder } from '../../workers/agent/prompts.js';
import { roleDefinition } from '../../workers/roles/index.js';

const spec = (over: Partial<TaskSpec> = {}): TaskSpec => ({
  id: 'api',
  role: 'backend',
  title: 'Write the API',
  description: 'Create app.py with a WSGI app.',
  dependsOn: [],
  acceptanceCriteria: ['app.py compiles'],
  ...over,
});

const handoff = (i: number, size = 1): Handoff => ({
  summary: `summary ${i} ${'s'.repeat(100 * size)}`,
  files: Array.from({ length: 20 * size }, (_, f) => `src/file_${i}_${f}.py`),
  filesTotal: 20 * size,
  commands: Array.from({ length: 4 * size }, (_, c) => `python3 -m unittest test_${i}_${c}`),
  checks: [`command: python3 -m py_compile src/file_${i}_0.py`],
  knowledge: { [`api_port_${i}`]: '5000' },
});

const dep = (i: number, size = 1): DependencyHandoff => ({ id: `d${i}`, role: 'backend', title: `dependency ${i}`, handoff: handoff(i, size) });

describe('fitting text and JSON into a token budget', () => {
  it('keeps JSON valid and within the budget at every size, marking what was cut', () => {
    const huge = {
      files: Array.from({ length: 5_000 }, (_, i) => `dir/${i}/${'x'.repeat(50)}.py`),
      nested: { deep: { deeper: { deepest: { text: 'y'.repeat(50_000), list: Array.from({ length: 100 }, (_, i) => ({ i, s: 'z'.repeat(300) })) } } } },
      many: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i])),
    };
    for (const max of [8, 30, 100, 400, 1_500, 6_000]) {
      const text = fitJson(huge, max, 'the facts');
      expect(estimateTokens(text), `max ${max}`).toBeLessThanOrEqual(max);
      if (text !== '') {
        expect(() => JSON.parse(text)).not.toThrow();
        expect(text).toContain(CUT);
      }
    }
    const small = { a: 1, b: ['x'] };
    expect(fitJson(small, 100, 'x')).toBe(JSON.stringify(small, null, 1));
  });

  it('keeps whole lines from the head or the tail, with a marker line, never over the budget', () => {
    const lines = Array.from({ length: 100 }, (_, i) => `line ${i} ${'w'.repeat(40)}`);
    const head = fitLines(lines, 120, { keep: 'head', what: 'lines' });
    expect(estimateTokens(head)).toBeLessThanOrEqual(120);
    expect(head.startsWith('line 0 ')).toBe(true);
    expect(head.split('\n').at(-1)).toMatch(/^…\[cut: \d+ more lines did not fit the prompt budget\]$/);
    const tail = fitLines(lines, 120, { keep: 'tail', what: 'lines' });
    expect(tail.split('\n')[0]).toMatch(/^…\[cut: \d+ more lines/);
    expect(tail.endsWith(`line 99 ${'w'.repeat(40)}`)).toBe(true);
    expect(fitLines(['short'], 10, { keep: 'head', what: 'lines' })).toBe('short');
    // One line longer than the budget is clipped inside.
    const clipped = fitLines(['q'.repeat(10_000)], 50, { keep: 'head', what: 'lines' });
    expect(estimateTokens(clipped)).toBeLessThanOrEqual(50);
    expect(clipped).toContain(CUT);
    expect(estimateTokens(clipToTokens('é'.repeat(5_000), 40))).toBeLessThanOrEqual(40);
  });

  it('shares room: small needs in full, the rest split evenly, the same on every call', () => {
    expect(shares([10, 20], 100)).toEqual([10, 20]);
    expect(shares([10, 500, 500], 210)).toEqual([10, 100, 100]);
    expect(shares([500, 10], 100)).toEqual([90, 10]);
    expect(shares([5, 5], 0)).toEqual([0, 0]);
  });
});

describe('handoff rendering', () => {
  it('shows everything when it fits, less per dependency when not, then one line each for as many as fit', () => {
    const full = renderHandoffs([dep(1)], 10_000);
    expect(full).toContain('- d1 (backend): dependency 1');
    expect(full).toContain('files written (20): src/file_1_0.py;');
    expect(full).toContain('commands that passed: python3 -m unittest test_1_0;');
    expect(full).toContain('knowledge recorded: api_port_1=5000');
    const many = Array.from({ length: 200 }, (_, i) => dep(i, 5));
    for (const max of [60, 300, 1_000, 3_000]) {
      const text = renderHandoffs(many, max);
      expect(estimateTokens(text), `max ${max}`).toBeLessThanOrEqual(max);
    }
    const brief = renderHandoffs(many, 1_000);
    expect(brief).toContain('- d0 (backend): summary 0');
    expect(brief).toMatch(/…\[cut: \d+ more dependencies did not fit the prompt budget: d\d+, d\d+/);
    expect(renderHandoffs([], 100)).toBe('');
    expect(renderHandoffs([{ id: 'x', role: 'devops', title: 'X', handoff: null, note: 'it recorded no result' }], 100)).toContain('(it recorded no result)');
  });
});

describe('the memory block', () => {
  it('shows core and team knowledge always, and of the working memory only what concerns this task', () => {
    let m = emptyMemory('be-1', 'backend');
    m = setKnowledge(m, 'venv_path', '.venv');
    m = addObservation(m, `${taskTag('b1', 'api')}pip install failed`);
    m = addObservation(m, `${taskTag('b1', 'other')}unrelated finding`);
    m = addReasoning(m, { buildId: 'b1', taskId: 'api', phase: 'plan', summary: 'install_dependency' });
    m = addReasoning(m, { buildId: 'b2', taskId: 'api', phase: 'plan', summary: 'another build' });
    m = setBlockedOn(startTask(m, { buildId: 'b1', taskId: 'api', title: 'API' }), 'no network');
    const lines = memoryLines(m, [{ key: 'python_version', value: '3.12', owner: 'backend' }], { buildId: 'b1', taskId: 'api', role: 'frontend' }).join('\n');
    expect(lines).toContain('- venv_path: .venv');
    expect(lines).toContain('- python_version = 3.12 (owned by backend)');
    expect(lines).toContain('you may write only the keys your role owns: package_manager, build_command, entry_point');
    expect(lines).toContain('- you were blocked on: no network');
    expect(lines).toContain('- plan: install_dependency');
    expect(lines).toContain('- observed: pip install failed');
    expect(lines).not.toContain('unrelated finding');
    expect(lines).not.toContain('another build');
    const other = memoryLines(m, [], { buildId: 'b1', taskId: 'other', role: 'backend' }).join('\n');
    expect(other).not.toContain('blocked on');
    expect(other).toContain('- observed: unrelated finding');
    expect(memoryLines(null, [], { buildId: 'b1', taskId: 'api', role: 'backend' })).toContain('Your memory of this task: nothing from earlier attempts.');
  });
});

describe('prompt assembly', () => {
  const backend = roleDefinition('backend');
  const context = { memory: ['Your core knowledge: none yet.'], observations: { files: ['app.py'] }, history: ['none'] };

  it('never exceeds the budget, whatever is large, and names what it cut', () => {
    const cases = [
      { budget: 3_000, spec: spec(), deps: Array.from({ length: 200 }, (_, i) => dep(i, 5)), obs: { files: Array.from({ length: 3_000 }, (_, i) => `f${i}.py`) }, history: Array.from({ length: 30 }, (_, i) => `- iteration ${i}: ${'e'.repeat(800)}`) },
      { budget: 4_096, spec: spec({ description: 'd'.repeat(4_000), acceptanceCriteria: Array.from({ length: 20 }, () => 'c'.repeat(500)) }), deps: [], obs: {}, history: [] },
      { budget: 2_400, spec: spec(), deps: [dep(1, 50)], obs: { text: 't'.repeat(100_000) }, history: ['none'] },
    ];
    for (const c of cases) {
      const builder = new PromptBuilder(backend, c.spec, 'goal', c.deps, c.budget);
      const ctx = builder.context({ memory: Array.from({ length: 60 }, (_, i) => `- observed: ${'m'.repeat(300)} ${i}`), observations: c.obs, history: c.history });
      for (const phase of ['reason', 'plan', 'validate']) {
        const prompt = builder.messages(ctx, phase, {
          parts: [
            { label: 'Your reasoning', value: { analysis: 'r'.repeat(20_000), list: Array.from({ length: 50 }, () => 'x'.repeat(200)) } },
            { label: 'Success criteria', value: 'ok\n'.repeat(2_000) },
          ],
          instructions: 'Answer with JSON.',
        });
        expect(prompt.estimate, `budget ${c.budget} ${phase}`).toBe(estimateMessagesTokens(prompt.messages));
        expect(prompt.estimate, `budget ${c.budget} ${phase}`).toBeLessThanOrEqual(c.budget);
        expect(prompt.cut.length).toBeGreaterThan(0);
      }
    }
  });

  it('cuts nothing when everything fits, and keeps the first three messages identical across phases', () => {
    const builder = new PromptBuilder(backend, spec(), 'goal', [dep(1)], 4_096);
    const ctx = builder.context(context);
    const prompts = ['reason', 'plan', 'validate'].map((p) => builder.messages(ctx, p, { parts: [{ label: 'Input', value: { p } }], instructions: 'go' }));
    for (const p of prompts) {
      expect(p.cut).toEqual([]);
      expect(p.messages.slice(0, 3)).toEqual(prompts[0]!.messages.slice(0, 3));
    }
    expect(prompts[0]!.messages[1]!.content).toContain('- d1 (backend): dependency 1');
  });

  it('refuses a budget too small for the role, saying what would do', () => {
    expect(() => new PromptBuilder(roleDefinition('devops'), spec(), 'goal', [], 1_024)).toThrow(PromptBudgetError);
    expect(() => new PromptBuilder(roleDefinition('devops'), spec(), 'goal', [], 1_024)).toThrow(/CODEGOD_PROMPT_BUDGET_TOKENS=1024 is too small: the devops agent's system prompt alone takes ~\d+ tokens; give at least \d+/);
  });
});

describe('prefix reuse report', () => {
  it('measures the share of each prompt that repeats the previous call of its task', () => {
    const sys = { role: 'system', content: 's'.repeat(700) };
    const task = (t: string) => ({ role: 'user', content: `${t} ${'t'.repeat(300)}` });
    const calls = [
      { task: 'a', phase: 'reason', messages: [sys, task('a'), { role: 'user', content: 'reason' }] },
      { task: 'b', phase: 'reason', messages: [sys, task('b'), { role: 'user', content: 'reason' }] },
      { task: 'a', phase: 'plan', messages: [sys, task('a'), { role: 'user', content: 'plan' }] },
    ];
    const shared = sharedPrefixTokens(calls[0]!.messages, calls[2]!.messages);
    expect(shared).toBeGreaterThan(estimateTokens(sys.content) + estimateTokens(task('a').content) - 2);
    const report = prefixReport(calls);
    expect(report.tasks).toBe(2);
    expect(report.byPhase.reason!.reusableShare).toBeNull();
    expect(report.byPhase.plan!.reusableShare).toBeCloseTo(shared / estimateMessagesTokens(calls[2]!.messages), 5);
    expect(report.reusableShare).toBe(report.byPhase.plan!.reusableShare);
    expect(report.reusableShareAllCalls).toBeLessThan(report.reusableShare);
  });
});
