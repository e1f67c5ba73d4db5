import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import OpenAI, { APIConnectionTimeoutError, APIError } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import type { ScenarioInput } from '../../scripts/llm-server/scenario.js';

const schemaFormat = {
  type: 'json_schema' as const,
  json_schema: {
    name: 'answer',
    strict: true,
    schema: {
      type: 'object',
      properties: { title: { type: 'string' }, count: { type: 'integer' } },
      required: ['title', 'count'],
    },
  },
};

const user = (content: string) => [{ role: 'user' as const, content }];

function sdk(server: ScriptedLlmServer, extra: { maxRetries?: number; timeout?: number; headers?: Record<string, string> } = {}) {
  return new OpenAI({
    baseURL: server.url,
    apiKey: 'EMPTY',
    maxRetries: extra.maxRetries ?? 0,
    timeout: extra.timeout ?? 5_000,
    defaultHeaders: extra.headers,
    logLevel: 'off',
  });
}

async function apiError(p: Promise<unknown>): Promise<APIError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(APIError);
  return err as APIError;
}

describe('scripted LLM server', () => {
  let server: ScriptedLlmServer;
  const scenario: ScenarioInput = {
    rules: [
      { match: { role: 'backend', phase: 'plan' }, reply: { title: 'first', count: 1 }, times: 1 },
      { match: { role: 'backend', phase: 'plan' }, reply: { title: 'later', count: 2 } },
      { match: { contains: ['needle', 'haystack'] }, reply: 'found both' },
      { match: { phase: 'fail500' }, fault: 'http500' },
      { match: { phase: 'fail429' }, fault: 'http429' },
      { match: { phase: 'hang' }, fault: 'hang' },
      { match: { phase: 'broken' }, fault: 'malformed_json', reply: { title: 'x', count: 3 } },
      { match: { phase: 'violate' }, fault: 'schema_violation' },
      { match: { phase: 'cut' }, fault: 'length', reply: { title: 'a long title that gets cut', count: 9 } },
      { match: { phase: 'noschema' }, fault: 'reject_json_schema', reply: { title: 'plain', count: 4 } },
      { match: { phase: 'mismatch' }, reply: { title: 'no count' } },
      { match: { phase: 'unordered' }, reply: { count: 1, title: 'count first' } },
      { match: { phase: 'escapes' }, reply: { title: 'say "hi" to C:\\dir\nthen stop', count: 1 } },
      { match: { phase: 'refuse', contains: 'vllm' }, fault: 'reject_json_schema', wording: 'vllm', reply: { title: 'plain', count: 4 } },
      { match: { phase: 'refuse', contains: 'ollama' }, fault: 'reject_json_schema', wording: 'ollama', reply: { title: 'plain', count: 4 } },
      { match: { phase: 'refuse', contains: 'llamacpp' }, fault: 'reject_json_schema', wording: 'llamacpp', reply: { title: 'plain', count: 4 } },
      { match: { phase: 'refuse', contains: 'opaque' }, fault: 'reject_json_schema', wording: 'opaque', reply: { title: 'plain', count: 4 } },
      { match: { phase: 'refuse-all' }, fault: 'reject_response_format', reply: { title: 'plain', count: 4 } },
      { match: { phase: 'slow' }, delayMs: 150, reply: { title: 'slow', count: 5 } },
      { match: { phase: 'wrapped' }, reply: { json: { text: 'is a key here' } } },
      { match: { phase: 'long' }, reply: { text: 'x'.repeat(400) } },
    ],
  };

  beforeAll(async () => {
    server = await startScriptedLlmServer({ scenario });
  });
  afterEach(() => server.reset());
  afterAll(async () => {
    await server.close();
  });

  it('lists the default model, and the scenario models when given', async () => {
    const ids: string[] = [];
    for await (const m of sdk(server).models.list()) ids.push(m.id);
    expect(ids).toEqual(['codegod-test']);

    const custom = await startScriptedLlmServer({ scenario: { models: ['m-a', 'm-b'] } });
    try {
      const listed: string[] = [];
      for await (const m of sdk(custom).models.list()) listed.push(m.id);
      expect(listed).toEqual(['m-a', 'm-b']);
    } finally {
      await custom.close();
    }
  });

  it('answers by role and phase headers, honours times, and counts tokens from text length', async () => {
    const client = sdk(server, { headers: { 'x-codegod-role': 'backend', 'x-codegod-phase': 'plan', 'x-codegod-task': 't1' } });
    const first = await client.chat.completions.create({ model: 'codegod-test', messages: user('abcdefgh'), response_format: schemaFormat });
    expect(JSON.parse(first.choices[0]!.message.content!)).toEqual({ title: 'first', count: 1 });
    expect(first.choices[0]!.finish_reason).toBe('stop');
    const content = first.choices[0]!.message.content!;
    expect(first.usage).toEqual({ prompt_tokens: 2, completion_tokens: Math.ceil(content.length / 4), total_tokens: 2 + Math.ceil(content.length / 4) });

    const second = await client.chat.completions.create({ model: 'codegod-test', messages: user('again') });
    expect(JSON.parse(second.choices[0]!.message.content!)).toEqual({ title: 'later', count: 2 });

    expect(server.requests.map((r) => [r.role, r.phase, r.task, r.rule, r.status])).toEqual([
      ['backend', 'plan', 't1', 0, 200],
      ['backend', 'plan', 't1', 1, 200],
    ]);
    expect(server.requests[0]!.responseFormat).toBe('json_schema');
    expect(server.requests[1]!.responseFormat).toBeUndefined();
    expect(server.stats().ruleCounts.slice(0, 2)).toEqual([1, 1]);
  });

  it('counts times per build, so one server answers every build of a scenario alike', async () => {
    const ask = async (build: string) => {
      const client = sdk(server, { headers: { 'x-codegod-role': 'backend', 'x-codegod-phase': 'plan', 'x-codegod-build': build } });
      const res = await client.chat.completions.create({ model: 'codegod-test', messages: user('plan') });
      return (JSON.parse(res.choices[0]!.message.content!) as { title: string }).title;
    };
    expect([await ask('b-one'), await ask('b-one')]).toEqual(['first', 'later']);
    expect([await ask('b-two'), await ask('b-two')]).toEqual(['first', 'later']);
    expect(server.stats().ruleCounts.slice(0, 2)).toEqual([2, 2]);
  });

  it('matches on message content (every needle must occur) and answers 400 when nothing matches', async () => {
    const client = sdk(server);
    const hit = await client.chat.completions.create({
      model: 'codegod-test',
      messages: [
        { role: 'system', content: 'a needle' },
        { role: 'user', content: 'in a haystack' },
      ],
    });
    expect(hit.choices[0]!.message.content).toBe('found both');

    const miss = await apiError(client.chat.completions.create({ model: 'codegod-test', messages: user('only a needle') }));
    expect(miss.status).toBe(400);
    expect(miss.code).toBe('scenario_no_match');
    expect(server.stats().unmatched).toBe(1);
  });

  it('streams SSE chunks ending with a usage chunk when asked', async () => {
    const client = sdk(server, { headers: { 'x-codegod-phase': 'long' } });
    const stream = await client.chat.completions.create({
      model: 'codegod-test',
      messages: user('stream please'),
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let deltas = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta.content) {
        text += choice.delta.content;
        deltas++;
      }
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('x'.repeat(400));
    expect(deltas).toBeGreaterThan(1);
    expect(finish).toBe('stop');
    expect(usage).toEqual({ prompt_tokens: 4, completion_tokens: 100, total_tokens: 104 });
    expect(server.requests[0]!.stream).toBe(true);
  });

  it('rejects an unknown model with 404 model_not_found', async () => {
    const err = await apiError(sdk(server).chat.completions.create({ model: 'gpt-nope', messages: user('hi') }));
    expect(err.status).toBe(404);
    expect(err.code).toBe('model_not_found');
    expect(err.type).toBe('invalid_request_error');
    expect(err.message).toContain('gpt-nope');
  });

  it('injects 500 and 429 with OpenAI-style bodies; 429 carries a short retry-after', async () => {
    const e500 = await apiError(
      sdk(server, { headers: { 'x-codegod-phase': 'fail500' } }).chat.completions.create({ model: 'codegod-test', messages: user('x') }),
    );
    expect(e500.status).toBe(500);
    expect(e500.type).toBe('server_error');

    const e429 = await apiError(
      sdk(server, { headers: { 'x-codegod-phase': 'fail429' } }).chat.completions.create({ model: 'codegod-test', messages: user('x') }),
    );
    expect(e429.status).toBe(429);
    expect(Number(e429.headers?.get('retry-after-ms'))).toBeLessThanOrEqual(100);
    expect(server.requests.map((r) => r.status)).toEqual([500, 429]);
  });

  it('lets the SDK retry a 500: every try is logged', async () => {
    const client = sdk(server, { maxRetries: 2, headers: { 'x-codegod-phase': 'fail500' } });
    await apiError(client.chat.completions.create({ model: 'codegod-test', messages: user('x') }));
    expect(server.requests).toHaveLength(3);
    expect(server.stats().ruleCounts[3]).toBe(3);
  }, 15_000);

  it('hangs until the client gives up, then frees the slot', async () => {
    const client = sdk(server, { timeout: 200, headers: { 'x-codegod-phase': 'hang' } });
    const started = Date.now();
    const err = await client.chat.completions.create({ model: 'codegod-test', messages: user('x') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIConnectionTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    await expect.poll(() => server.inFlight).toBe(0);
    expect(server.requests[0]).toMatchObject({ fault: 'hang', status: null, aborted: true });
    expect(server.maxInFlight).toBe(1);
  });

  it('close() ends hanging requests instead of waiting for them', async () => {
    const own = await startScriptedLlmServer({ scenario: { fallback: { fault: 'hang' } } });
    const pending = sdk(own, { timeout: 30_000 })
      .chat.completions.create({ model: 'codegod-test', messages: user('x') })
      .catch((e: unknown) => e);
    await expect.poll(() => own.inFlight).toBe(1);
    const started = Date.now();
    await own.close();
    expect(await pending).toBeInstanceOf(APIError);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(own.inFlight).toBe(0);
  });

  it('sends malformed JSON, schema-violating JSON and length-truncated JSON on request', async () => {
    const ask = (phase: string) =>
      sdk(server, { headers: { 'x-codegod-phase': phase } }).chat.completions.create({
        model: 'codegod-test',
        messages: user('x'),
        response_format: schemaFormat,
      });

    const broken = await ask('broken');
    expect(() => JSON.parse(broken.choices[0]!.message.content!)).toThrow();

    const violated = await ask('violate');
    const value = JSON.parse(violated.choices[0]!.message.content!) as Record<string, unknown>;
    expect(value).not.toHaveProperty('title');
    expect(typeof value.count).not.toBe('number');

    const cut = await ask('cut');
    expect(cut.choices[0]!.finish_reason).toBe('length');
    const full = JSON.stringify({ title: 'a long title that gets cut', count: 9 });
    expect(full.startsWith(cut.choices[0]!.message.content!)).toBe(true);
    expect(cut.choices[0]!.message.content!.length).toBeLessThan(full.length);
    expect(() => JSON.parse(cut.choices[0]!.message.content!)).toThrow();
  });

  it('holds scripted replies to the grammar of the request\'s response_format and fails loudly when one could not be written', async () => {
    const ask = (phase: string, format: OpenAI.ChatCompletionCreateParams['response_format'] = schemaFormat) =>
      sdk(server, { headers: { 'x-codegod-phase': phase } }).chat.completions.create({ model: 'codegod-test', messages: user('x'), response_format: format });

    const missing = await apiError(ask('mismatch'));
    expect(missing.status).toBe(500);
    expect(missing.code).toBe('scenario_grammar_mismatch');
    expect(missing.message).toContain("no model held to this request's json_schema could have written the scripted reply for -/mismatch");
    expect(missing.message).toContain('the grammar rejects "}" at byte 19, after "{\\"title\\":\\"no count\\""');
    // xgrammar writes properties in schema order: a reply with its keys swapped cannot come out of it.
    const unordered = await apiError(ask('unordered'));
    expect(unordered.status).toBe(500);
    expect(unordered.message).toContain('the grammar rejects "c" at byte 2');
    // Quotes, backslashes and newlines are ordinary JSON escapes in an unbounded string.
    const escapes = await ask('escapes');
    expect(JSON.parse(escapes.choices[0]!.message.content!)).toEqual({ title: 'say "hi" to C:\\dir\nthen stop', count: 1 });
    // json_object is held to {"type": "object"}, as vLLM compiles it: any object, nothing else.
    expect(JSON.parse((await ask('unordered', { type: 'json_object' })).choices[0]!.message.content!)).toEqual({ count: 1, title: 'count first' });
    const text = await apiError(ask('long', { type: 'json_object' }));
    expect(text.message).toContain("no model held to this request's json_object could have written");
    // Without a response_format there is no grammar.
    const free = await sdk(server, { headers: { 'x-codegod-phase': 'long' } }).chat.completions.create({ model: 'codegod-test', messages: user('x') });
    expect(free.choices[0]!.message.content).toBe('x'.repeat(400));

    expect(server.stats().grammarRejections).toBe(3);
    expect(server.requests.filter((r) => r.grammarProblem !== undefined).map((r) => r.phase)).toEqual(['mismatch', 'unordered', 'long']);
  });

  it('answers a schema as vLLM does before any rule runs: its xgrammar gate, then the grammar compiler', async () => {
    const ask = (schema: Record<string, unknown>) =>
      sdk(server, { headers: { 'x-codegod-phase': 'plan', 'x-codegod-role': 'backend' } }).chat.completions.create({
        model: 'codegod-test',
        messages: user('x'),
        response_format: { type: 'json_schema', json_schema: { name: 'x', schema } },
      });
    // What z.record(z.string(), z.unknown()) emits: propertyNames beside an additionalProperties schema.
    const record = { type: 'object', properties: { params: { type: 'object', propertyNames: { type: 'string' }, additionalProperties: {} } }, required: ['params'] };
    const refused = await apiError(ask(record));
    expect(refused.status).toBe(400);
    expect(refused.message).toBe('400 The provided JSON schema contains features not supported by xgrammar.');
    const broken = await apiError(ask({ type: 'object', properties: { a: { $ref: '#/nowhere' } } }));
    expect(broken.status).toBe(400);
    expect(broken.message).toContain('Failed to transform json schema into a grammar');
    // Neither request reached a rule.
    expect(server.requests.map((r) => r.rule)).toEqual([null, null]);
    expect(server.stats().ruleCounts[0]).toBe(0);
  });

  it('without the grammar check keeps only a light check of the reply\'s top-level shape', async () => {
    const plain = await startScriptedLlmServer({ scenario, grammarCheck: false });
    try {
      const ask = (phase: string) =>
        sdk(plain, { headers: { 'x-codegod-phase': phase } }).chat.completions.create({ model: 'codegod-test', messages: user('x'), response_format: schemaFormat });
      const err = await apiError(ask('mismatch'));
      expect(err.status).toBe(500);
      expect(err.message).toContain("missing required key 'count'");
      expect(JSON.parse((await ask('unordered')).choices[0]!.message.content!)).toEqual({ count: 1, title: 'count first' });
    } finally {
      await plain.close();
    }
  });

  it.each([
    ['vllm', 400, 'The provided JSON schema contains features not supported by xgrammar.', null],
    ['ollama', 500, 'invalid JSON schema in format', null],
    ['llamacpp', 400, 'JSON schema conversion failed:\nUnrecognized schema: {"type":"object"}', null],
    ['opaque', 400, 'Bad Request', null],
  ])('words a schema refusal as %s does', async (wording, status, message, param) => {
    const client = sdk(server, { headers: { 'x-codegod-phase': 'refuse' } });
    const err = await apiError(client.chat.completions.create({ model: 'codegod-test', messages: user(wording), response_format: schemaFormat }));
    expect(err.status).toBe(status);
    expect((err.error as { message: string }).message).toBe(message);
    expect(err.param ?? null).toBe(param);
    const ok = await client.chat.completions.create({ model: 'codegod-test', messages: user(wording), response_format: { type: 'json_object' } });
    expect(JSON.parse(ok.choices[0]!.message.content!)).toEqual({ title: 'plain', count: 4 });
  });

  it('reject_response_format refuses json_schema and json_object and answers without a response_format', async () => {
    const client = sdk(server, { headers: { 'x-codegod-phase': 'refuse-all' } });
    const create = (format?: OpenAI.ChatCompletionCreateParams['response_format']) =>
      client.chat.completions.create({ model: 'codegod-test', messages: user('x'), ...(format ? { response_format: format } : {}) });
    expect((await apiError(create(schemaFormat))).status).toBe(400);
    const objectErr = await apiError(create({ type: 'json_object' }));
    expect(objectErr.status).toBe(400);
    expect(objectErr.message).toContain("'json_object' is not supported");
    expect(JSON.parse((await create()).choices[0]!.message.content!)).toEqual({ title: 'plain', count: 4 });
  });

  it('reject_json_schema refuses json_schema but serves json_object', async () => {
    const client = sdk(server, { headers: { 'x-codegod-phase': 'noschema' } });
    const err = await apiError(client.chat.completions.create({ model: 'codegod-test', messages: user('x'), response_format: schemaFormat }));
    expect(err.status).toBe(400);
    expect(err.param).toBe('response_format');
    const ok = await client.chat.completions.create({ model: 'codegod-test', messages: user('x'), response_format: { type: 'json_object' } });
    expect(JSON.parse(ok.choices[0]!.message.content!)).toEqual({ title: 'plain', count: 4 });
  });

  it('truncates at max_tokens with finish_reason length', async () => {
    const res = await sdk(server, { headers: { 'x-codegod-phase': 'long' } }).chat.completions.create({
      model: 'codegod-test',
      messages: user('x'),
      max_tokens: 10,
    });
    expect(res.choices[0]!.finish_reason).toBe('length');
    expect(res.choices[0]!.message.content).toBe('x'.repeat(40));
    expect(res.usage?.completion_tokens).toBe(10);
  });

  it('treats { json } as a wrapper and delays by delayMs', async () => {
    const wrapped = await sdk(server, { headers: { 'x-codegod-phase': 'wrapped' } }).chat.completions.create({
      model: 'codegod-test',
      messages: user('x'),
    });
    expect(JSON.parse(wrapped.choices[0]!.message.content!)).toEqual({ text: 'is a key here' });

    const started = Date.now();
    await sdk(server, { headers: { 'x-codegod-phase': 'slow' } }).chat.completions.create({ model: 'codegod-test', messages: user('x') });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('serves its log, stats and reset over HTTP', async () => {
    await sdk(server, { headers: { 'x-codegod-role': 'backend', 'x-codegod-phase': 'plan' } }).chat.completions.create({
      model: 'codegod-test',
      messages: user('hi'),
    });
    const origin = server.url.replace(/\/v1$/, '');
    const log = (await (await fetch(`${origin}/_log`)).json()) as Array<Record<string, unknown>>;
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ role: 'backend', phase: 'plan', model: 'codegod-test', rule: 0, status: 200 });
    expect(log[0]!.messages).toEqual(user('hi'));

    const stats = (await (await fetch(`${origin}/_stats`)).json()) as Record<string, unknown>;
    expect(stats).toMatchObject({ inFlight: 0, maxInFlight: 1, requests: 1, fallbackCount: 0, unmatched: 0 });
    expect((stats.ruleCounts as number[])[0]).toBe(1);
    expect(stats.series).toEqual([expect.objectContaining({ inFlight: 1 }), expect.objectContaining({ inFlight: 0 })]);

    // A reset restores `times`: rule 0 answers again.
    expect((await fetch(`${origin}/_reset`, { method: 'POST' })).status).toBe(200);
    expect(server.requests).toHaveLength(0);
    const again = await sdk(server, { headers: { 'x-codegod-role': 'backend', 'x-codegod-phase': 'plan' } }).chat.completions.create({
      model: 'codegod-test',
      messages: user('hi'),
    });
    expect(JSON.parse(again.choices[0]!.message.content!)).toEqual({ title: 'first', count: 1 });

    const bad = await fetch(`${origin}/_reset`, { method: 'POST', body: JSON.stringify({ rules: [{ match: { rol: 'x' }, reply: 'y' }] }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain('rules.0.match');
  });

  it('simulates latency: ttft + tokens × perToken, slower per request when requests batch', async () => {
    const timed = await startScriptedLlmServer({
      scenario: { fallback: { reply: { text: 'y'.repeat(200) } } },
      latency: { ttftMs: 100, perTokenMs: 2, concurrencyPenalty: 0.5 },
    });
    try {
      const client = sdk(timed);
      const ask = async () => {
        const started = Date.now();
        await client.chat.completions.create({ model: 'codegod-test', messages: user('x') });
        return Date.now() - started;
      };
      // 50 tokens × 2 ms + 100 ms = 200 ms alone.
      const alone = await ask();
      expect(alone).toBeGreaterThanOrEqual(195);
      expect(alone).toBeLessThan(600);

      // Four at once: 100 + 100 × (1 + 0.5 × 3) = 350 ms each, well under four sequential answers.
      timed.reset();
      const started = Date.now();
      const each = await Promise.all([ask(), ask(), ask(), ask()]);
      const total = Date.now() - started;
      expect(Math.min(...each)).toBeGreaterThanOrEqual(300);
      expect(total).toBeLessThan(4 * alone);
      expect(timed.maxInFlight).toBe(4);
      expect(Math.max(...timed.inFlightSeries.map((s) => s.inFlight))).toBe(4);
      expect(timed.inFlightSeries.at(-1)!.inFlight).toBe(0);
    } finally {
      await timed.close();
    }
  });

  it('loads a YAML scenario file and rejects an invalid one with a readable message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codegod-scenario-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'models: [yaml-model]\nrules:\n  - match: { phase: go }\n    reply: { ok: true }\n');
    const fromFile = await startScriptedLlmServer({ scenarioPath: good });
    try {
      const res = await sdk(fromFile, { headers: { 'x-codegod-phase': 'go' } }).chat.completions.create({
        model: 'yaml-model',
        messages: user('x'),
      });
      expect(JSON.parse(res.choices[0]!.message.content!)).toEqual({ ok: true });
    } finally {
      await fromFile.close();
    }

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ rules: [{ match: {}, fault: 'explode' }, { match: {}, fault: 'length' }] }));
    await expect(startScriptedLlmServer({ scenarioPath: bad })).rejects.toThrow(/rules\.0\.fault.*rules\.1\.reply: a reply is required/);
  });

  it('runs from the command line and prints its base URL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codegod-scenario-'));
    const file = join(dir, 'cli.json');
    writeFileSync(file, JSON.stringify({ models: ['cli-model'] }));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/llm-server/main.ts', '--scenario', file, '--port', '0', '--latency', 'ttft=1,tpot=0,penalty=0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`llm-server exited with ${code}`)));
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
      const body = (await (await fetch(`${url}/models`)).json()) as { data: Array<{ id: string }> };
      expect(body.data.map((m) => m.id)).toEqual(['cli-model']);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });
});
