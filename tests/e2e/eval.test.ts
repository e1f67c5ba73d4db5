import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalSummary } from '../../scripts/eval/report.js';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import { plan1, REASON, validateWith } from '../helpers/agent.js';
import { testConfig } from '../helpers/config.js';
import { spawnTs } from '../helpers/processes.js';

/**
 * `npm run eval` end to end against the scripted server: two goals of the shipped suite, one
 * built right (its checks pass) and one built wrong with tests that pass anyway (its own tests
 * pass, the suite's independent check does not), judged from outside, reported per goal and
 * as a JSON summary.
 */
const WORDCOUNT = `import sys

def counts(text):
    return len(text.splitlines()), len(text.split()), len(text)

if __name__ == '__main__':
    try:
        text = open(sys.argv[1]).read()
    except OSError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
    print(*counts(text))
`;
const WORDCOUNT_TEST = `import unittest
from wordcount import counts

class CountsTest(unittest.TestCase):
    def test_counts(self):
        self.assertEqual(counts('a b\\nc\\n'), (2, 3, 6))

if __name__ == '__main__':
    unittest.main()
`;
// Wrong: forgets Fizz and Buzz, and its test agrees with it.
const FIZZBUZZ = `import sys
for i in range(1, int(sys.argv[1]) + 1):
    print(i)
`;
const FIZZBUZZ_TEST = `import subprocess, sys, unittest

class FizzBuzzTest(unittest.TestCase):
    def test_runs(self):
        out = subprocess.run([sys.executable, 'fizzbuzz.py', '3'], capture_output=True, text=True, check=True).stdout
        self.assertEqual(len(out.split()), 3)
`;

const dag = (id: string) => ({ summary: id, tasks: [{ id, role: 'backend', title: `Build ${id}`, description: `Write ${id}.`, dependsOn: [], acceptanceCriteria: [] }] });

const scenario = {
  rules: [
    { match: { phase: 'plan-dag', contains: 'wordcount.py' }, reply: dag('wc') },
    { match: { phase: 'plan-dag', contains: 'fizzbuzz.py' }, reply: dag('fb') },
    { match: { phase: 'reason' }, reply: REASON },
    {
      match: { phase: 'plan', task: 'wc' },
      reply: plan1([
        { action: 'write_file', params: { path: 'wordcount.py', content: WORDCOUNT } },
        { action: 'write_file', params: { path: 'test_wordcount.py', content: WORDCOUNT_TEST } },
      ]),
    },
    {
      match: { phase: 'plan', task: 'fb' },
      reply: plan1([
        { action: 'write_file', params: { path: 'fizzbuzz.py', content: FIZZBUZZ } },
        { action: 'write_file', params: { path: 'test_fizzbuzz.py', content: FIZZBUZZ_TEST } },
      ]),
    },
    { match: { phase: 'validate' }, reply: validateWith([{ kind: 'command', target: 'python3', args: ['-m', 'unittest'] }]) },
  ],
};

let llm: ScriptedLlmServer;
let dir: string;
beforeAll(async () => {
  llm = await startScriptedLlmServer({ scenario });
  dir = mkdtempSync(join(tmpdir(), 'codegod-eval-'));
});
afterAll(async () => {
  await llm?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function runEval(args: string[]) {
  const config = testConfig();
  const env = { REDIS_URL: config.REDIS_URL, CODEGOD_PREFIX: config.CODEGOD_PREFIX, VLLM_API_URL: llm.url, LOG_LEVEL: 'warn', LLM_TIMEOUT_MS: '10000' };
  const child = spawnTs('scripts/eval/main.ts', args, env);
  const { code } = await child.exited;
  return { code, text: child.text };
}

describe('npm run eval', () => {
  it("builds each goal, judges it by its own tests and the suite's checks, and writes a JSON summary", async () => {
    const out = join(dir, 'summary.json');
    const r = await runEval(['--suite', 'scripts/eval/suites/standard.yaml', '--goals', 'wordcount-cli,fizzbuzz-cli', '--out', out, '--workspace', join(dir, 'ws'), '--timeout', '120']);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toMatch(/wordcount-cli +succeeded +pass +2\/2 +\S+ +4 +\S+/);
    expect(r.text).toMatch(/fizzbuzz-cli +succeeded +pass +0\/1 +\S+ +4 +\S+/);
    expect(r.text).toContain('2/2 builds succeeded · own tests passed in 2 · all checks passed in 1 (2/3 checks)');
    expect(r.text).toMatch(/fizzbuzz-cli: check "prints 1 to 15 with Fizz, Buzz and FizzBuzz" failed: /);

    const summary = JSON.parse(readFileSync(out, 'utf8')) as EvalSummary;
    expect(summary).toMatchObject({ suite: 'standard', model: 'codegod-test', endpoint: llm.url, promptBudgetTokens: 4096 });
    expect(summary.goals.map((g) => [g.id, g.outcome, g.projectTests.passed, g.checksPassed, g.checks.length])).toEqual([
      ['wordcount-cli', 'succeeded', true, 2, 2],
      ['fizzbuzz-cli', 'succeeded', true, 0, 1],
    ]);
    for (const g of summary.goals) {
      // The plan of the goal, then reason, plan and validate of its one task.
      expect(g.llmCalls).toBe(4);
      expect(g.promptTokens).toBeGreaterThan(0);
      expect(g.ms).toBeGreaterThan(0);
      expect(g.projectTests.summary).toMatch(/^tests passed: 1 passed, 0 failed/);
    }
    expect(summary.totals).toMatchObject({ goals: 2, buildsSucceeded: 2, projectTestsPassed: 2, checksAllPassed: 1, checksPassed: 2, checks: 3, llmCalls: 8 });
  });

  it('refuses bad arguments and unknown goals with one line and exit 2', async () => {
    const none = await runEval([]);
    expect(none.code).toBe(2);
    expect(none.text.trim().split('\n')).toHaveLength(1);
    expect(none.text).toContain('--suite is required');
    const unknown = await runEval(['--suite', 'scripts/eval/suites/standard.yaml', '--goals', 'no-such-goal']);
    expect(unknown.code).toBe(2);
    expect(unknown.text).toMatch(/suite standard has no goal no-such-goal \(it has: wordcount-cli, /);
    const missing = await runEval(['--suite', join(dir, 'missing.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.text).toContain('cannot read suite');
  });
});
