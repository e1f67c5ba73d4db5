import { describe, expect, it } from 'vitest';
import { CodegodError } from '../../shared/domain/errors.js';
import { addObservation, addReasoning, clipText, completeTask, emptyMemory, setBlockedOn, setKnowledge, startTask, wipeMemory } from '../../shared/memory/reducers.js';
import { AgentMemorySchema, MEMORY_LIMITS, type AgentMemory } from '../../shared/memory/schema.js';

const AT = new Date('2025-01-02T03:04:05.000Z');

function busyMemory(): AgentMemory {
  let m = emptyMemory('backend-1', 'backend', AT);
  m = setKnowledge(m, 'venv_path', '/ws/.venv');
  m = setKnowledge(m, 'python_version', '3.11');
  m = startTask(m, { buildId: 'b1', taskId: 't2', title: 'Install Flask' });
  m = completeTask(m, { buildId: 'b1', taskId: 't1' });
  m = addObservation(m, 'Flask missing');
  m = addObservation(m, 'requirements.txt exists');
  m = addReasoning(m, { buildId: 'b1', taskId: 't2', phase: 'reason', summary: 'flask not in pip list' }, AT);
  m = setBlockedOn(m, 'waiting for venv');
  return m;
}

function expectMemoryError(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CodegodError);
    expect((err as CodegodError).code).toBe('MEMORY_INVALID');
    expect((err as CodegodError).message).toMatch(pattern);
    return;
  }
  throw new Error('expected a MEMORY_INVALID error');
}

describe('emptyMemory', () => {
  it('is a valid memory at version 0 with nothing in it', () => {
    const m = emptyMemory('master', 'master', AT);
    expect(AgentMemorySchema.parse(m)).toEqual(m);
    expect(m).toMatchObject({ agentId: 'master', role: 'master', currentTask: null, version: 0, wipes: 0, updatedAt: AT.toISOString() });
    expect(m.observations).toEqual([]);
    expect(m.knowledge).toEqual({});
  });
});

describe('wipeMemory', () => {
  it('keeps role and core knowledge and clears task, completed tasks, observations, reasoning and blockedOn', () => {
    const before = busyMemory();
    expect(before.currentTask).not.toBeNull();
    expect(before.completedTasks).toHaveLength(1);
    expect(before.observations).toHaveLength(2);
    expect(before.reasoningHistory).toHaveLength(1);
    expect(before.blockedOn).not.toBeNull();

    const after = wipeMemory(before);
    expect(after.role).toBe('backend');
    expect(after.agentId).toBe('backend-1');
    expect(after.knowledge).toEqual({ venv_path: '/ws/.venv', python_version: '3.11' });
    expect(after.currentTask).toBeNull();
    expect(after.completedTasks).toEqual([]);
    expect(after.observations).toEqual([]);
    expect(after.reasoningHistory).toEqual([]);
    expect(after.blockedOn).toBeNull();
    expect(after.wipes).toBe(before.wipes + 1);
    expect(AgentMemorySchema.safeParse(after).success).toBe(true);
  });

  it('does not modify the memory it was given', () => {
    const before = busyMemory();
    const copy = structuredClone(before);
    wipeMemory(before);
    expect(before).toEqual(copy);
  });
});

describe('clipText', () => {
  it('leaves short text alone', () => {
    expect(clipText('short')).toBe('short');
    const exact = 'x'.repeat(MEMORY_LIMITS.textMaxChars);
    expect(clipText(exact)).toBe(exact);
  });

  it('cuts long text to the limit and says how much was cut', () => {
    const long = 'a'.repeat(5_000);
    const clipped = clipText(long);
    expect(clipped.length).toBeLessThanOrEqual(MEMORY_LIMITS.textMaxChars);
    const match = / … \[(\d+) more characters clipped\]$/.exec(clipped);
    expect(match).not.toBeNull();
    const kept = clipped.length - match![0].length;
    expect(kept + Number(match![1])).toBe(5_000);
    expect(clipped.startsWith('a'.repeat(kept))).toBe(true);
  });

  it('never leaves half of a surrogate pair', () => {
    const emoji = '😀'.repeat(3_000);
    const clipped = clipText(emoji, 101);
    const body = clipped.replace(/ … \[\d+ more characters clipped\]$/, '');
    expect(body.length % 2).toBe(0);
    expect([...body].every((c) => c === '😀')).toBe(true);
  });
});

