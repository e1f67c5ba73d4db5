import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import type { ScenarioInput } from '../../scripts/llm-server/scenario.js';
import type { Config } from '../../shared/config.js';
import { CodegodError } from '../../shared/domain/errors.js';
import { createKeys } from '../../shared/redis/keys.js';
import { checkLlm, LlmClient, type ChatMessage } from '../../shared/llm/client.js';
import { wireJsonSchema } from '../../shared/llm/wire-schema.js';
import { RedisUsageRecorder } from '../../shared/telemetry/llm-usage.js';
import { estimateMessagesTokens } from '../../shared/llm/tokens.js';
import { createLogger } from '../../shared/logger.js';
import { createRedis } from '../../shared/redis/connection.js';
import { testConfig } from '../helpers/config.js';
import { freePort } from '../../shared/redis/redis-server.js';
import { compileOptions, type LlmClientOptions, redisOptions } from '../../shared/options.js';

const Answer = z.object({ title: z.string(), count: z.number().int(), tags: z.array(z.string()).default([]) });
const good = { title: 'ok', count: 2 };
const logger = createLogger('silent');

const messages: ChatMessage[] = [
  { role: 'system', content: 'You are the backend agent.' },
  { role: 'user', content: 'Task: write app.py' },
];

/** Config against `server`, small timeouts and retries so failure paths stay fast. */
function config(server: ScriptedLlmServer | string, overrides: Record<string, string> = {}): Config {
  return testConfig({
    VLLM_API_URL: typeof server === 'string' ? server : server.url,
    LLM_TIMEOUT_MS: '2000',
    LLM_MAX_RETRIES: '1',
    LLM_REPAIR_ATTEMPTS: '2',
    ...overrides,
  });
}

/** The LLM client's options against `server`, compiled from `config`. */
function llm(server: ScriptedLlmServer | string, overrides: Record<string, string> = {}): LlmClientOptions {
  return compileOptions(config(server, overrides)).llm;
}

async function failure(p: Promise<unknown>): Promise<CodegodError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CodegodError);
  return err as CodegodError;
}

const ask = (client: LlmClient, phase: string, extra: { signal?: AbortSignal; role?: string; schema?: typeof Answer } = {}) =>
  client.structured({ role: extra.role ?? 'backend', phase, schema: extra.schema ?? Answer, messages, maxTokens: 200, signal: extra.signal });

/** A logger whose warnings the test reads back. */
function recordingLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  return { logger, warnings: () => lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((e) => e.level === 40).map((e) => e.msg) };
}

