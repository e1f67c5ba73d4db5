import { afterAll, describe, expect, it } from 'vitest';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import { readEvents } from '../../shared/engine/events.js';
import { listAgents } from '../../shared/telemetry/agent-status.js';
import { testConfig } from '../helpers/config.js';
import { engine, waitForBuildEnd, waitForWorkers } from '../helpers/engine.js';
import { FAST_RECOVERY, startOrchestrator, startWorker, waitFor, type ChildHandle } from '../helpers/processes.js';

/**
 * Orchestrators in parallel: any number may run against one Redis. They share the goals
 * queue (each goal is one BullMQ job, taken by one of them) and run the reconciler and the
 * retention side by side (both idempotent); every goal is planned once.
 */
const GOALS = 8;
const children: ChildHandle[] = [];
let llm: ScriptedLlmServer | undefined;
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await llm?.close();
});

describe('two orchestrators', () => {
  it('share the goals, and each goal is planned once', async () => {
    const task = { id: 'only', role: 'backend', title: 'only', description: 'noop', dependsOn: [], acceptanceCriteria: [] };
    llm = await startScriptedLlmServer({ scenario: { rules: [{ match: { phase: 'plan-dag' }, delayMs: 400, reply: { summary: 'one task', tasks: [task] } }] } });
    const extra = { ...FAST_RECOVERY, VLLM_API_URL: llm.url };
    const config = testConfig(extra);
    const h = engine(config);
    try {
      const worker = startWorker(config, 'backend', extra);
      children.push(worker, startOrchestrator(config, extra), startOrchestrator(config, extra));
      await waitForWorkers(h.redis, config, [worker]);
      await waitFor(async () => (await listAgents(h.redis, h.scheduler.keys)).agents.filter((a) => a.role === 'master' && a.state !== 'offline').length === 2, 'two orchestrators');
      const ids = await Promise.all(Array.from({ length: GOALS }, (_, i) => h.scheduler.submitGoal({ goal: `goal ${i}` })));
      for (const id of ids) expect((await waitForBuildEnd(h.scheduler, id, 60_000)).state).toBe('succeeded');

      for (const id of ids) {
        const events = await readEvents(h.redis, h.scheduler.keys, id);
        expect(events.filter((e) => e.type === 'build.planned'), id).toHaveLength(1);
        expect(events.filter((e) => e.type === 'build.created'), id).toHaveLength(1);
        expect(llm.requests.filter((r) => r.phase === 'plan-dag' && r.build === id), id).toHaveLength(1);
      }
      // Both took part: the planned counts of their heartbeats add up to the goals.
      const planned = await waitFor(async () => {
        const masters = (await listAgents(h.redis, h.scheduler.keys)).agents.filter((a) => a.role === 'master');
        const counts = masters.map((a) => a.tasksCompleted);
        return counts.reduce((n, c) => n + c, 0) === GOALS ? counts : undefined;
      }, 'the heartbeats to count every plan', 10_000);
      expect(planned).toHaveLength(2);
      expect(Math.min(...planned)).toBeGreaterThan(0);
    } finally {
      await h.close();
    }
  }, 120_000);
});