describe('addObservation', () => {
  it('appends and clips long observations with a note', () => {
    let m = emptyMemory('a', 'testing', AT);
    m = addObservation(m, 'first');
    m = addObservation(m, 'z'.repeat(3_000));
    expect(m.observations[0]).toBe('first');
    expect(m.observations[1]!.length).toBeLessThanOrEqual(MEMORY_LIMITS.textMaxChars);
    expect(m.observations[1]).toMatch(/more characters clipped\]$/);
  });

  it('keeps at most the limit, folding dropped ones into one leading summary', () => {
    let m = emptyMemory('a', 'backend', AT);
    const total = MEMORY_LIMITS.observations + 12;
    for (let i = 0; i < total; i += 1) m = addObservation(m, `obs ${i} about flask`);
    expect(m.observations).toHaveLength(MEMORY_LIMITS.observations);
    const dropped = total - (MEMORY_LIMITS.observations - 1);
    expect(m.observations[0]).toMatch(new RegExp(`^\\(${dropped} earlier observations dropped: `));
    expect(m.observations[0]).toContain('obs 0 about flask | obs 1 about flask');
    expect(m.observations[1]).toBe(`obs ${dropped} about flask`);
    expect(m.observations.at(-1)).toBe(`obs ${total - 1} about flask`);
    expect(m.observations.filter((o) => o.includes('earlier observation'))).toHaveLength(1);
  });

  it('keeps counting across many trims and the summary stays bounded', () => {
    let m = emptyMemory('a', 'backend', AT);
    const total = 1_000;
    for (let i = 0; i < total; i += 1) m = addObservation(m, `step ${i} ${'word '.repeat(20)}`);
    expect(m.observations).toHaveLength(MEMORY_LIMITS.observations);
    const count = Number(/^\((\d+) earlier/.exec(m.observations[0]!)![1]);
    expect(count).toBe(total - (MEMORY_LIMITS.observations - 1));
    expect(m.observations[0]!.length).toBeLessThan(MEMORY_LIMITS.droppedExcerptChars + 60);
    expect(m.observations[0]).toContain(`step ${count - 1} word`);
    expect(AgentMemorySchema.safeParse(m).success).toBe(true);
  });

  it('trims only past the limit, then folds the two oldest into the summary slot', () => {
    let m = emptyMemory('a', 'backend', AT);
    for (let i = 0; i < MEMORY_LIMITS.observations; i += 1) m = addObservation(m, `o${i}`);
    expect(m.observations[0]).toBe('o0');
    m = addObservation(m, 'one more');
    expect(m.observations[0]).toBe('(2 earlier observations dropped: o0 | o1)');
    m = addObservation(m, 'and another');
    expect(m.observations[0]).toBe('(3 earlier observations dropped: o0 | o1 | o2)');
    expect(wipeMemory(m).observations).toEqual([]);
  });
});

describe('addReasoning', () => {
  it('records the step with its time and keeps only the newest', () => {
    let m = emptyMemory('a', 'frontend', AT);
    const total = MEMORY_LIMITS.reasoningHistory + 7;
    for (let i = 0; i < total; i += 1) {
      m = addReasoning(m, { buildId: 'b1', taskId: `t${i}`, phase: 'plan', summary: `plan ${i}` }, AT);
    }
    expect(m.reasoningHistory).toHaveLength(MEMORY_LIMITS.reasoningHistory);
    expect(m.reasoningHistory[0]).toEqual({ buildId: 'b1', taskId: 't7', phase: 'plan', summary: 'plan 7', at: AT.toISOString() });
    expect(m.reasoningHistory.at(-1)!.taskId).toBe(`t${total - 1}`);
  });

  it('clips a long summary', () => {
    const m = addReasoning(emptyMemory('a', 'frontend', AT), { buildId: 'b1', taskId: 't', phase: 'act', summary: 'y'.repeat(10_000) });
    expect(m.reasoningHistory[0]!.summary.length).toBeLessThanOrEqual(MEMORY_LIMITS.textMaxChars);
    expect(AgentMemorySchema.safeParse(m).success).toBe(true);
  });
});

