import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentWorld, plan1, REASON, validateWith } from '../helpers/agent.js';

/**
 * A canary secret given to the worker never reaches a command an agent runs. Given as a
 * variable it is kept out of commands' environments; given as a file (the deployment's form)
 * it is not even in the worker's initial environment, which any child can read in /proc.
 */
let world: AgentWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const snoop = plan1([
  { action: 'run_command', params: { command: 'env', args: [] } },
  { action: 'run_command', params: { command: 'sh', args: ['-c', 'cat /proc/$PPID/environ | tr "\\0" "\\n" > parent-env.txt; echo done'] } },
]);

function outputs(trace: Awaited<ReturnType<AgentWorld['trace']>>): string {
  return JSON.stringify(trace?.iterations.flatMap((it) => it.act?.steps ?? []));
}

describe('secrets never reach agent commands', () => {
  it('as an environment variable: absent from the commands\' environment', async () => {
    const canary = `canary-env-${Date.now()}`;
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, reply: REASON },
        { match: { phase: 'plan' }, reply: snoop, times: 1 },
        { match: { phase: 'plan' }, reply: plan1([{ action: 'run_command', params: { command: 'env', args: [] } }]) },
        { match: { phase: 'validate' }, reply: validateWith([{ kind: 'command', target: 'env', args: [] }]) },
      ],
    });
    const w = await world.startWorker('backend', { LLM_API_KEY: canary });
    const buildId = await world.build([{ id: 'snoop', role: 'backend' }]);
    await world.waitForEnd(buildId);
    const trace = await world.trace(buildId, 'snoop');
    expect(outputs(trace)).toMatch(/PATH=/);
    expect(outputs(trace)).not.toContain(canary);
    // The worker's own initial environment still holds it: that is why the deployment uses files.
    expect(readFileSync(`/proc/${w.pid}/environ`, 'utf8')).toContain(canary);
  });

  it('as a file (LLM_API_KEY_FILE): not in any command output, not even /proc/$PPID/environ', async () => {
    const canary = `canary-file-${Date.now()}`;
    const dir = mkdtempSync(join(tmpdir(), 'codegod-secret-'));
    writeFileSync(join(dir, 'llm-key'), canary);
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, reply: REASON },
        { match: { phase: 'plan' }, reply: snoop },
        { match: { phase: 'validate' }, reply: validateWith([{ kind: 'command', target: 'env', args: [] }]) },
      ],
    });
    const w = await world.startWorker('backend', { LLM_API_KEY_FILE: join(dir, 'llm-key') });
    const buildId = await world.build([{ id: 'snoop', role: 'backend' }]);
    await world.waitForEnd(buildId);
    const trace = await world.trace(buildId, 'snoop');
    const all = outputs(trace);
    expect(all).toContain('run_command');
    expect(all).not.toContain(canary);
    let parentEnv = '';
    try {
      parentEnv = readFileSync(join(world.workspace(buildId), 'parent-env.txt'), 'utf8');
    } catch {
      // The policy may refuse the read outright; then nothing leaked either.
    }
    expect(parentEnv).not.toContain(canary);
    expect(readFileSync(`/proc/${w.pid}/environ`, 'utf8')).not.toContain(canary);
    expect(world.requests('plan').length).toBeGreaterThan(0);
  });
});