describe('LLM client against the scripted server', () => {
  let server: ScriptedLlmServer;
  const scenario: ScenarioInput = {
    rules: [
      { match: { phase: 'plan' }, reply: good },
      { match: { phase: 'malformed' }, fault: 'malformed_json', reply: good, times: 1 },
      { match: { phase: 'violation' }, fault: 'schema_violation', times: 1 },
      { match: { phase: 'length' }, fault: 'length', reply: good, times: 1 },
      { match: { phase: 'e500' }, fault: 'http500', times: 1 },
      { match: { phase: 'e400' }, fault: 'http400' },
      { match: { phase: 'unordered' }, reply: { count: 2, title: 'count first' } },
      { match: { phase: 'e429' }, fault: 'http429', times: 1 },
      { match: { phase: 'always-bad' }, fault: 'malformed_json', reply: good },
      { match: { phase: 'hang' }, fault: 'hang' },
      { match: { phase: 'slow' }, delayMs: 150, reply: good },
      { match: { phase: 'stuck' }, delayMs: 10_000, reply: good },
      { match: { phase: 'fenced' }, reply: '```json\n{"title":"fenced","count":1}\n```' },
      { match: {}, reply: good },
    ],
  };

  beforeAll(async () => {
    server = await startScriptedLlmServer({ scenario });
  });
  afterEach(() => server.reset());
  afterAll(async () => {
    await server.close();
  });

  it('returns parsed data with usage, sends the codegod headers and a JSON schema from the zod schema', async () => {
    const client = new LlmClient(llm(server, { LLM_MODEL: 'codegod-test' }), { logger });
    const res = await client.structured({
      role: 'backend',
      phase: 'plan',
      schema: Answer,
      messages,
      maxTokens: 200,
      taskContext: { buildId: 'b1', taskId: 't1' },
    });
    expect(res.data).toEqual({ ...good, tags: [] });
    expect(res.attempts).toBe(1);
    expect(res.model).toBe('codegod-test');
    const completion = Math.ceil(JSON.stringify(good).length / 4);
    const prompt = Math.ceil(messages.map((m) => m.content).join('\n').length / 4);
    expect(res.usage).toEqual({ promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion });
    expect(res.latencyMs).toBeGreaterThanOrEqual(0);

    const [req] = server.requests;
    expect(req).toMatchObject({ role: 'backend', phase: 'plan', task: 't1', model: 'codegod-test', responseFormat: 'json_schema' });
    expect(req!.messages).toEqual(messages);
  });

  it('derives a lean schema: input shape, no $schema, no ±MAX_SAFE_INTEGER bounds', () => {
    const json = wireJsonSchema(Answer) as { $schema?: string; required: string[]; properties: Record<string, Record<string, unknown>> };
    expect(json.$schema).toBeUndefined();
    expect(json.required).toEqual(['title', 'count']);
    expect(json.properties.count).toEqual({ type: 'integer' });
    expect(wireJsonSchema(z.object({ n: z.number().int().min(1).max(9) }))).toMatchObject({
      properties: { n: { type: 'integer', minimum: 1, maximum: 9 } },
    });
  });

  it.each([
    ['malformed', 'not valid JSON'],
    ['violation', 'does not match the schema'],
    ['length', 'cut off at max_tokens'],
  ])('repairs a %s reply by re-asking with the error, keeping the prompt prefix', async (phase, reason) => {
    const client = new LlmClient(llm(server, { LLM_MODEL: 'codegod-test' }), { logger });
    const res = await ask(client, phase);
    expect(res.data).toEqual({ ...good, tags: [] });
    expect(res.attempts).toBe(2);
    expect(server.requests).toHaveLength(2);
    const retry = server.requests[1]!.messages as ChatMessage[];
    expect(retry.slice(0, messages.length)).toEqual(messages);
    expect(retry[messages.length]!.role).toBe('assistant');
    expect(retry[messages.length + 1]!.role).toBe('user');
    expect(retry[messages.length + 1]!.content).toContain('Your reply was not valid: it');
    expect(retry[messages.length + 1]!.content).toContain(reason);
    expect(retry[messages.length + 1]!.content).toContain('Reply again with only JSON matching the schema.');
    expect(res.usage.completionTokens).toBeGreaterThan(Math.ceil(JSON.stringify(good).length / 4));
  });

  it('gives up after LLM_REPAIR_ATTEMPTS repairs with LLM_BAD_RESPONSE and the last error', async () => {
    const client = new LlmClient(llm(server, { LLM_MODEL: 'codegod-test', LLM_REPAIR_ATTEMPTS: '2' }), { logger });
    const err = await failure(ask(client, 'always-bad'));
    expect(err.code).toBe('LLM_BAD_RESPONSE');
    expect(err.message).toMatch(/backend\/always-bad after 3 attempts: it is not valid JSON/);
    expect(server.requests).toHaveLength(3);
  });

  it('accepts JSON fenced in markdown (servers without guided decoding do that) without a repair round', async () => {
    const unguided = await startScriptedLlmServer({ scenario, grammarCheck: false });
    try {
      const client = new LlmClient(llm(unguided, { LLM_MODEL: 'codegod-test', LLM_STRUCTURED_OUTPUT: 'json_object' }), { logger });
      const res = await ask(client, 'fenced');
      expect(res.data.title).toBe('fenced');
      expect(res.attempts).toBe(1);
    } finally {
      await unguided.close();
    }
  });

  it('reports a 400 that is not about the response format as LLM_REQUEST_FAILED, after asking once without it', async () => {
    const client = new LlmClient(llm(server, { LLM_MODEL: 'codegod-test' }), { logger });
    const err = await failure(ask(client, 'e400'));
    expect(err.code).toBe('LLM_REQUEST_FAILED');
    expect(err.message).toBe(`the LLM at ${server.url} answered HTTP 400: This model's maximum context length is 4096 tokens. However, you requested 8192 tokens in the messages. Please reduce the length of the messages.`);
    // The same request without response_format (max_tokens kept: a prompt too long for the
    // context is refused either way) was refused too, so the schema is not what the server refused.
    expect(server.requests.map((r) => [r.responseFormat ?? 'none', r.maxTokens, r.stream, r.status])).toEqual([
      ['json_schema', 200, false, 400],
      ['none', 200, true, 400],
    ]);
    await failure(ask(client, 'e400'));
    expect(server.requests[2]!.responseFormat).toBe('json_schema');
  });

  it('a scripted reply no grammar-held model could write fails the call loudly, naming the scenario bug', async () => {
    const client = new LlmClient(llm(server, { LLM_MODEL: 'codegod-test' }), { logger });
    const err = await failure(ask(client, 'unordered'));
    expect(err.code).toBe('LLM_REQUEST_FAILED');
    expect(err.message).toContain('answered HTTP 500: scenario bug: no model held to this request\'s json_schema could have written the scripted reply for backend/unordered');
    expect(server.stats().grammarRejections).toBe(2);
  });

  it.each([
    ['e500', 500],
    ['e429', 429],
  ])('retries %s through the SDK without spending a repair attempt', async (phase, status) => {
    const client = new LlmClient(llm(server, { LLM_MODEL: 'codegod-test' }), { logger });
    const res = await ask(client, phase);
    expect(res.data.title).toBe('ok');
    expect(res.attempts).toBe(1);
    expect(server.requests.map((r) => r.status)).toEqual([status, 200]);
  });

  it('ends a hanging request at LLM_TIMEOUT_MS with a bounded number of tries', async () => {
    const client = new LlmClient(llm(server, { LLM_MODEL: 'codegod-test', LLM_TIMEOUT_MS: '300', LLM_MAX_RETRIES: '1' }), { logger });
    const started = Date.now();
    const err = await failure(ask(client, 'hang'));
    const elapsed = Date.now() - started;
    expect(err.code).toBe('LLM_TIMEOUT');
    expect(err.message).toContain('did not answer within 300 ms (2 tries)');
    expect(server.requests).toHaveLength(2);
    // Two 300 ms tries plus the SDK's backoff (at most 500 ms before a second try).
    expect(elapsed).toBeGreaterThanOrEqual(600);
    expect(elapsed).toBeLessThan(2_500);
    await expect.poll(() => server.inFlight).toBe(0);
  });

  it('aborts through the caller signal: before the call, in flight, and while waiting for a slot', async () => {
    const client = new LlmClient(llm(server, { LLM_MODEL: 'codegod-test', LLM_MAX_INFLIGHT: '1' }), { logger });
    expect((await failure(ask(client, 'plan', { signal: AbortSignal.abort() }))).code).toBe('TASK_ABORTED');
    expect(server.requests).toHaveLength(0);

    const holder = new AbortController();
    const waiter = new AbortController();
    const started = Date.now();
    const inFlight = ask(client, 'stuck', { signal: holder.signal });
    const queued = ask(client, 'stuck', { signal: waiter.signal });
    await expect.poll(() => server.inFlight).toBe(1);
    waiter.abort();
    expect((await failure(queued)).code).toBe('TASK_ABORTED');
    holder.abort();
    const err = await failure(inFlight);
    expect(err.code).toBe('TASK_ABORTED');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(client.inFlight).toBe(0);
    await expect.poll(() => server.inFlight).toBe(0);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.aborted).toBe(true);
  });

  it('keeps at most LLM_MAX_INFLIGHT requests in flight', async () => {
    const client = new LlmClient(llm(server, { LLM_MODEL: 'codegod-test', LLM_MAX_INFLIGHT: '2' }), { logger });
    const results = await Promise.all(Array.from({ length: 6 }, () => ask(client, 'slow')));
    expect(results.every((r) => r.data.title === 'ok')).toBe(true);
    expect(server.requests).toHaveLength(6);
    expect(server.maxInFlight).toBe(2);
    expect(client.maxInFlight).toBe(2);
    expect(client.inFlight).toBe(0);
  });

  it('names the served models when LLM_MODEL is unknown', async () => {
    const client = new LlmClient(llm(server, { LLM_MODEL: 'llama-nope' }), { logger });
    const err = await failure(ask(client, 'plan'));
    expect(err.code).toBe('LLM_MODEL_UNKNOWN');
    expect(err.message).toBe(`model 'llama-nope' is not served by ${server.url} (it serves: codegod-test); set LLM_MODEL`);

    const perRole = new LlmClient(llm(server, { LLM_MODEL: 'codegod-test', LLM_MODEL_BACKEND: 'qwen-nope' }), { logger });
    const roleErr = await failure(ask(perRole, 'plan'));
    expect(roleErr.code).toBe('LLM_MODEL_UNKNOWN');
    expect(roleErr.message).toContain("model 'qwen-nope' is not served");
    expect(roleErr.message).toContain('set LLM_MODEL_BACKEND');
  });

  it('says clearly when nothing listens at VLLM_API_URL', async () => {
    const url = `http://127.0.0.1:${await freePort()}/v1`;
    const client = new LlmClient(llm(url, { LLM_MODEL: 'm', LLM_MAX_RETRIES: '0' }), { logger });
    const err = await failure(ask(client, 'plan'));
    expect(err.code).toBe('LLM_UNREACHABLE');
    expect(err.message).toBe(`cannot reach the LLM at ${url} (ECONNREFUSED); start vLLM/Ollama or set VLLM_API_URL`);

    const check = await failure(checkLlm(llm(url, { LLM_MAX_RETRIES: '0' }), { logger }));
    expect(check.code).toBe('LLM_UNREACHABLE');
  });

  it('uses the first listed model when LLM_MODEL is unset (asked once), and per-role models', async () => {
    const multi = await startScriptedLlmServer({ scenario: { models: ['first-model', 'role-model'], fallback: { reply: good } } });
    try {
      const client = new LlmClient(llm(multi, { LLM_MODEL_FRONTEND: 'role-model' }), { logger });
      const [a, b] = await Promise.all([ask(client, 'plan'), ask(client, 'plan')]);
      expect([a.model, b.model]).toEqual(['first-model', 'first-model']);
      expect((await ask(client, 'plan', { role: 'frontend' })).model).toBe('role-model');
      expect(multi.requests.filter((r) => r.path === '/v1/models')).toHaveLength(1);
      expect(multi.requests.filter((r) => r.path === '/v1/chat/completions').map((r) => r.model)).toEqual([
        'first-model',
        'first-model',
        'role-model',
      ]);

      expect(await checkLlm(llm(multi), { logger })).toEqual({
        url: multi.url,
        models: ['first-model', 'role-model'],
        model: 'first-model',
      });
      const wrong = await failure(checkLlm(llm(multi, { LLM_MODEL_TESTING: 'ghost' }), { logger }));
      expect(wrong.code).toBe('LLM_MODEL_UNKNOWN');
      expect(wrong.message).toContain('set LLM_MODEL_TESTING');
    } finally {
      await multi.close();
    }
  });

  it('sends a role to its own endpoint (VLLM_API_URL_<ROLE>) with its own temperature, and checks that endpoint', async () => {
    const main = await startScriptedLlmServer({ scenario: { models: ['big-model'], fallback: { reply: good } } });
    const small = await startScriptedLlmServer({ scenario: { models: ['small-model'], fallback: { reply: good } } });
    try {
      const settings = { VLLM_API_URL_DEVOPS: small.url, LLM_TEMPERATURE: '0.2', LLM_TEMPERATURE_DEVOPS: '0' };
      const client = new LlmClient(llm(main, settings), { logger });
      expect((await ask(client, 'plan', { role: 'backend' })).model).toBe('big-model');
      expect((await ask(client, 'plan', { role: 'devops' })).model).toBe('small-model');
      expect((await ask(client, 'plan', { role: 'planner' })).model).toBe('big-model');
      const chats = (s: ScriptedLlmServer) => s.requests.filter((r) => r.path === '/v1/chat/completions');
      expect(chats(main).map((r) => [r.role, r.model, r.temperature])).toEqual([
        ['backend', 'big-model', 0.2],
        ['planner', 'big-model', 0.2],
      ]);
      expect(chats(small).map((r) => [r.role, r.model, r.temperature])).toEqual([['devops', 'small-model', 0]]);
      // No temperature configured: none is sent, the server's default applies.
      await ask(new LlmClient(llm(main), { logger }), 'plan');
      expect(chats(main).at(-1)!.temperature).toBeUndefined();

      expect(await checkLlm(llm(main, settings), { logger })).toEqual({
        url: main.url,
        models: ['big-model'],
        model: 'big-model',
        roles: [{ role: 'devops', url: small.url, model: 'small-model' }],
      });
      const wrong = await failure(checkLlm(llm(main, { ...settings, LLM_MODEL: 'big-model' }), { logger }));
      expect(wrong.code).toBe('LLM_MODEL_UNKNOWN');
      expect(wrong.message).toBe(`model 'big-model' is not served by ${small.url} (it serves: small-model); set LLM_MODEL_DEVOPS`);
      await small.close();
      const down = await failure(ask(new LlmClient(llm(main, { ...settings, LLM_MAX_RETRIES: '0' }), { logger }), 'plan', { role: 'devops' }));
      expect(down.code).toBe('LLM_UNREACHABLE');
      expect(down.message).toContain('set VLLM_API_URL_DEVOPS');
    } finally {
      await main.close();
      await small.close();
    }
  });

  it('falls back to json_object with the schema in the prompt when the server rejects json_schema, and when configured to', async () => {
    const plain = await startScriptedLlmServer({ scenario: { rules: [{ match: {}, fault: 'reject_json_schema', reply: good }] } });
    try {
      const { logger: recording, warnings } = recordingLogger();
      const client = new LlmClient(llm(plain, { LLM_MODEL: 'codegod-test' }), { logger: recording });
      expect((await ask(client, 'plan')).data.title).toBe('ok');
      expect((await ask(client, 'plan')).attempts).toBe(1);
      expect(plain.requests.map((r) => [r.responseFormat, r.status])).toEqual([
        ['json_schema', 400],
        ['json_object', 200],
        ['json_object', 200],
      ]);
      const sent = plain.requests[1]!.messages as ChatMessage[];
      expect(sent.slice(0, messages.length)).toEqual(messages);
      expect(sent[messages.length]!.content).toBe(`Answer with one JSON object and nothing else. It must match this JSON schema:\n${JSON.stringify(wireJsonSchema(Answer))}`);
      expect(warnings()).toEqual([
        `the LLM refuses the JSON schema of backend/plan (HTTP 400: response_format type 'json_schema' is not supported by this server); asking with json_object and the schema in the prompt from now on`,
      ]);
    } finally {
      await plain.close();
    }

    const configured = new LlmClient(llm(server, { LLM_MODEL: 'codegod-test', LLM_STRUCTURED_OUTPUT: 'json_object' }), { logger });
    await ask(configured, 'plan');
    expect(server.requests.map((r) => r.responseFormat)).toEqual(['json_object']);
  });

  it.each([
    ['vllm', [['json_schema', 400], ['json_object', 'answered']]],
    // Ollama answers its refusal with a 500: the SDK retries it first.
    ['ollama', [['json_schema', 500], ['json_schema', 500], ['json_object', 'answered']]],
    ['llamacpp', [['json_schema', 400], ['json_object', 'answered']]],
    // A 400 that names nothing: the same request without response_format is accepted (and cut
    // off once it is), so the format was what the server refused.
    ['opaque', [['json_schema', 400], ['none', 'answered'], ['json_object', 'answered']]],
  ] as const)('recognises a %s schema refusal, remembers it per schema, and warns once', async (wording, expected) => {
    const refusing = await startScriptedLlmServer({ scenario: { rules: [{ match: {}, fault: 'reject_json_schema', wording, reply: good }] } });
    try {
      const { logger: recording, warnings } = recordingLogger();
      const client = new LlmClient(llm(refusing, { LLM_MODEL: 'codegod-test' }), { logger: recording });
      const [a, b] = await Promise.all([ask(client, 'plan'), ask(client, 'plan')]);
      expect([a.data.title, b.data.title]).toEqual(['ok', 'ok']);
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).toMatch(/^the LLM refuses the JSON schema of backend\/plan \(HTTP (400|500): .+\); asking with json_object/);
      refusing.reset();
      // Remembered for this schema, whichever role asks with it …
      await ask(client, 'reason', { role: 'frontend' });
      expect(refusing.requests.map((r) => r.responseFormat)).toEqual(['json_object']);
      // … while another schema is tried as json_schema first.
      refusing.reset();
      const Other = z.object({ title: z.string(), count: z.number().int(), tags: z.array(z.string()).default([]) });
      expect((await ask(client, 'plan', { schema: Other })).data.title).toBe('ok');
      // A probe cut off after the server accepted it may end before its status is logged.
      expect(refusing.requests.map((r) => [r.responseFormat ?? 'none', r.status === 200 || r.status === null ? 'answered' : r.status])).toEqual(expected);
      expect(warnings()).toHaveLength(2);
    } finally {
      await refusing.close();
    }
  });

  it('fails with one line naming the endpoint and what it refused when json_object is refused too', async () => {
    for (const wording of ['vllm', 'opaque'] as const) {
      const refusing = await startScriptedLlmServer({ scenario: { rules: [{ match: {}, fault: 'reject_response_format', wording, reply: good }] } });
      try {
        const client = new LlmClient(llm(refusing, { LLM_MODEL: 'codegod-test' }), { logger });
        const err = await failure(ask(client, 'plan'));
        expect(err.code).toBe('LLM_STRUCTURED_OUTPUT_REFUSED');
        expect(err.message).not.toContain('\n');
        const schemaDetail = wording === 'vllm' ? 'HTTP 400: The provided JSON schema contains features not supported by xgrammar.' : 'HTTP 400: Bad Request';
        const objectDetail = wording === 'vllm' ? "HTTP 400: response_format type 'json_object' is not supported by this server" : 'HTTP 400: Bad Request';
        expect(err.message).toBe(
          `the LLM at ${refusing.url} refuses structured output for backend/plan: json_schema (${schemaDetail}) and json_object (${objectDetail}); serve the model with guided decoding (vLLM, Ollama, llama.cpp server) or set VLLM_API_URL to one that has it`,
        );
      } finally {
        await refusing.close();
      }
    }

    const refusing = await startScriptedLlmServer({ scenario: { rules: [{ match: {}, fault: 'reject_response_format', reply: good }] } });
    try {
      const client = new LlmClient(llm(refusing, { LLM_MODEL: 'codegod-test', LLM_STRUCTURED_OUTPUT: 'json_object' }), { logger });
      const err = await failure(ask(client, 'plan'));
      expect(err.code).toBe('LLM_STRUCTURED_OUTPUT_REFUSED');
      expect(err.message).toContain("refuses structured output for backend/plan: json_object (HTTP 400: response_format type 'json_object' is not supported by this server), and LLM_STRUCTURED_OUTPUT=json_object rules out json_schema");
    } finally {
      await refusing.close();
    }
  });

  describe('usage in Redis', () => {
    let redis: Redis;
    let cfg: Config;

    beforeAll(() => {
      cfg = config(server, { LLM_MODEL: 'codegod-test' });
      redis = createRedis(redisOptions(cfg), 'client');
    });
    afterAll(async () => {
      await redis.quit();
    });

    it('records every request per call, task, build and role', async () => {
      const keys = createKeys(cfg.CODEGOD_PREFIX);
      await redis.hset(keys.build('b1'), 'state', 'running');
      await redis.hset(keys.task('b1', 't1'), 'state', 'running');
      const client = new LlmClient(compileOptions(cfg).llm, { logger, recorder: new RedisUsageRecorder(redis, keys) });

      const repaired = await client.structured({
        role: 'backend',
        phase: 'malformed',
        schema: Answer,
        messages,
        maxTokens: 200,
        taskContext: { buildId: 'b1', taskId: 't1', agentId: 'backend-1' },
      });
      const planner = await client.structured({ role: 'planner', phase: 'plan', schema: Answer, messages, maxTokens: 200 });

      const entries = await redis.xrange(keys.llmCalls('b1'), '-', '+');
      expect(entries).toHaveLength(2);
      const fields = entries.map(([, f]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i]!, f[2 * i + 1]!])));
      expect(fields.map((f) => [f.phase, f.role, f.model, f.attempt, f.ok, f.task, f.agent])).toEqual([
        ['malformed', 'backend', 'codegod-test', '1', '0', 't1', 'backend-1'],
        ['malformed', 'backend', 'codegod-test', '2', '1', 't1', 'backend-1'],
      ]);
      expect(fields[0]!.error).toContain('not valid JSON');
      // Each request's size by codegod's own estimate: the repair round carries the rejected reply too.
      expect(Number(fields[0]!.promptEstimate)).toBe(estimateMessagesTokens(messages));
      expect(Number(fields[1]!.promptEstimate)).toBeGreaterThan(Number(fields[0]!.promptEstimate));
      const sum = (k: string) => fields.reduce((n, f) => n + Number(f[k]), 0);
      expect(sum('promptTokens')).toBe(repaired.usage.promptTokens);
      expect(sum('completionTokens')).toBe(repaired.usage.completionTokens);

      for (const key of [keys.task('b1', 't1'), keys.build('b1')]) {
        const h = await redis.hgetall(key);
        expect(h.state).toBe('running');
        expect(Number(h.llmCalls)).toBe(2);
        expect(Number(h.promptTokens)).toBe(repaired.usage.promptTokens);
        expect(Number(h.completionTokens)).toBe(repaired.usage.completionTokens);
        expect(Number(h.llmMs)).toBe(sum('ms'));
      }

      const m = await redis.hgetall(keys.metricsLlm);
      expect(Number(m.calls)).toBe(3);
      expect(Number(m.failed)).toBe(1);
      expect(Number(m.promptTokens)).toBe(repaired.usage.promptTokens + planner.usage.promptTokens);
      expect(Number(m.completionTokens)).toBe(repaired.usage.completionTokens + planner.usage.completionTokens);
      expect(Number(m['backend:calls'])).toBe(2);
      expect(Number(m['backend:promptTokens'])).toBe(repaired.usage.promptTokens);
      expect(Number(m['planner:calls'])).toBe(1);
      expect(Number(m['planner:completionTokens'])).toBe(planner.usage.completionTokens);
      expect(m['planner:failed']).toBeUndefined();
    });

    it('touches no build keys for a build that does not exist', async () => {
      const keys = createKeys(cfg.CODEGOD_PREFIX);
      const client = new LlmClient(compileOptions(cfg).llm, { logger, recorder: new RedisUsageRecorder(redis, keys) });
      await client.structured({ role: 'backend', phase: 'plan', schema: Answer, messages, maxTokens: 200, taskContext: { buildId: 'gone', taskId: 't' } });
      expect(await redis.exists(keys.build('gone'), keys.task('gone', 't'), keys.llmCalls('gone'))).toBe(0);
      expect(Number(await redis.hget(keys.metricsLlm, 'backend:calls'))).toBeGreaterThanOrEqual(1);
    });

    it('records a request that failed for good as a failed call', async () => {
      const keys = createKeys(cfg.CODEGOD_PREFIX);
      const hangCfg = config(server, { LLM_MODEL: 'codegod-test', LLM_TIMEOUT_MS: '150', LLM_MAX_RETRIES: '0', CODEGOD_PREFIX: cfg.CODEGOD_PREFIX });
      await redis.hset(keys.build('b2'), 'state', 'running');
      const client = new LlmClient(compileOptions(hangCfg).llm, { logger, recorder: new RedisUsageRecorder(redis, keys) });
      const err = await failure(
        client.structured({ role: 'devops', phase: 'hang', schema: Answer, messages, maxTokens: 50, taskContext: { buildId: 'b2' } }),
      );
      expect(err.code).toBe('LLM_TIMEOUT');
      const [entry] = await redis.xrange(keys.llmCalls('b2'), '-', '+');
      expect(entry![1]).toEqual(expect.arrayContaining(['ok', '0', 'role', 'devops', 'phase', 'hang']));
      expect(Number(await redis.hget(keys.metricsLlm, 'devops:failed'))).toBe(1);
      expect(Number(await redis.hget(keys.build('b2'), 'llmCalls'))).toBe(1);
    });
  });
});
