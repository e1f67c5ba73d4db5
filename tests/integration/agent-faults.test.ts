import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../shared/memory/store.js';
import { AgentWorld, plan1, REASON, validateWith } from '../helpers/agent.js';

/** The agent loop against an LLM that misbehaves: every fault ends handled, never a crashed worker. */
let world: AgentWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const writeHello = plan1([
  { action: 'write_file', params: { path: 'hello.py', content: 'print("hello from codegod")\n' } },
  { action: 'run_command', params: { command: 'python3', args: ['hello.py'] } },
]);
const checkHello = validateWith([
  { kind: 'file_exists', target: 'hello.py' },
  { kind: 'command', target: 'python3', args: ['hello.py'], contains: 'hello from codegod' },
]);

describe('agent loop under LLM faults', () => {
  it('repairs a malformed reply, retries a 500, and repairs a truncated (length) reply', async () => {
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, fault: 'malformed_json', reply: REASON, times: 1 },
        { match: { phase: 'reason' }, reply: REASON },
        { match: { phase: 'plan' }, fault: 'http500', times: 1 },
        { match: { phase: 'plan' }, fault: 'length', reply: writeHello, times: 1 },
        { match: { phase: 'plan' }, reply: writeHello },
        { match: { phase: 'validate' }, fault: 'schema_violation', times: 1 },
        { match: { phase: 'validate' }, reply: checkHello },
      ],
    });
    const w = await world.startWorker('backend');
    const buildId = await world.build([{ id: 'hello', role: 'backend' }]);
    const build = await world.waitForEnd(buildId);
    expect(build.state, build.reason).toBe('succeeded');
    expect(readFileSync(join(world.workspace(buildId), 'hello.py'), 'utf8')).toContain('hello from codegod');
    // reason: malformed + repaired; plan: 500 (retried by the client) + length + repaired; validate: violation + repaired.
    expect(world.requests('reason')).toHaveLength(2);
    expect(world.requests('plan')).toHaveLength(3);
    expect(world.requests('validate')).toHaveLength(2);
    const result = await world.result(buildId, 'hello');
    expect(result).toMatchObject({ success: true, iterations: 1, wiped: false, validation: { valid: true } });
    expect(result.actions_taken.map((a) => [a.action, a.success])).toEqual([
      ['write_file', true],
      ['run_command', true],
    ]);
    expect(w.proc.exitCode).toBeNull();
  });

  it('an unknown action or bad params is a validation failure sent back to the model, not a crash', async () => {
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, reply: REASON },
        // Parameters that break the action's schema: the request's JSON schema lets them through, our zod check does not.
        { match: { phase: 'plan' }, reply: plan1([{ action: 'write_file', params: { path: 42, content: ['x'] } }]), times: 1 },
        { match: { phase: 'plan' }, reply: writeHello },
        { match: { phase: 'validate' }, reply: checkHello },
      ],
    });
    await world.startWorker('backend');
    const buildId = await world.build([{ id: 'hello', role: 'backend' }]);
    expect((await world.waitForEnd(buildId)).state).toBe('succeeded');
    const repair = world.requests('plan')[1]!;
    expect(JSON.stringify(repair.messages)).toMatch(/write_file/);
    expect(JSON.stringify(repair.messages)).toMatch(/not valid/i);
  });

  it('stuck (the same failing plan twice) → wipes working memory → succeeds with fresh reasoning', async () => {
    const failing = plan1([{ action: 'run_command', params: { command: 'python3', args: ['missing_script.py'] } }]);
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, reply: REASON },
        { match: { phase: 'plan' }, reply: failing, times: 2 },
        { match: { phase: 'plan' }, reply: writeHello },
        { match: { phase: 'validate' }, reply: checkHello },
      ],
    });
    const w = await world.startWorker('backend');
    const buildId = await world.build([{ id: 'hello', role: 'backend' }]);
    const build = await world.waitForEnd(buildId);
    expect(build.state, build.reason).toBe('succeeded');
    const result = await world.result(buildId, 'hello');
    expect(result.wiped).toBe(true);
    expect(result.iterations).toBe(3);
    const trace = (await world.trace(buildId, 'hello'))!;
    expect(trace.wipedAt).toBe(2);
    expect(trace.iterations[0]!.failure).toMatch(/run_command.*failed/);
    // The fresh attempt was not told about the failures before the wipe: neither by the
    // trace (previous attempts) nor by its memory, while the second iteration was.
    const context = (r: { messages?: unknown[] }) => (r.messages![2] as { content: string }).content;
    const reasons = world.requests('reason');
    expect(context(reasons[1]!)).toContain('missing_script.py');
    expect(context(reasons.at(-1)!)).toContain('PREVIOUS ATTEMPTS\nnone');
    expect(context(reasons.at(-1)!)).toContain('Your memory of this task: nothing from earlier attempts.');
    expect(context(reasons.at(-1)!)).not.toContain('missing_script.py');
    const memory = new MemoryStore(world.engine.redis, world.engine.scheduler.keys);
    const agents = await memory.listAgents();
    const mine = agents.find((a) => a.endsWith(`-${w.pid}`))!;
    const m = await memory.load(mine, 'backend');
    expect(m.wipes).toBeGreaterThanOrEqual(1);
    expect(m.completedTasks).toContain(`${buildId}/hello`);
  });

  it('stuck again after the wipe → the task fails with its trace, the build names it', async () => {
    const failing = plan1([{ action: 'run_command', params: { command: 'python3', args: ['missing_script.py'] } }]);
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, reply: REASON },
        { match: { phase: 'plan' }, reply: failing },
      ],
    });
    await world.startWorker('backend');
    const buildId = await world.build([{ id: 'doomed', role: 'backend' }, { id: 'after', role: 'backend', dependsOn: ['doomed'] }]);
    const build = await world.waitForEnd(buildId);
    expect(build.state).toBe('failed');
    expect(build.failedTask).toBe('doomed');
    expect(build.reason).toMatch(/stuck after a memory wipe: the same plan failed twice/);
    const trace = (await world.trace(buildId, 'doomed'))!;
    expect(trace.status).toBe('failed');
    expect(trace.wiped).toBe(true);
    expect(trace.iterations).toHaveLength(4);
    for (const it of trace.iterations) {
      expect(it.act!.steps[0]).toMatchObject({ action: 'run_command', ok: false });
      expect(it.act!.steps[0]!.exitCode).not.toBe(0);
    }
    // Not retried as a whole by the queue (the loop's own retries were the budget), but
    // re-planned once by the orchestrator with a revised description before the build failed.
    const doomed = await world.engine.scheduler.dag.getTask(buildId, 'doomed');
    expect(doomed.attempts).toBe(1);
    expect(doomed.replans).toBe(1);
    expect(doomed.gen).toBe(1);
    expect(doomed.spec.description).toMatch(/A previous attempt at this task failed: .*stuck/);
    expect((await world.engine.scheduler.dag.getTaskStates(buildId)).get('after')).toBe('skipped');
  });

  it('a schema vLLM refuses (its xgrammar 400): the tasks succeed through json_object, with one warning line', async () => {
    world = await AgentWorld.start({
      rules: [
        { match: { phase: 'reason' }, reply: REASON },
        { match: { phase: 'plan' }, fault: 'reject_json_schema', wording: 'vllm', reply: writeHello },
        { match: { phase: 'validate' }, reply: checkHello },
      ],
    });
    const w = await world.startWorker('backend', { LOG_LEVEL: 'warn' });
    const buildId = await world.build([
      { id: 'hello', role: 'backend' },
      { id: 'again', role: 'backend', dependsOn: ['hello'] },
    ]);
    const build = await world.waitForEnd(buildId);
    expect(build.state, build.reason).toBe('succeeded');
    // Refused once; the worker remembers the refused schema and asks json_object straight away for the next task.
    expect(world.requests('plan').map((r) => [r.responseFormat, r.status])).toEqual([
      ['json_schema', 400],
      ['json_object', 200],
      ['json_object', 200],
    ]);
    expect(world.requests('reason').every((r) => r.responseFormat === 'json_schema')).toBe(true);
    const warnings = w.text.split('\n').filter((l) => l.includes('refuses the JSON schema'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('the LLM refuses the JSON schema of backend/plan (HTTP 400: The provided JSON schema contains features not supported by xgrammar.)');
    expect((await world.result(buildId, 'again')).success).toBe(true);
  });

  it('an endpoint that refuses json_schema and json_object fails the task with one line naming it and what it refused', async () => {
    world = await AgentWorld.start({ rules: [{ match: {}, fault: 'reject_response_format', wording: 'vllm', reply: REASON }] }, { CODEGOD_REPLANS_PER_TASK: '0' });
    await world.startWorker('backend');
    const buildId = await world.build([{ id: 'formless', role: 'backend' }]);
    const build = await world.waitForEnd(buildId);
    expect(build.state).toBe('failed');
    expect(build.failedTask).toBe('formless');
    expect(build.reason).toBe(
      `task formless failed: the LLM at ${world.llm.url} refuses structured output for backend/reason: json_schema (HTTP 400: The provided JSON schema contains features not supported by xgrammar.) and json_object (HTTP 400: response_format type 'json_object' is not supported by this server); serve the model with guided decoding (vLLM, Ollama, llama.cpp server) or set VLLM_API_URL to one that has it`,
    );
    // A refusal is not retried: one attempt, and no request beyond the two refusals.
    expect((await world.engine.scheduler.dag.getTask(buildId, 'formless')).attempts).toBe(1);
    expect(world.requests().filter((r) => r.path === '/v1/chat/completions').map((r) => r.responseFormat)).toEqual(['json_schema', 'json_object']);
  });

  it('an unreachable LLM: the task waits and retries within its budget, then fails with a clear reason', async () => {
    world = await AgentWorld.start({ rules: [] }, { VLLM_API_URL: 'http://127.0.0.1:9/v1' });
    await world.startWorker('backend', { VLLM_API_URL: 'http://127.0.0.1:9/v1', LLM_MODEL: 'codegod-test', LLM_MAX_RETRIES: '1' });
    const buildId = await world.build([{ id: 'offline', role: 'backend' }]);
    const build = await world.waitForEnd(buildId);
    expect(build.state).toBe('failed');
    expect(build.reason).toMatch(/cannot reach the LLM at http:\/\/127\.0\.0\.1:9\/v1/);
    expect((await world.engine.scheduler.dag.getTask(buildId, 'offline')).attempts).toBe(2);
    expect(existsSync(world.workspace(buildId))).toBe(true);
  });
});
