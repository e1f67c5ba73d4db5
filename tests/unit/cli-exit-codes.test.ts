import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXIT, exitCodeForBuild } from '../../orchestrator/cli/exit-codes.js';

describe('exit codes', () => {
  it.each([
    [{ state: 'succeeded' as const }, 0],
    [{ state: 'failed' as const, failureCode: 'TASK_FAILED' }, 1],
    [{ state: 'failed' as const }, 1],
    [{ state: 'failed' as const, failureCode: 'SOMETHING_NEW' }, 1],
    [{ state: 'failed' as const, failureCode: 'LLM_UNREACHABLE' }, 5],
    [{ state: 'failed' as const, failureCode: 'LLM_MODEL_UNKNOWN' }, 5],
    [{ state: 'failed' as const, failureCode: 'LLM_STRUCTURED_OUTPUT_REFUSED' }, 5],
    [{ state: 'failed' as const, failureCode: 'PLAN_INVALID' }, 6],
    [{ state: 'failed' as const, failureCode: 'LLM_BUDGET' }, 7],
    [{ state: 'cancelled' as const }, 8],
    [{ state: 'cancelled' as const, failureCode: 'LLM_BUDGET' }, 8],
  ])('a build %j exits %i', (build, code) => {
    expect(exitCodeForBuild(build)).toBe(code);
  });

  it('gives a build that has not ended no exit code of its own', () => {
    expect(exitCodeForBuild({ state: 'running' })).toBeUndefined();
    expect(exitCodeForBuild({ state: 'planning' })).toBeUndefined();
  });

  it('documents every code in the table the README copies, and nothing else', () => {
    const source = readFileSync(new URL('../../orchestrator/cli/exit-codes.ts', import.meta.url), 'utf8');
    const documented = new Set([...source.matchAll(/^ \* \| (\d+)\s+\|/gm)].map((m) => Number(m[1])));
    expect([...documented].sort((a, b) => a - b)).toEqual([...new Set(Object.values(EXIT))].sort((a, b) => a - b));
  });
});
