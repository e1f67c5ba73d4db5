import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentWorld, plan1, REASON, validateWith } from '../helpers/agent.js';

/** SIGKILL of the worker mid-task: a new worker resumes after the last checkpoint. */
let world: AgentWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const steps = plan1([
  { action: 'run_command', params: { command: 'python3', args: ['-c', "open('count.txt','a').write('x')"] } },
  { action: 'write_file', params: { path: 'second.txt', content: 'two' } },
  { action: 'write_file', params: { path: 'third.txt', content: 'three' } },
]);
const checks = validateWith([
  { kind: 'file_exists', target: 'third.txt' },
  { kind: 'file_contains', target: 'count.txt', contains: 'x' },
]);
const scenario = {
  rules: [
    { match: { phase: 'reason' }, reply: REASON },
    { match: { phase: 'plan' }, reply: steps },
    { match: { phase: 'validate' }, reply: checks },
  ],
};

describe('resuming the ORPAV loop after a crash', () => {
  it('killed right after Reason: the next worker goes on with Plan, Reason is not asked again', async () => {
    world = await AgentWorld.start(scenario);
    const doomed = await world.startWorker('backend', { CODEGOD_CRASH_AT: 'after-reason' });
    const buildId = await world.build([{ id: 'resume', role: 'backend' }]);
    expect((await doomed.exited).signal).toBe('SIGKILL');
    expect(world.requests('reason')).toHaveLength(1);
    expect(world.requests('plan')).toHaveLength(0);

    await world.startWorker('backend');
    const build = await world.waitForEnd(buildId);
    expect(build.state, build.reason).toBe('succeeded');
    expect(world.requests('reason')).toHaveLength(1);
    expect(world.requests('plan')).toHaveLength(1);
    expect(world.requests('validate')).toHaveLength(1);
    expect((await world.engine.scheduler.dag.getTask(buildId, 'resume')).attempts).toBe(2);
  });

  it('killed inside Act after the first step: only the steps not recorded as done run again', async () => {
    world = await AgentWorld.start(scenario);
    const doomed = await world.startWorker('backend', { CODEGOD_CRASH_AT: 'after-step' });
    const buildId = await world.build([{ id: 'resume', role: 'backend' }]);
    expect((await doomed.exited).signal).toBe('SIGKILL');
    const trace = (await world.trace(buildId, 'resume'))!;
    expect(trace.iterations[0]!.act!.steps).toHaveLength(1);

    await world.startWorker('backend');
    const build = await world.waitForEnd(buildId);
    expect(build.state, build.reason).toBe('succeeded');
    // The side effect of step 1 happened exactly once.
    expect(readFileSync(join(world.workspace(buildId), 'count.txt'), 'utf8')).toBe('x');
    expect(readFileSync(join(world.workspace(buildId), 'third.txt'), 'utf8')).toBe('three');
    expect(world.requests('reason')).toHaveLength(1);
    expect(world.requests('plan')).toHaveLength(1);
    const after = (await world.trace(buildId, 'resume'))!;
    expect(after.iterations).toHaveLength(1);
    expect(after.iterations[0]!.act!.steps.map((s) => s.index)).toEqual([0, 1, 2]);
  });
});