describe('startTask, completeTask, setBlockedOn', () => {
  it('completing the current task clears it and what it was blocked on', () => {
    let m = startTask(emptyMemory('a', 'devops', AT), { buildId: 'b1', taskId: 'deploy', title: 'Deploy' });
    m = setBlockedOn(m, 'registry down');
    m = completeTask(m, { buildId: 'b1', taskId: 'other' });
    expect(m.currentTask).toEqual({ buildId: 'b1', taskId: 'deploy', title: 'Deploy' });
    expect(m.blockedOn).toBe('registry down');
    m = completeTask(m, { buildId: 'b1', taskId: 'deploy' });
    expect(m.currentTask).toBeNull();
    expect(m.blockedOn).toBeNull();
    expect(m.completedTasks).toEqual(['b1/other', 'b1/deploy']);
  });

  it('records a task once, moving a repeat to the end', () => {
    let m = emptyMemory('a', 'devops', AT);
    for (const t of ['t1', 't2', 't1']) m = completeTask(m, { buildId: 'b9', taskId: t });
    expect(m.completedTasks).toEqual(['b9/t2', 'b9/t1']);
  });

  it('keeps at most the limit of completed tasks, newest last', () => {
    let m = emptyMemory('a', 'devops', AT);
    const total = MEMORY_LIMITS.completedTasks + 25;
    for (let i = 0; i < total; i += 1) m = completeTask(m, { buildId: 'b1', taskId: `t${i}` });
    expect(m.completedTasks).toHaveLength(MEMORY_LIMITS.completedTasks);
    expect(m.completedTasks[0]).toBe('b1/t25');
    expect(m.completedTasks.at(-1)).toBe(`b1/t${total - 1}`);
  });

  it('starting a task clears blockedOn and clips the title', () => {
    let m = setBlockedOn(emptyMemory('a', 'devops', AT), 'x');
    m = startTask(m, { buildId: 'b1', taskId: 't1', title: 'T'.repeat(4_000) });
    expect(m.blockedOn).toBeNull();
    expect(m.currentTask!.title.length).toBeLessThanOrEqual(MEMORY_LIMITS.textMaxChars);
    expect(setBlockedOn(m, null).blockedOn).toBeNull();
  });
});

describe('setKnowledge', () => {
  it('refuses malformed keys', () => {
    const m = emptyMemory('a', 'backend', AT);
    expectMemoryError(() => setKnowledge(m, 'Venv-Path', 'x'), /must match/);
    expectMemoryError(() => setKnowledge(m, '', 'x'), /must match/);
  });

  it('caps the number of keys but still allows overwriting one', () => {
    let m = emptyMemory('a', 'backend', AT);
    for (let i = 0; i < MEMORY_LIMITS.knowledgeKeys; i += 1) m = setKnowledge(m, `k${i}`, String(i));
    expectMemoryError(() => setKnowledge(m, 'one_more', 'x'), /already holds/);
    m = setKnowledge(m, 'k0', 'changed');
    expect(m.knowledge.k0).toBe('changed');
    expect(Object.keys(m.knowledge)).toHaveLength(MEMORY_LIMITS.knowledgeKeys);
  });
});

describe('AgentMemorySchema', () => {
  it('rejects a memory that breaks the bounds', () => {
    const m = emptyMemory('a', 'backend', AT);
    const tooMany = { ...m, observations: Array.from({ length: MEMORY_LIMITS.observations + 1 }, () => 'o') };
    expect(AgentMemorySchema.safeParse(tooMany).success).toBe(false);
    expect(AgentMemorySchema.safeParse({ ...m, role: 'wizard' }).success).toBe(false);
    expect(AgentMemorySchema.safeParse({ ...m, agentId: 'a:b' }).success).toBe(false);
    expect(AgentMemorySchema.safeParse({ ...m, blockedOn: 'x'.repeat(MEMORY_LIMITS.textMaxChars + 1) }).success).toBe(false);
  });
});
